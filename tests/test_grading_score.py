"""careops.grading.score: executed notebooks scored into the gradebook by nbgrader's own machinery.

Uses the session's orientation course (conftest) with learners of its own.
"""
from __future__ import annotations

from typing import Any

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.course import read_scores
from careops.grading.score import Scorer

ASSIGNMENT = "00-orientation"
TESTS = ("test_is_synthetic", "test_triage_probe_spec", "test_triage_probe_running", "test_leaked_names")


@pytest.fixture(scope="module")
def scorer(orientation_course: Any) -> Scorer:
    return Scorer(orientation_course)


def _scores(scorer: Scorer, learner: str) -> dict[str, float]:
    return {c.grade_id: c.score for c in read_scores(ASSIGNMENT, learner, scorer.course.root)}


def test_an_error_output_scores_zero_and_a_clean_test_cell_full_marks(scorer: Scorer, orientation_source: dict
                                                                      ) -> None:
    """The notebook was executed elsewhere (sandbox and trusted code): nbgrader only reads its outputs."""
    B.cell(orientation_source, "test_leaked_names")["outputs"] = [
        {"output_type": "error", "ename": "CheckFailed", "evalue": "Exercise 3", "traceback": ["CheckFailed: no"]}]
    scorer.record(ASSIGNMENT, "score-ana", {"orientation": orientation_source})
    assert _scores(scorer, "score-ana") == {**dict.fromkeys(TESTS, 2.0), "test_leaked_names": 0.0}


def test_a_submission_that_cannot_be_graded_gets_zero_and_a_page_that_says_why(scorer: Scorer,
                                                                               orientation_source: dict) -> None:
    scorer.record(ASSIGNMENT, "score-bo", {"orientation": orientation_source})  # graded earlier: full marks
    assert set(_scores(scorer, "score-bo").values()) == {2.0}
    scorer.record_zero(ASSIGNMENT, "score-bo", "score-bo.ipynb is empty <0 cells>")
    assert _scores(scorer, "score-bo") == dict.fromkeys(TESTS, 0.0)  # replaced, not added to
    assert not scorer.course.autograded("score-bo", ASSIGNMENT).exists()
    page = (scorer.feedback_dir("score-bo", ASSIGNMENT) / "not-graded.html").read_text(encoding="utf-8")
    assert "score-bo.ipynb is empty &lt;0 cells&gt;" in page and "Score: 0" in page
