"""Extract tagged artifact cells from a notebook file, without running it.

A grader must read a learner's Dockerfile or container spec without executing
any learner code: artifact cells are tagged ``careops-artifact`` and start
with ``%%artifact NAME``; everything after that line is the artifact.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from careops.errors import ArtifactError

TAG = "careops-artifact"
PLACEHOLDER = "raise NotImplementedError()"
_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def artifact_body(cell_source: str) -> str:
    """The artifact text of a cell body (the magic line removed, solution markers dropped)."""
    lines = [ln for ln in cell_source.splitlines() if ln.strip() not in _MARKERS]
    return "\n".join(lines).strip("\n") + "\n"


def extract(notebook: str | Path | dict[str, Any]) -> dict[str, str]:
    """Every artifact in the notebook, by name. Unfinished ones raise ArtifactError."""
    if isinstance(notebook, dict):
        nb = notebook
    else:
        try:
            nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"cannot read notebook {notebook}: {exc}", fix="submit a valid .ipynb file") from None
    found: dict[str, str] = {}
    for index, cell in enumerate(nb.get("cells", [])):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if TAG not in tags:
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        first, _, body = source.partition("\n")
        if not first.startswith("%%artifact"):
            raise ArtifactError(f"cell {index} is tagged {TAG} but does not start with %%artifact NAME",
                                fix="restore the cell's first line from the released notebook")
        name = first.split(maxsplit=1)[1].strip() if len(first.split()) > 1 else ""
        if not name:
            raise ArtifactError(f"cell {index}: %%artifact has no name", fix="restore the first line")
        if PLACEHOLDER in body:
            raise ArtifactError(f"artifact {name} (cell {index}) is not written yet",
                                fix="replace the placeholder lines with your text")
        found[name] = artifact_body(body)
    return found
