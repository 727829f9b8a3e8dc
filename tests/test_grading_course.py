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
