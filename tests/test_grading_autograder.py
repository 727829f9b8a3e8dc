"""careops.grading.autograder: the batch grader's own parts (the whole of it runs in
tests/test_grade_adversarial_batch.py, test_grade_crash.py and test_grade_modules.py)."""
from __future__ import annotations

from pathlib import Path

from careops.grading.autograder import GradeRow, GradeSummary, Journal, skipped_by_grader


def test_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"learner": "ana", "key": "1", "status": "graded"})
    journal.append({"learner": "ana", "key": "2", "status": "graded"})
    with open(journal.path, "a") as fh:
        fh.write('{"learner": "bo", "key"')  # killed mid-write
    assert {k: v["key"] for k, v in journal.entries().items()} == {"ana": "2"}


def test_only_a_locked_lab_step_marked_skip_is_skipped_by_the_grader() -> None:
    def cell(careops: object, **nbgrader: object) -> dict:
        return {"cell_type": "code", "source": "lab = Lab('x')\n",
                "metadata": {"careops": careops, "nbgrader": {"grade_id": "start-lab", **nbgrader}}}

    assert skipped_by_grader(cell({"grader": "skip"}, locked=True))
    assert not skipped_by_grader(cell({"grader": "skip"}, locked=False))  # a cell the learner may change runs
    assert not skipped_by_grader(cell({"grader": "skip"}, locked=True, solution=True))  # an answer always runs
    assert not skipped_by_grader(cell({"grader": "run"}, locked=True))
    assert not skipped_by_grader(cell("skip", locked=True))
    assert not skipped_by_grader({"cell_type": "code", "source": "", "metadata": {}})


def test_summary_counts_full_marks_per_test_and_lists_what_was_not_graded_fully(tmp_path: Path) -> None:
    rows = [GradeRow("ana", "graded", 4, 4, {"test_a": 2, "test_b": 2}, ""),
            GradeRow("bo", "graded", 2, 4, {"test_a": 2, "test_b": 0}, ""),
            GradeRow("<cy>", "rejected", 0, 4, {}, "cy.ipynb is empty (0 cells)")]
    summary = GradeSummary("01-x", rows, ["test_a", "test_b"], {"test_a": 2, "test_b": 2}, tmp_path / "grades.csv",
                           None, graded_now=["ana"], skipped=["bo", "<cy>"], seconds=1.0)
    assert summary.pass_rates() == {"test_a": 2 / 3, "test_b": 1 / 3}
    assert [r.learner for r in summary.problems] == ["<cy>"]
    text = str(summary)
    assert text.startswith("01-x: 3 submission(s), 1 graded now, 2 unchanged; grades in ")
    assert "  test_a: 67% full marks" in text and "  ! <cy> (rejected): cy.ipynb is empty (0 cells)" in text
    page = summary._repr_html_()
    assert "&lt;cy&gt;" in page and "<cy>" not in page and "<img" not in page  # no plot file: no image
