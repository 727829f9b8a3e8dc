"""careops.grading.learner_copy: `careops release` makes a learner's copy with every module and no answer, and the
copy works: its `careops release` has nothing to generate, `careops workspace sync` fills workspace/ from it.

The search of the copy for every answer and hidden-test line is in tests/test_grading_references.py.
"""
from __future__ import annotations

import io
import tarfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from careops import paths
from careops.grading import learner_copy

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
# the released course and the learner's copy are conftest fixtures (the copy is searched for answers elsewhere too)


def test_release_writes_the_learners_copy_and_says_where(released_course: Any) -> None:
    assert "the learner's copy (no answers) is " in released_course.output
    assert (released_course.build / "learner" / "careops-labs-learner.tar.gz").is_file()


def test_the_copy_holds_the_released_modules_and_the_toolkit_and_no_answers(learner_tree: Any) -> None:
    root = learner_tree.folder
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    for assignment in ASSIGNMENTS:
        assert any(f.startswith(f"release/{assignment}/") and f.endswith(".ipynb") for f in files), assignment
    for needed in ("Makefile", "README.md", "environment.yml", "pyproject.toml", "src/careops/cli.py",
                   "labs/legacy-adt/adt_service.py", "grading/image/Dockerfile", paths.LEARNER_COPY_MARKER):
        assert needed in files, needed
    forbidden = [f for f in files if f.startswith(("notebooks/", "grading/references", "tests/", "build/"))
                 or "/solution" in f or f.endswith("gradebook.db") or (f.startswith("labs/") and f.endswith("README.md"))]
    assert forbidden == []
    with tarfile.open(learner_tree.archive) as tar:
        names = tar.getnames()
    assert f"{learner_copy.NAME}/release/00-orientation/orientation.ipynb" in names
    assert not [n for n in names if "/notebooks/" in n or "grading/references/" in n]
    again = learner_copy.write(REPO, learner_tree.folder / "release", learner_tree.folder.parent)
    assert not again.written or again.folder == learner_tree.folder  # unchanged inputs: nothing copied again


def test_in_the_copy_release_generates_nothing_and_sync_fills_the_workspace(learner_tree: Any,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from careops import workspace
    from careops.apps.release import main

    monkeypatch.setenv(paths.HOME_ENV, str(learner_tree.folder))
    assert paths.is_learner_copy() and paths.release_dir() == learner_tree.folder / "release"
    out = io.StringIO()
    with redirect_stdout(out):
        assert main() == 0
    assert f"{len(ASSIGNMENTS)} module(s) ready in release/" in out.getvalue() and "nothing to generate" in out.getvalue()
    report = workspace.sync()
    assert "00-orientation/orientation.ipynb" in report.added
    assert (learner_tree.folder / "workspace" / "00-orientation" / "orientation.ipynb").is_file()
