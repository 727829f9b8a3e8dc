"""Due dates, extensions and the late policy: grading/deadlines.yaml, applied through nbgrader's own parts.

The instructor edits one file (shipped with the course, every key explained)::

    timezone: Europe/London        # due dates and extensions without a zone are read in this zone
    late_policy:
      penalty: per_day             # none | zero | per_day
      per_day: 0.1                 # per_day: this share of the score for each started day late ...
      max: 0.5                     # ... but at most this share
      grace: 10 minutes            # hand-ins this close after the due date count as on time
    assignments:
      00-orientation:
        due: 2026-03-02 17:00
        extensions:                # learner id -> more time, or a due date of their own
          amara-okafor: 2 days
          okaforamara: 2026-03-06 12:00

At every grading run :func:`apply` and :func:`prepare_submission` write them into nbgrader's gradebook: the
assignment's ``duedate`` and each graded learner's ``extension`` (nbgrader's SubmittedAssignment.extension, so ``submission.duedate`` and
``total_seconds_late`` are nbgrader's own arithmetic). nbgrader's AssignLatePenalties preprocessor scores a late
hand-in with :class:`CourseLatePolicy`, a LateSubmissionPlugin configured in grading/nbgrader_config.py;
:func:`reassess` recomputes every penalty of the class the same way when the deadlines changed since grading.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Unicode

from careops.errors import CareOpsError

DEADLINES_FILE = Path("grading") / "deadlines.yaml"
PENALTIES = ("none", "zero", "per_day")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(minutes?|min|hours?|h|days?|d|weeks?|w)\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class DeadlineError(CareOpsError):
    """grading/deadlines.yaml cannot be read as the course's deadlines."""


@dataclass(frozen=True)
class LatePolicy:
    penalty: str = "none"
    per_day: float = 0.0
    max: float = 1.0
    grace: timedelta = timedelta(0)

    def penalty_for(self, score: float, seconds_late: float) -> float:
        """Points taken off ``score`` for a hand-in ``seconds_late`` after the learner's due date."""
        if seconds_late <= self.grace.total_seconds() or self.penalty == "none":
            return 0.0
        if self.penalty == "zero":
            return score
        days = math.ceil(seconds_late / 86400)
        return round(score * min(self.max, self.per_day * days), 4)

    def describe(self) -> str:
        grace = f", {int(self.grace.total_seconds() // 60)} min grace" if self.grace else ""
        if self.penalty == "zero":
            return f"a late hand-in scores 0{grace}"
        if self.penalty == "per_day":
            return f"{self.per_day:.0%} of the score per started day late, at most {self.max:.0%}{grace}"
        return "no penalty for lateness (the hand-in time is still recorded)"


@dataclass
class Deadlines:
    """The course's due dates (naive UTC, as nbgrader stores them), extensions and late policy."""

    due: dict[str, datetime] = field(default_factory=dict)
    #: assignment -> learner -> extension (a duration after the due date)
    extensions: dict[str, dict[str, timedelta]] = field(default_factory=dict)
    policy: LatePolicy = field(default_factory=LatePolicy)
    zone: Any = timezone.utc

    def due_for(self, assignment: str, learner: str) -> datetime | None:
        due = self.due.get(assignment)
        if due is None:
            return None
        return due + self.extensions.get(assignment, {}).get(learner, timedelta(0))


def _zone(name: str | None) -> Any:
    if not name or name.upper() == "UTC":
        return timezone.utc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DeadlineError(f"unknown time zone {name!r} in {DEADLINES_FILE}",
                            fix="use an IANA name such as Europe/London or America/New_York, or UTC") from None


def _when(value: Any, zone: Any, where: str) -> datetime:
    """A due date as naive UTC; a value without a zone is in the course's zone."""
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise DeadlineError(f"{where}: {value!r} is not a date and time (expected e.g. 2026-03-02 17:00)",
                                fix=f"write it as YYYY-MM-DD HH:MM in {DEADLINES_FILE}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def parse_duration(text: Any, where: str) -> timedelta:
    m = _DURATION.match(str(text))
    if not m:
        raise DeadlineError(f"{where}: {text!r} is not a duration (expected e.g. '2 days', '36 hours', '90 minutes')",
                            fix=f"fix it in {DEADLINES_FILE}")
    return timedelta(**{_UNITS[m.group(2)[0].lower()]: float(m.group(1))})


def load(course_root: Path) -> Deadlines:
    """The course's deadlines (none when the file is missing: nothing is late)."""
    import yaml

    path = Path(course_root) / DEADLINES_FILE
    if not path.is_file():
        return Deadlines()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DeadlineError(f"{path} is not valid YAML: {exc}", fix="fix the line it names") from None
    if not isinstance(data, dict):
        raise DeadlineError(f"{path} must be a mapping (timezone, late_policy, assignments)")
    zone = _zone(data.get("timezone"))
    late = data.get("late_policy") or {}
    penalty = str(late.get("penalty", "none"))
    if penalty not in PENALTIES:
        raise DeadlineError(f"{path}: late_policy.penalty is {penalty!r}, expected one of {', '.join(PENALTIES)}")
    policy = LatePolicy(penalty, float(late.get("per_day", 0.0)), float(late.get("max", 1.0)),
                        parse_duration(late["grace"], "late_policy.grace") if late.get("grace") else timedelta(0))
    out = Deadlines(policy=policy, zone=zone)
    for name, spec in (data.get("assignments") or {}).items():
        spec = spec or {}
        if spec.get("due") is None:
            continue
        due = _when(spec["due"], zone, f"assignments.{name}.due")
        out.due[str(name)] = due
        for learner, ext in (spec.get("extensions") or {}).items():
            where = f"assignments.{name}.extensions.{learner}"
            if _DURATION.match(str(ext)):
                delta = parse_duration(ext, where)
            else:
                delta = _when(ext, zone, where) - due
            if delta < timedelta(0):
                raise DeadlineError(f"{where}: the extension ends before the due date")
            out.extensions.setdefault(str(name), {})[str(learner)] = delta
    return out


def apply(gradebook: Any, deadlines: Deadlines, assignment: str) -> None:
    """Write the due date of ``assignment`` into nbgrader's gradebook (None: no due date)."""
    gradebook.update_or_create_assignment(assignment, duedate=deadlines.due.get(assignment))


def prepare_submission(gradebook: Any, deadlines: Deadlines, assignment: str, learner: str) -> None:
    """The learner's extension on their submission row, before nbgrader scores it (and its late penalty)."""
    gradebook.update_or_create_student(learner)
    gradebook.update_or_create_submission(assignment, learner,
                                          extension=deadlines.extensions.get(assignment, {}).get(learner))


def reassess(gradebook: Any, deadlines: Deadlines, assignment: str) -> None:
    """Every learner's late penalty of ``assignment`` again, from the current deadlines (nbgrader's arithmetic:
    a penalty is per notebook, never negative and never above the notebook's score)."""
    from nbgrader.api import MissingEntry

    apply_to = []
    for student in gradebook.students:
        try:
            apply_to.append(gradebook.find_submission(assignment, student.id))
        except MissingEntry:
            continue
    extensions = deadlines.extensions.get(assignment, {})
    for sub in apply_to:
        sub.extension = extensions.get(sub.student.id)
        late = sub.total_seconds_late
        for nb in sub.notebooks:
            penalty = deadlines.policy.penalty_for(nb.score, late) if late > 0 else None
            nb.late_submission_penalty = None if penalty is None else max(0.0, min(penalty, nb.score))
    gradebook.db.commit()


class CourseLatePolicy(LateSubmissionPlugin):
    """nbgrader's late-submission plugin with the course's policy from grading/deadlines.yaml."""

    course_root = Unicode("", help="the course folder holding grading/deadlines.yaml").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        policy = load(Path(self.course_root or ".")).policy
        penalty = policy.penalty_for(score, total_seconds_late)
        self.log.info("Late by %s s: %s -> penalty %s", total_seconds_late, policy.describe(), penalty)
        return penalty or None


__all__ = ["DEADLINES_FILE", "CourseLatePolicy", "DeadlineError", "Deadlines", "LatePolicy", "apply", "load",
           "parse_duration", "prepare_submission", "reassess"]
