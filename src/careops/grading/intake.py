"""Collect submissions and turn away the ones that cannot be graded, before any container starts.

Two sources are understood:

* a folder of files, one per learner, as an LMS export gives them:
  ``<learner>.ipynb`` (the learner id is the file name), or a folder
  ``<learner>/`` holding the assignment's notebooks;
* nbgrader's exchange: ``<exchange>/<course>/inbound/<learner>+<assignment>+<timestamp>[+...]/``
  (the newest submission of each learner wins).

A submission is rejected, with its reason, when a notebook is empty, too
large, not JSON, not a Jupyter notebook, or belongs to another assignment.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from careops.errors import CareOpsError
from careops.grading.restore import grade_id

MAX_NOTEBOOK_BYTES = 16 * 1024**2
_LEARNER_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class SubmissionError(CareOpsError):
    """The submissions cannot be collected at all (a missing folder, two files for one learner)."""


@dataclass
class Submission:
    """One learner's hand-in: notebook name -> file, with a digest of everything handed in."""

    learner: str
    files: dict[str, Path]
    digest: str = ""
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)  # parsed, once accepted
    problem: str | None = None  # why it cannot be graded (None: accepted)


def learner_id(stem: str) -> str:
    """A learner id from a file name; refuse names nbgrader cannot store safely."""
    stem = stem.strip()
    if not _LEARNER_OK.match(stem):
        raise SubmissionError(
            f"cannot use {stem!r} as a learner id: expected letters, digits, '.', '_' or '-' (at most 64)",
            fix="rename the file to <learner-id>.ipynb",
        )
    return stem


def collect(source: Path, assignment: str, notebook_names: list[str], *, course_id: str = "careops-labs") -> list[Submission]:
    """Every learner's submission found at ``source`` (a folder of files or an nbgrader exchange)."""
    source = Path(source)
    if not source.is_dir():
        raise SubmissionError(f"no submissions folder at {source}", fix="pass the folder your LMS export unpacked to")
    inbound = source / course_id / "inbound"
    if inbound.is_dir():
        return _collect_exchange(inbound, assignment, notebook_names)
    found: dict[str, Submission] = {}
    for entry in sorted(source.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            if len(notebook_names) != 1:
                raise SubmissionError(
                    f"{entry.name}: {assignment} has {len(notebook_names)} notebooks, so each learner needs a folder",
                    fix=f"put each learner's notebooks in <learner>/ ({', '.join(notebook_names)})",
                )
            sub = Submission(learner_id(entry.stem), {notebook_names[0]: entry})
        elif entry.is_dir():
            sub = Submission(learner_id(entry.name), {p.stem: p for p in sorted(entry.glob("*.ipynb"))})
        else:
            continue
        if sub.learner in found:
            raise SubmissionError(f"two submissions for learner {sub.learner} in {source}",
                                  fix="keep one file per learner")
        found[sub.learner] = sub
    return [finish(s, notebook_names) for s in found.values()]


def _collect_exchange(inbound: Path, assignment: str, notebook_names: list[str]) -> list[Submission]:
    latest: dict[str, tuple[str, Path]] = {}
    for folder in sorted(inbound.iterdir()):
        parts = folder.name.split("+")
        if not folder.is_dir() or len(parts) < 3 or parts[1] != assignment:
            continue
        student, stamp = parts[0], parts[2]
        if student not in latest or stamp > latest[student][0]:
            latest[student] = (stamp, folder)
    return [
        finish(Submission(learner_id(s), {p.stem: p for p in sorted(f.glob("*.ipynb"))}), notebook_names)
        for s, (_, f) in sorted(latest.items())
    ]


def finish(sub: Submission, notebook_names: list[str]) -> Submission:
    """Compute the digest of a submission (file names, sizes and contents)."""
    h = hashlib.sha256()
    for name in sorted(sub.files):
        path = sub.files[name]
        h.update(name.encode() + b"\0")
        try:
            size = path.stat().st_size
        except OSError:
            size = -1
        h.update(str(size).encode() + b"\0")
        if 0 <= size <= MAX_NOTEBOOK_BYTES:
            h.update(hashlib.sha256(path.read_bytes()).digest())
    sub.digest = h.hexdigest()
    return sub


def check_notebook(path: Path, assignment: str, source_nb: dict[str, Any],
                   *, max_bytes: int = MAX_NOTEBOOK_BYTES) -> tuple[dict[str, Any] | None, str | None]:
    """(parsed notebook, None) or (None, why it cannot be graded). Never runs anything."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return None, f"{path.name} cannot be read: {exc.strerror}"
    if size > max_bytes:
        return None, (f"{path.name} is too large: {size / 1024**2:.0f} MiB "
                      f"(the limit is {max_bytes / 1024**2:.0f} MiB; clear the outputs and hand it in again)")
    raw = path.read_bytes()
    if not raw.strip():
        return None, f"{path.name} is empty (0 cells): hand in the saved notebook"
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"{path.name} is not a notebook: it is not valid JSON ({str(exc)[:80]})"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        return None, f"{path.name} is not a Jupyter notebook (expected nbformat 4 with a list of cells)"
    if not nb["cells"]:
        return None, f"{path.name} is empty (0 cells): hand in the saved notebook"
    for i, cell in enumerate(nb["cells"]):
        src = cell.get("source") if isinstance(cell, dict) else None
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw") or not (
                isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            return None, f"{path.name} is not a valid notebook: cell {i} is malformed"
    module = ((nb.get("metadata") or {}).get("careops") or {}) if isinstance(nb.get("metadata"), dict) else {}
    claimed = module.get("module") if isinstance(module, dict) else None
    ours = ((source_nb.get("metadata") or {}).get("careops") or {}).get("module")
    if claimed and ours and claimed != ours:
        return None, f"{path.name} is a notebook of {claimed}, not of {assignment}"
    source_ids = {gid for c in source_nb.get("cells", []) if (gid := grade_id(c))}
    theirs = {gid for c in nb["cells"] if isinstance(c, dict) and (gid := grade_id(c))}
    if source_ids and not (source_ids & theirs):
        return None, f"{path.name} has none of the cells of {assignment}: a notebook of another assignment?"
    return nb, None
