"""The grader's journal of one assignment: what each learner's last grading run recorded, beside the gradebook.

nbgrader's gradebook holds the scores; the journal holds what the gradebook has no place for: the submission's
key (its digest and the grader's version, so an unchanged hand-in is not graded again), its status and reason,
the hand-in time's source, what the LMS said about the learner, the tampering undone and the exercises not
answered. It is append-only (a killed run loses nothing: a submission is done when its line is written, after its
grades are committed), and the last line of a learner wins.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from careops.grading.course import Course


def grading_dir(course: Course, assignment: str) -> Path:
    """Where the grader keeps its journal, CSVs and plot for one assignment."""
    return course.build / "grading" / assignment


class Journal:
    """Append-only record of recorded submissions; the last line of a learner wins."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, course: Course, assignment: str) -> Journal:
        return cls(grading_dir(course, assignment) / "journal.jsonl")

    def entries(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if not self.path.is_file():
            return found
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash: that submission is simply graded again
            if isinstance(entry, dict) and isinstance(entry.get("learner"), str):
                found[entry["learner"]] = entry
        return found

    def append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


__all__ = ["Journal", "grading_dir"]
