"""careops.grading.harness: the checks that prove a notebook both ways, on grades made up for each case.

(The harness on real notebooks and on broken fixtures: tests/test_notebooks.py.)
"""
from __future__ import annotations

import json
from pathlib import Path

from careops.grading.cleanup import CleanupReport
from careops.grading.course import AutogradeResult, CellScore, Course
from careops.grading.harness import check_cleanup, check_learner_zero, check_solution_full_marks, new_learner_id

PASSING = CellScore("triage", "test_colours", 2, 2, 2, False, True, index=4)
HALF = CellScore("triage", "test_order", 1, 2, 1, False, True, output="AssertionError: half sorted", index=6)
ANSWER = CellScore("triage", "explain", 0, 3, None, True, False, index=5)  # a person grades it: not the harness's


def _result(course: Path, *cells: CellScore) -> AutogradeResult:
    return AutogradeResult("01-x", "solution", Course(course), list(cells))


def test_solution_must_get_full_marks_and_the_problem_points_at_an_earlier_error(tmp_path: Path) -> None:
    result = _result(tmp_path, PASSING, ANSWER, HALF)
    autograded = result.autograded_notebook("triage")
    autograded.parent.mkdir(parents=True)
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ""},
             {"cell_type": "code", "metadata": {}, "source": "x",
              "outputs": [{"output_type": "error", "ename": "NameError", "evalue": "name 'x' is not defined",
                           "traceback": ["NameError: name 'x' is not defined"]}]}]
    autograded.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    [problem] = check_solution_full_marks(result)
    assert problem.startswith("triage:test_order scored 1/2 on the SOLUTION (expected 2/2)")
    assert "| AssertionError: half sorted" in problem
    assert "Earlier cells that raised (often the cause):" in problem and "NameError: name 'x' is not defined" in problem
    assert check_solution_full_marks(_result(tmp_path, PASSING, ANSWER)) == []
    [none] = check_solution_full_marks(_result(tmp_path, ANSWER))
    assert none.startswith("the solution of 01-x was graded on no autograded cell")


def test_the_learner_version_must_get_zero_on_every_autograded_cell(tmp_path: Path) -> None:
    problems = check_learner_zero(_result(tmp_path, PASSING, ANSWER, HALF))
    assert [p.split(" scored ")[0] for p in problems] == ["triage:test_colours", "triage:test_order"]
    assert "this test passes without the learner's work, so it cannot fail" in problems[0]
    assert check_learner_zero(_result(tmp_path, ANSWER)) == []


def test_cleanup_problems_say_how_to_remove_what_may_be_left() -> None:
    assert check_cleanup(None) == [] and check_cleanup(CleanupReport("harness-1", "docker SDK")) == []
    [problem] = check_cleanup(CleanupReport("harness-1", "docker SDK", problems=["could not remove volume v"]))
    assert "could not remove volume v" in problem and "careops labs reset --learner harness-1 --yes" in problem
    first, second = new_learner_id(), new_learner_id("ci")
    assert first.startswith("harness-") and second.startswith("ci-") and first[8:] != second[3:]
