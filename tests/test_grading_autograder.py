"""careops.grading.autograder: the batch grader's own parts (the whole of it runs in
tests/test_grade_adversarial_batch.py, test_grade_crash.py and test_grade_modules.py)."""
from __future__ import annotations

from pathlib import Path

from careops.grading.autograder import Journal


def test_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    journal.append({"learner": "ana", "key": "1", "status": "graded"})
    journal.append({"learner": "ana", "key": "2", "status": "graded"})
    with open(journal.path, "a") as fh:
        fh.write('{"learner": "bo", "key"')  # killed mid-write
    assert {k: v["key"] for k, v in journal.entries().items()} == {"ana": "2"}
