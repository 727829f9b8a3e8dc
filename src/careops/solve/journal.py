"""The solve journal: one JSON line per solution shown, append-only.

Self-paced, it lives in the learner's workspace (``workspace/.careops/solved.jsonl``)
so ``careops solve --list`` can say what was used; in workshop mode the hub's
solve service keeps one for the whole class (:mod:`careops.solve.service`),
which the learner cannot edit. Either way the mark in the answer cell is what
grading reads (:mod:`careops.solve.marks`).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SolveEntry:
    """One solution shown: to whom, which answer of which module, when, from where."""

    learner: str
    module: str
    answer: str
    exercise: str  # the exercise's label, e.g. "Exercise 1 — synthetic or real-looking?"
    points: float  # what it costs
    via: str  # "checkout", "hub", "instructor"
    at: str = ""

    def stamped(self) -> "SolveEntry":
        at = self.at or datetime.now(timezone.utc).isoformat(timespec="seconds")
        return SolveEntry(self.learner, self.module, self.answer, self.exercise, self.points, self.via, at)


class SolveJournal:
    """Append-only JSONL of :class:`SolveEntry`; a torn last line is skipped when read."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: SolveEntry) -> SolveEntry:
        entry = entry.stamped()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(entry), sort_keys=True, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return entry

    def entries(self, *, learner: str | None = None, module: str | None = None) -> list[SolveEntry]:
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                raw: dict[str, Any] = json.loads(line)
                entry = SolveEntry(**{k: raw[k] for k in SolveEntry.__dataclass_fields__})
            except (ValueError, KeyError, TypeError):
                continue
            if (learner is None or entry.learner == learner) and (module is None or entry.module == module):
                found.append(entry)
        return found


def workspace_journal(notebook_folder: Path | None = None) -> SolveJournal:
    """The learner's journal, ``<workspace>/.careops/solved.jsonl`` (the workspace: the notebook folder's parent)."""
    folder = (notebook_folder or Path.cwd()).resolve()
    return SolveJournal(folder.parent / ".careops" / "solved.jsonl")


__all__ = ["SolveEntry", "SolveJournal", "workspace_journal"]
