"""careops.grading.journal: the last line of a learner wins; a line torn by a crash is skipped, not fatal."""
from __future__ import annotations

from pathlib import Path

from careops.grading.course import Course
from careops.grading.journal import Journal, grading_dir


def test_the_last_line_of_a_learner_wins_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    journal = Journal.of(Course(tmp_path), "00-orientation")
    assert journal.path == grading_dir(Course(tmp_path), "00-orientation") / "journal.jsonl"
    assert journal.entries() == {}
    journal.append({"learner": "ana", "key": "k1", "status": "graded"})
    journal.append({"learner": "bo", "key": "k2", "status": "rejected"})
    journal.append({"learner": "ana", "key": "k3", "status": "incomplete"})
    with open(journal.path, "a", encoding="utf-8") as fh:
        fh.write('{"learner": "cy", "key"')  # a crash in the middle of a line
    entries = journal.entries()
    assert sorted(entries) == ["ana", "bo"] and entries["ana"]["key"] == "k3"
