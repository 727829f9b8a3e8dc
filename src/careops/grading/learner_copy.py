"""The learner's copy of the course: everything a self-paced learner needs for ``make lab``, and no answer.

``careops release`` (``make release``, so every ``make lab`` of the instructor's checkout) writes it after the
learner versions, to ``build/learner/careops-labs/`` and as ``build/learner/careops-labs-learner.tar.gz``, the
archive an instructor hands out:

* in: README.md, Makefile, environment.yml, pyproject.toml, scripts/, src/ (the toolkit), labs/ (lab assets,
  without the instructors' notes), grading/image/ (so ``make images`` builds every image), release/<assignment>/
  (the learner versions), and LEARNER-COPY.md, which marks the tree;
* never: notebooks/ (solutions and hidden tests), grading/references/ (the grader's answers), any
  ``labs/*/solution*``, labs' instructor notes (README.md), tests/, build/, workspace/, the gradebook.

In a learner's copy ``careops release`` generates nothing and :func:`careops.paths.release_dir` is ``release/``,
so ``make lab`` and ``careops workspace sync`` work as in a full checkout. Unchanged inputs are not copied again
(a stamp of their sizes and times).
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

from careops import paths

NAME = "careops-labs"
#: what the copy holds, relative to the checkout
INCLUDE = ("README.md", "Makefile", "environment.yml", "pyproject.toml", "scripts", "src", "labs", "grading/image")
#: never copied, anywhere in the tree (fnmatch on the path relative to the checkout, and on each name)
EXCLUDE = ("labs/*/solution*", "labs/**/solution*", "labs/*/README.md", "labs/**/README.md", "*.egg-info",
           "__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache", "node_modules", ".DS_Store")
#: in a learner's copy, where the learner versions are
RELEASE = "release"

MARKER_TEXT = """# Your copy of CareOps Labs

This is a learner's copy of the course: the notebooks as you work them (`release/`), the toolkit (`src/`) and the lab
files (`labs/`). The instructor's versions with the answers are not in it.

    make lab        # set everything up and open the course in JupyterLab (your work goes to workspace/)

Hand in a module: save the notebook in JupyterLab (File > Save), then hand in `workspace/<module>/<notebook>.ipynb`
as your course asks: upload it to the course's Moodle or Canvas assignment, or give the file to your instructor.
Keep the file name; your instructor grades it with `careops grade` and returns your feedback.
"""


@dataclass
class LearnerCopy:
    folder: Path
    archive: Path
    files: int
    written: bool  # False: the inputs had not changed


def _excluded(rel: str) -> bool:
    parts = rel.split("/")
    return any(fnmatch.fnmatch(rel, pat) for pat in EXCLUDE) or \
        any(fnmatch.fnmatch(part, pat) for part in parts for pat in EXCLUDE if "/" not in pat)


def files_of(checkout: Path, release: Path) -> dict[str, Path]:
    """Path in the copy -> file to copy."""
    out: dict[str, Path] = {}
    for item in INCLUDE:
        src = checkout / item
        candidates = [src] if src.is_file() else sorted(p for p in src.rglob("*") if p.is_file()) if src.is_dir() else []
        for path in candidates:
            rel = path.relative_to(checkout).as_posix()
            if not _excluded(rel):
                out[rel] = path
    if release.is_dir():
        for path in sorted(p for p in release.rglob("*") if p.is_file()):
            rel = f"{RELEASE}/{path.relative_to(release).as_posix()}"
            if not _excluded(rel):
                out[rel] = path
    return out


def _stamp(files: dict[str, Path]) -> str:
    h = hashlib.sha256()
    for rel, path in sorted(files.items()):
        st = path.stat()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    h.update(MARKER_TEXT.encode())
    return h.hexdigest()


def write(checkout: Path | None = None, release: Path | None = None, dest: Path | None = None) -> LearnerCopy:
    """Write the learner's copy (a folder and its .tar.gz) of ``checkout`` with the learner versions ``release``."""
    checkout = Path(checkout or paths.repo_root()).resolve()
    release = Path(release or checkout / "build" / "release")
    dest = Path(dest or checkout / "build" / "learner")
    folder, archive = dest / NAME, dest / f"{NAME}-learner.tar.gz"
    files = files_of(checkout, release)
    stamp = _stamp(files)
    stamp_file = dest / ".stamp.json"
    try:
        if json.loads(stamp_file.read_text())["stamp"] == stamp and folder.is_dir() and archive.is_file():
            return LearnerCopy(folder, archive, len(files), False)
    except (OSError, ValueError, KeyError):
        pass
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for rel, path in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (folder / paths.LEARNER_COPY_MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    tmp = archive.with_name(archive.name + ".tmp")
    with tarfile.open(tmp, "w:gz") as tar:
        tar.add(folder, arcname=NAME)
    os.replace(tmp, archive)
    stamp_file.write_text(json.dumps({"stamp": stamp}), encoding="utf-8")
    return LearnerCopy(folder, archive, len(files) + 1, True)


__all__ = ["EXCLUDE", "INCLUDE", "NAME", "LearnerCopy", "files_of", "write"]
