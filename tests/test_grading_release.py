"""careops.grading.release: what decides that an assignment must be released again, and the line it prints.

(Releasing with real nbgrader, and skipping what did not change: tests/test_notebooks.py.)
"""
from __future__ import annotations

from pathlib import Path

from careops.grading.course import make_temp_course
from careops.grading.notebooks import NotebookSummary
from careops.grading.release import ReleaseResult, input_hash

ASSIGNMENT = "00-orientation"


def test_the_input_hash_follows_the_assignment_and_the_config_but_not_caches(tmp_path: Path) -> None:
    course = make_temp_course(tmp_path / "course", ASSIGNMENT)
    folder = course.source / ASSIGNMENT
    first = input_hash(course, ASSIGNMENT)
    assert input_hash(course, ASSIGNMENT) == first
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "orientation-checkpoint.ipynb").write_text("{}", encoding="utf-8")
    (folder / "__pycache__").mkdir(exist_ok=True)
    (folder / "__pycache__" / "helper.cpython-311.pyc").write_bytes(b"\0")
    assert input_hash(course, ASSIGNMENT) == first  # JupyterLab's and Python's caches change nothing
    (folder / "wards.csv").write_text("ward,beds\nA,12\n", encoding="utf-8")
    with_data = input_hash(course, ASSIGNMENT)
    assert with_data != first  # a data file the learner version ships with
    course.config.write_text(course.config.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert input_hash(course, ASSIGNMENT) not in (first, with_data)


def test_the_release_line_counts_notebooks_graded_cells_and_points() -> None:
    triage = NotebookSummary("triage", graded_cells=3, autograded_tests=2, points=5.0)
    assert ReleaseResult("01-x", "released", [triage], 1.24).summary() == (
        "01-x: released 1 notebook (triage), 3 graded cells (2 autograded), 5 points in 1.2 s")
    both = ReleaseResult("01-x", "unchanged", [triage, NotebookSummary("ward", 1, 1, 2.5)])
    assert both.summary() == "01-x: unchanged, 2 notebooks (triage, ward), 4 graded cells (3 autograded), 7.5 points"
    assert ReleaseResult("02-y", "empty").summary() == "02-y: no notebooks yet, nothing to release"
