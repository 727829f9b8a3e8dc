"""careops.grading.course: the course layout, nbgrader's failures explained, and executed notebooks read back.

(Running nbgrader itself: tests/test_notebooks.py and the grading end-to-end tests.)
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from careops.grading.course import GradingError, cell_runs, explain_nbgrader_log, generate_assignment, make_temp_course


def test_nbgraders_log_becomes_each_cause_once_with_the_notebook_and_the_fix() -> None:
    log = "\n".join([
        "[GenerateAssignment | INFO] Converting notebook /c/notebooks/01-x/triage.ipynb",
        "[GenerateAssignment | ERROR] There was an error processing assignment: /c/notebooks/01-x",
        "[GenerateAssignment | ERROR] Traceback (most recent call last):",
        '  File "nbgrader/preprocessors/checkcellmetadata.py", line 40, in preprocess',
        "nbgrader.preprocessors.base.ValidationError: Duplicate grade id: triage",
        "[GenerateAssignment | ERROR] Duplicate grade id: triage",
        "[GenerateAssignment | ERROR] Please see the above traceback for details.",
    ])
    explanation, notebook, fix = explain_nbgrader_log(log)
    assert explanation == "ValidationError: Duplicate grade id: triage"
    assert notebook == "/c/notebooks/01-x/triage.ipynb"
    assert fix is not None and fix.startswith("give every graded, solution and locked cell its own grade_id")
    assert explain_nbgrader_log("starting\nsomething odd happened\n") == ("something odd happened", None, None)


def test_cell_runs_read_each_code_cells_error_and_printed_text(tmp_path: Path) -> None:
    red, plain = "\x1b[0;31m", "\x1b[0m"
    nb = {"cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Triage"},
        {"cell_type": "code", "metadata": {}, "source": "print('ready')",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["ready", "\n"]}]},
        {"cell_type": "code", "metadata": {"nbgrader": {"grade_id": "test_triage"}}, "source": "check()",
         "outputs": [{"output_type": "error", "ename": "AssertionError", "evalue": "triage",
                      "traceback": [f"{red}Traceback (most recent call last){plain}", "  File <cell>, line 1",
                                    f"{red}AssertionError{plain}: Exercise 1: triage", "fix: sort by acuity"]}]},
    ]}
    path = tmp_path / "triage.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    ready, test = cell_runs(path)
    assert (ready.index, ready.label, ready.error, ready.text) == (2, "triage: cell 2", "", "ready")
    assert (test.index, test.label) == (3, "triage:test_triage") and "\x1b" not in test.error
    assert test.error_summary == "AssertionError: Exercise 1: triage\nfix: sort by acuity"
    assert cell_runs(tmp_path / "never-autograded.ipynb") == []


def test_an_unknown_assignment_is_refused_before_nbgrader_runs(tmp_path: Path) -> None:
    course = make_temp_course(tmp_path / "course", "00-orientation")
    with pytest.raises(GradingError, match=r"unknown assignment '99-none'.*\(assignments: 00-orientation\)") as err:
        generate_assignment("99-none", course.root)
    assert err.value.fix == "check the name, or create the folder with its notebooks"
    assert not course.release.exists()


def test_a_new_course_gets_the_gradebook_nbgrader_would_make_without_running_alembic(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    import sqlite3

    from nbgrader.api import Gradebook, get_alembic_version

    from careops.grading import course as C

    monkeypatch.setenv("CAREOPS_CACHE", str(tmp_path / "cache"))
    course = make_temp_course(tmp_path / "course", "00-orientation")
    assert C.seed_gradebook(course) and not C.seed_gradebook(course)  # once: an existing gradebook is kept
    # nbgrader's own way, for comparison: a gradebook it sets up itself (``alembic heads`` from this environment)
    theirs = tmp_path / "theirs.db"
    monkeypatch.setenv("PATH", C.nbgrader_env()["PATH"])
    with Gradebook(f"sqlite:///{theirs}", C.COURSE_ID):
        pass

    def schema(path: Path) -> tuple:
        with sqlite3.connect(path) as db:
            return (db.execute("SELECT version_num FROM alembic_version").fetchall(),
                    db.execute("SELECT id FROM course").fetchall(),
                    sorted(db.execute("SELECT type, name, sql FROM sqlite_master").fetchall(), key=str))

    assert schema(course.gradebook) == schema(theirs)
    assert schema(course.gradebook)[0] == [(get_alembic_version(),)]
    # nbgrader takes it as its own: the release registers the assignment in it, and runs no alembic (one that
    # fails comes first on its PATH: a nbgrader that set the gradebook up itself would fail on it)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "alembic").write_text("#!/bin/sh\necho alembic ran >&2\nexit 3\n")
    (fake / "alembic").chmod(0o755)
    path = {"PATH": f"{fake}:{C.nbgrader_env()['PATH']}"}
    generate_assignment("00-orientation", course.root, env=path)
    with pytest.raises(GradingError):  # the same release with no gradebook yet needs alembic: the fake one fails
        other = make_temp_course(tmp_path / "other", "00-orientation")
        monkeypatch.setenv("CAREOPS_CACHE", "/proc/careops-cannot-write-here")
        generate_assignment("00-orientation", other.root, env=path)
    with Gradebook(course.db_url, C.COURSE_ID) as gb:
        assert [a.name for a in gb.assignments] == ["00-orientation"]


def test_a_broken_cached_gradebook_is_made_again_and_no_cache_costs_nothing(tmp_path: Path, monkeypatch) -> None:
    from careops.grading import course as C

    monkeypatch.setenv("CAREOPS_CACHE", str(tmp_path / "cache"))
    first = C.empty_gradebook()
    assert first is not None and first.is_file()
    first.write_bytes(b"not a database")
    assert C.empty_gradebook() == first and first.read_bytes().startswith(b"SQLite format 3")
    # a cache that cannot be written: no seed, and nbgrader sets the gradebook up itself as before
    monkeypatch.setenv("CAREOPS_CACHE", "/proc/careops-cannot-write-here")
    course = make_temp_course(tmp_path / "course", "00-orientation")
    assert C.empty_gradebook() is None and not C.seed_gradebook(course)
    generate_assignment("00-orientation", course.root)
    assert course.gradebook.is_file()

