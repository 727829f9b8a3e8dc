"""The class's activity: every learner check's verdict as the checks reported it live, and what the dashboard shows.

The hand-in service (careops.workshop.handin_service) records each report a learner's check posts
(careops.report.reporting) under the hub user whose token sent it, with the server's time; the dashboard
(careops.workshop.dashboard) reads them back. Both run in the hub container and share one SQLite file in the
hub's state volume. What a report may hold is checked here (types, lengths); nothing else of it is kept.

:func:`class_view` joins the reports with the hand-ins and grades of the store (careops.handins) into one
:class:`Progress` per learner and exercise: the latest verdict with its message, attempts, minutes on it (from
the first run of its check to the first pass, or to the latest run while it fails), and whether the learner is
stuck (the latest run failed and the check has failed since more than N minutes ago).

Standard library only (it runs inside careops/hub).
"""
from __future__ import annotations

import json
import re
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from careops.handins import Assignments, HandIn, HandInStore
from careops.workshop.labels import ACTIVITY_DB_ENV, HANDINS_DIR_ENV, HUB_ACTIVITY_DB, HUB_HANDINS_DIR

#: Reports kept per learner (a loop calling a check cannot fill the hub's disk).
MAX_REPORTS_PER_LEARNER = 20_000
MAX_TEXT = 200
MAX_CRITERIA = 30
#: An exercise whose notebook is not one of the course's (a copy, a scratch notebook).
OTHER = "(other notebooks)"
_CHECK_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,199}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id INTEGER PRIMARY KEY,
    learner TEXT NOT NULL,
    assignment TEXT NOT NULL,
    check_id TEXT NOT NULL,
    title TEXT NOT NULL,
    passed INTEGER NOT NULL,
    summary TEXT NOT NULL,
    criteria TEXT NOT NULL,
    received_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_learner ON reports (learner, check_id, received_at);
"""


class ReportRefused(ValueError):
    """A check report that is not one (wrong types, too long, unknown fields); the service answers 400."""


def _text(message: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = message.get(key, None if required else "")
    if not isinstance(value, str):
        raise ReportRefused(f"'{key}' must be text")
    if len(value) > MAX_TEXT:
        raise ReportRefused(f"'{key}' is longer than {MAX_TEXT} characters")
    return value


def checked_report(message: Any, assignments: Assignments) -> dict[str, Any]:
    """What a report may say, checked: check id, title, passed, summary, criteria (message + mark), notebook."""
    if not isinstance(message, dict):
        raise ReportRefused("a check report is a JSON object")
    known = {"check", "title", "passed", "not_written", "summary", "criteria", "notebook", "ran_at"}
    unknown = sorted(set(message) - known)
    if unknown:
        raise ReportRefused(f"unknown field(s) {', '.join(unknown)}: a check report has {', '.join(sorted(known))} "
                            "(who sent it and when it arrived are the hub's and the server's to say)")
    check = _text(message, "check")
    if not _CHECK_OK.match(check):
        raise ReportRefused(f"'check' must be a check's dotted name, got {check[:60]!r}")
    if not isinstance(message.get("passed"), bool):
        raise ReportRefused("'passed' must be true or false")
    criteria = message.get("criteria", [])
    if not isinstance(criteria, list) or len(criteria) > MAX_CRITERIA or not all(
            isinstance(c, dict) and isinstance(c.get("message"), str) and isinstance(c.get("passed"), bool)
            for c in criteria):
        raise ReportRefused(f"'criteria' must be a list of at most {MAX_CRITERIA} {{message, passed}}")
    notebook = _text(message, "notebook", required=False)
    folder = notebook.split("/")[0] if "/" in notebook else ""
    return {"check": check, "title": _text(message, "title") or check, "passed": message["passed"],
            "summary": _text(message, "summary", required=False),
            "criteria": [{"message": c["message"][:MAX_TEXT], "passed": c["passed"]} for c in criteria],
            "assignment": folder if folder in assignments.notebooks else OTHER}


@dataclass(frozen=True)
class Report:
    """One run of a check by one learner, as recorded."""

    learner: str
    assignment: str
    check: str
    title: str
    passed: bool
    summary: str
    criteria: list[dict[str, Any]]
    received_at: datetime

    @property
    def message(self) -> str:
        """What the dashboard shows beside the mark: the first failed criterion, else the summary."""
        failed = [c["message"] for c in self.criteria if not c["passed"]]
        return failed[0] if failed else self.summary


class ActivityLog:
    """The reports in SQLite (one file, shared by the hand-in service, which writes, and the dashboard)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def record(self, learner: str, report: dict[str, Any], *, now: datetime | None = None) -> Report:
        """Store a :func:`checked_report` of ``learner`` (the hub's name for the token that sent it)."""
        when = now or datetime.now(timezone.utc)
        with self._lock, self._connect() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM reports WHERE learner = ?", (learner,)).fetchone()
            if count >= MAX_REPORTS_PER_LEARNER:
                raise ReportRefused(f"{learner} has {count} check reports already, the most the dashboard keeps")
            db.execute("INSERT INTO reports (learner, assignment, check_id, title, passed, summary, criteria, "
                       "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (learner, report["assignment"], report["check"], report["title"], int(report["passed"]),
                        report["summary"], json.dumps(report["criteria"]), when.timestamp()))
        return Report(learner, report["assignment"], report["check"], report["title"], report["passed"],
                      report["summary"], report["criteria"], when)

    def reports(self) -> list[Report]:
        """Every report, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT learner, assignment, check_id, title, passed, summary, criteria, received_at "
                              "FROM reports ORDER BY received_at, id").fetchall()
        return [Report(r[0], r[1], r[2], r[3], bool(r[4]), r[5], json.loads(r[6]),
                       datetime.fromtimestamp(r[7], timezone.utc)) for r in rows]


def shared_state(env: dict[str, str]) -> tuple[HandInStore, ActivityLog]:
    """The hand-in store and the activity log both services use, where the hub's environment for them says."""
    return (HandInStore(Path(env.get(HANDINS_DIR_ENV, HUB_HANDINS_DIR))),
            ActivityLog(env.get(ACTIVITY_DB_ENV, HUB_ACTIVITY_DB)))


@dataclass
class Progress:
    """One learner on one exercise (one check), from its reports."""

    learner: str
    assignment: str
    check: str
    title: str = ""
    attempts: int = 0
    passed: bool = False  # the latest run's verdict
    message: str = ""  # the latest run's first failed criterion, or its summary
    first_at: datetime | None = None
    first_pass_at: datetime | None = None
    last_at: datetime | None = None
    failing_since: datetime | None = None  # the first failed run after the last pass (None: the latest passed)

    def add(self, report: Report) -> None:
        self.attempts += 1
        self.title, self.passed, self.message, self.last_at = (report.title, report.passed, report.message,
                                                              report.received_at)
        self.first_at = self.first_at or report.received_at
        if report.passed:
            self.first_pass_at = self.first_pass_at or report.received_at
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = report.received_at

    @property
    def minutes(self) -> float:
        """Minutes on it: from the first run to the first pass (to the latest run while it has not passed)."""
        end = self.first_pass_at or self.last_at
        return (end - self.first_at).total_seconds() / 60 if self.first_at and end else 0.0

    def stuck_minutes(self, now: datetime) -> float:
        """Minutes the check has been failing, when its latest run failed (0 when it passed)."""
        return (now - self.failing_since).total_seconds() / 60 if self.failing_since else 0.0


@dataclass
class Exercise:
    assignment: str
    check: str
    title: str


@dataclass
class ClassView:
    """Everything the dashboard shows at one moment."""

    now: datetime
    stuck_after: float  # minutes
    learners: list[str]
    exercises: list[Exercise]
    progress: dict[tuple[str, str], Progress]  # (learner, check) -> progress
    hand_ins: dict[tuple[str, str], list[HandIn]]  # (learner, assignment) -> hand-ins, oldest first
    grades: dict[str, dict[str, dict[str, Any]]]  # assignment -> learner -> grade row
    activity: dict[str, dict[str, Any]] = field(default_factory=dict)  # learner -> the hub's view (server, last)

    def is_stuck(self, p: Progress | None) -> bool:
        return p is not None and not p.passed and p.stuck_minutes(self.now) > self.stuck_after

    @property
    def assignments(self) -> list[str]:
        seen = {e.assignment for e in self.exercises} | {a for _, a in self.hand_ins} | set(self.grades)
        return sorted(seen, key=lambda a: (a == OTHER, a))

    def passed_counts(self) -> list[tuple[Exercise, int, int, int]]:
        """Per exercise: learners whose latest run passed, who are failing (not stuck), who are stuck."""
        out = []
        for e in self.exercises:
            ps = [self.progress.get((learner, e.check)) for learner in self.learners]
            stuck = sum(1 for p in ps if self.is_stuck(p))
            passed = sum(1 for p in ps if p is not None and p.passed)
            failing = sum(1 for p in ps if p is not None and not p.passed) - stuck
            out.append((e, passed, failing, stuck))
        return out


def _natural(text: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def class_view(reports: list[Report], learners: list[str], hand_ins: list[HandIn],
               grades: dict[str, dict[str, dict[str, Any]]], *, now: datetime, stuck_after: float,
               activity: dict[str, dict[str, Any]] | None = None) -> ClassView:
    """Join reports, hand-ins and grades: one :class:`Progress` per learner and check. ``learners`` (the hub's
    learners group) are the rows, those who did nothing yet included."""
    progress: dict[tuple[str, str], Progress] = {}
    exercises: dict[str, Exercise] = {}
    for r in reports:
        p = progress.setdefault((r.learner, r.check), Progress(r.learner, r.assignment, r.check))
        p.add(r)
        exercises[r.check] = Exercise(r.assignment, r.check, r.title)
    by_learner: dict[tuple[str, str], list[HandIn]] = {}
    for h in hand_ins:
        by_learner.setdefault((h.learner, h.assignment), []).append(h)
    # the hub's learners (instructors trying a check are not the class); everyone seen when the hub did not answer
    everyone = set(learners) or ({r.learner for r in reports} | {h.learner for h in hand_ins})
    ordered = sorted(exercises.values(), key=lambda e: (e.assignment == OTHER, e.assignment, _natural(e.title)))
    return ClassView(now, stuck_after, sorted(everyone), ordered, progress, by_learner, grades, activity or {})


__all__ = ["ActivityLog", "ClassView", "Exercise", "MAX_REPORTS_PER_LEARNER", "OTHER", "Progress", "Report",
           "ReportRefused", "checked_report", "class_view", "shared_state"]
