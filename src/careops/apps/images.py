"""`careops images build` and `careops images ls`."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import click

from careops.images import ensure_images, list_images


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _size(n: int) -> str:
    return f"{n / 1024**2:.0f} MB" if n else "-"


def _created(text: str) -> str:
    if not text:
        return "-"
    try:  # the engine answers RFC 3339 with nanoseconds: keep up to seconds
        return datetime.fromisoformat(text[:19]).strftime("%Y-%m-%d %H:%M") + " UTC"
    except ValueError:
        return text


def build_main(*, names: Sequence[str] | None = (), force: bool = False) -> int:
    """Build the named images (default, or no names: all) offline; print what was built and what was unchanged."""
    results = ensure_images(list(names) if names else None, force=force, progress=True)
    rows = [["IMAGE", "TAG", "RESULT", "SECONDS", "ID", "INPUTS", "SOURCE"]]
    for r in results:
        rows.append([r.name, r.tag, "built" if r.built else "unchanged", f"{r.seconds:.1f}", r.image_id[7:19],
                     r.inputs_hash[:12], r.source])
    click.echo(_table(rows))
    return 0


def ls_main() -> int:
    """Print the course's images: name, tag, short id, size, input hash, creation time."""
    rows = [["IMAGE", "TAG", "ID", "SIZE", "INPUTS", "CREATED"]]
    missing = []
    for info in list_images():
        if not info.image_id:
            missing.append(info.name)
        rows.append([info.name, info.tag, info.image_id[7:19] or "not built", _size(info.size),
                     info.inputs_hash[:12] or "-", _created(info.created)])
    click.echo(_table(rows))
    if missing:
        click.echo(f"\nnot built yet: {', '.join(missing)} -- run 'make images' (or 'careops images build')")
    return 0
