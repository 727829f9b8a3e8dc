"""The class's grades, always read from nbgrader's gradebook: grades.csv, the LMS exports and the score plot.

After every grading run (one learner or all) the files are written again for the whole class from the gradebook,
so a run that graded one learner never drops the others' rows, and a grade changed by hand in nbgrader's
formgrader shows up in the next export. What the gradebook has no place for (status, reason, where the hand-in
time comes from, the LMS's ids) comes from the grader's journal (:mod:`careops.grading.journal`).

``grades.csv`` columns: learner, status, score (after any late penalty), max_score, one column per autograded
test, raw_score, late_penalty, handed_in (UTC), handed_in_from, due (UTC, with the learner's extension), reason.

The LMS exports are nbgrader export plugins (``careops grade`` writes both after every run;
``nbgrader export --exporter=careops.grading.export.CanvasExportPlugin`` works too, with the settings in
grading/nbgrader_config.py):

* :class:`CanvasExportPlugin`: Canvas's gradebook import CSV (Student, ID, SIS User ID, SIS Login ID, Section,
  one column per assignment named ``<assignment> (<Canvas assignment id>)``);
* :class:`MoodleExportPlugin`: Moodle's assignment grading worksheet (Identifier ``Participant <id>``, Full name,
  Email address, Status, Grade, ...), which Moodle's gradebook CSV import can also map by e-mail.

Both write the final score (after any late penalty) and the hand-in time.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from nbgrader.plugins import ExportPlugin
from traitlets import Dict, Unicode

from careops.grading.course import COURSE_ID, Course
from careops.grading.journal import Journal, grading_dir
from careops.grading.lms import CANVAS
from careops.grading.restore import grade_id, is_test

STATUSES = ("graded", "incomplete", "rejected", "error", "missing")
EXTRA_COLUMNS = ["raw_score", "late_penalty", "handed_in", "handed_in_from", "due"]


@dataclass
class ClassRow:
    """One learner's line for one assignment."""

    learner: str
    status: str  # graded | incomplete | rejected | error (grader problem, retried) | missing (no hand-in)
    score: float  # after the late penalty
    max_score: float
    cells: dict[str, float]
    reason: str = ""
    raw_score: float = 0.0
    late_penalty: float = 0.0
    handed_in: datetime | None = None
    handed_in_from: str = ""
    due: datetime | None = None
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_user_id: str = ""
    lms: str = ""
    participant: str = ""  # Moodle's id of the learner in this assignment

    @property
    def handed_in_or_graded(self) -> bool:
        return self.status != "missing"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.learner

    @property
    def late(self) -> str:
        """How late the hand-in was (``2 h 5 min``), '' when on time or unknown."""
        if self.handed_in is None or self.due is None or self.handed_in <= self.due:
            return ""
        return duration(self.handed_in - self.due)

    def comment(self) -> str:
        """A one-line comment for an LMS: the score, and why when it is not plain."""
        parts = [f"Autograded: {self.raw_score:g} of {self.max_score:g} points"]
        if self.late_penalty:
            parts.append(f"late by {self.late}: penalty {self.late_penalty:g}")
        if self.status not in ("graded", "missing") and self.reason:
            parts.append(self.reason)
        return "; ".join(parts)


@dataclass
class ClassTable:
    """Every learner of the class for one assignment."""

    assignment: str
    test_ids: list[str]
    rows: list[ClassRow] = field(default_factory=list)
    max_points: dict[str, float] = field(default_factory=dict)


def duration(delta: Any) -> str:
    minutes = int(delta.total_seconds() // 60) + (1 if delta.total_seconds() % 60 else 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    return " ".join(p for p in (f"{days} d" if days else "", f"{hours} h" if hours else "",
                                f"{mins} min" if mins or not (days or hours) else "") if p)


def test_columns(sources: dict[str, dict[str, Any]]) -> list[str]:
    """Column names of the autograded test cells, in notebook order (``notebook:grade_id`` with several notebooks)."""
    ids = []
    for name, nb in sources.items():
        for cell in nb.get("cells", []):
            if is_test(cell) and grade_id(cell):
                ids.append(grade_id(cell) if len(sources) == 1 else f"{name}:{grade_id(cell)}")
    return ids


def _sources(course: Course, assignment: str) -> dict[str, dict[str, Any]]:
    import json

    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in course.notebooks(assignment)}


def class_table(gradebook: Any, course: Course, assignment: str, *, learners: Iterable[str] | None = None,
                journal: dict[str, dict[str, Any]] | None = None) -> ClassTable:
    """The assignment's row of every learner the gradebook knows (or only ``learners``), with the journal's notes."""
    from nbgrader.api import MissingEntry

    sources = _sources(course, assignment)
    table = ClassTable(assignment, test_columns(sources))
    entries = Journal.of(course, assignment).entries() if journal is None else journal
    wanted = set(learners) if learners is not None else None
    known = {s.id: s for s in gradebook.students}
    for learner in sorted(set(known) | set(entries)):
        if wanted is not None and learner not in wanted:
            continue
        student = known.get(learner)
        entry = entries.get(learner, {})
        profile = entry.get("profile") or {}
        row = ClassRow(learner, entry.get("status", "missing"), 0.0, 0.0, {}, entry.get("reason", ""),
                       handed_in_from=entry.get("handed_in_from", ""),
                       first_name=(student.first_name if student else "") or profile.get("first_name", ""),
                       last_name=(student.last_name if student else "") or profile.get("last_name", ""),
                       email=(student.email if student else "") or profile.get("email", ""),
                       lms_user_id=(student.lms_user_id if student else "") or profile.get("lms_user_id", ""),
                       lms=profile.get("lms", ""), participant=profile.get("participant", ""))
        try:
            sub = gradebook.find_submission(assignment, learner)
        except MissingEntry:
            sub = None
        if sub is not None:
            for nb in sub.notebooks:
                for g in nb.grades:
                    col = g.name if len(sources) == 1 else f"{nb.name}:{g.name}"
                    row.cells[col] = float(g.score or 0.0)
                    table.max_points[col] = float(g.max_score or 0.0)
            row.raw_score = float(sub.score or 0.0)
            row.late_penalty = float(sub.late_submission_penalty or 0.0)
            row.score = max(0.0, row.raw_score - row.late_penalty)
            row.max_score = float(sub.max_score or 0.0)
            row.handed_in, row.due = sub.timestamp, sub.duedate
            if row.status == "missing":
                row.status = "graded"  # graded by hand (formgrader) or by nbgrader directly
        else:
            try:
                row.max_score = float(gradebook.find_assignment(assignment).max_score or 0.0)
                row.due = gradebook.find_assignment(assignment).duedate
            except MissingEntry:
                pass
        table.rows.append(row)
    for t in table.test_ids:
        table.max_points.setdefault(t, 0.0)
    return table


def _fmt(x: float) -> str:
    return f"{x:g}"


def _time(when: datetime | None) -> str:
    return when.isoformat(sep=" ", timespec="seconds") if when else ""


def write_grades_csv(table: ClassTable, path: Path) -> Path:
    """The course's own layout (see the module doc), written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["learner", "status", "score", "max_score", *table.test_ids, *EXTRA_COLUMNS, "reason"])
    for r in table.rows:
        w.writerow([r.learner, r.status, _fmt(r.score), _fmt(r.max_score),
                    *(_fmt(r.cells.get(t, 0.0)) for t in table.test_ids),
                    _fmt(r.raw_score), _fmt(r.late_penalty), _time(r.handed_in), r.handed_in_from, _time(r.due),
                    r.reason])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
    return path


@dataclass
class Exports:
    """The files one export wrote."""

    table: ClassTable
    grades_csv: Path
    canvas_csv: Path
    moodle_csv: Path
    plot: Path | None


def export_class(course: Course, assignment: str) -> Exports:
    """Write grades.csv, the Canvas and Moodle CSVs and the score plot of ``assignment`` for the whole class."""
    import warnings

    from nbgrader.api import Gradebook

    out = grading_dir(course, assignment)
    config = _export_config(course)
    with warnings.catch_warnings(), Gradebook(course.db_url, COURSE_ID) as gb:
        warnings.simplefilter("ignore")  # nbgrader's SQLAlchemy "not in session" chatter
        table = class_table(gb, course, assignment)
        canvas = CanvasExportPlugin(config=config, to=str(out / "canvas.csv"), assignment=[assignment],
                                    course_root=str(course.root))
        canvas.export(gb)
        moodle = MoodleExportPlugin(config=config, to=str(out / "moodle.csv"), assignment=[assignment],
                                    course_root=str(course.root))
        moodle.export(gb)
    grades = write_grades_csv(table, out / "grades.csv")
    plot = plot_scores(table.rows, out / "scores.png", assignment)
    return Exports(table, grades, out / "canvas.csv", out / "moodle.csv", plot)


def _export_config(course: Course) -> Any:
    """The course's nbgrader config (the exporters' settings, e.g. Canvas assignment ids)."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader(course.config.name, path=str(course.config.parent)).load_config()


# -- LMS exports (nbgrader export plugins) ------------------------------------------------------------------------------------------

class _CourseExport(ExportPlugin):
    """An export for one course: the class table of each assignment from the gradebook and the grader's journal."""

    course_root = Unicode("", help="the course folder (default: nbgrader's course directory)").tag(config=True)

    def _root(self) -> Path:
        if self.course_root:
            return Path(self.course_root)
        coursedir = getattr(self.parent, "coursedir", None)
        return Path(coursedir.root if coursedir is not None else ".")

    def tables(self, gradebook: Any) -> list[Any]:
        course = Course(self._root().resolve())
        names = [a.name for a in gradebook.assignments if not self.assignment or a.name in self.assignment]
        return [class_table(gradebook, course, name, learners=[str(s) for s in self.student] or None)
                for name in names]

    def write(self, rows: list[list[str]], default_name: str) -> Path:
        dest = Path(self.to or default_name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, dest)
        self.log.info("Exported grades to %s", dest)
        return dest


CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


class CanvasExportPlugin(_CourseExport):
    """Canvas's gradebook import CSV: one row per learner, one column per assignment (final score)."""

    canvas_assignment_ids = Dict(
        {}, help="course assignment -> Canvas assignment id, so the column updates that assignment "
                 "(without one, Canvas creates a new assignment from the column)").tag(config=True)

    def column(self, assignment: str) -> str:
        cid = self.canvas_assignment_ids.get(assignment)
        return f"{assignment} ({cid})" if cid else assignment

    def export(self, gradebook: Any) -> None:
        tables = self.tables(gradebook)
        learners: dict[str, Any] = {}
        scores: dict[tuple[str, str], str] = {}
        for table in tables:
            for row in table.rows:
                learners.setdefault(row.learner, row)
                scores[(row.learner, table.assignment)] = _num(row.score) if row.handed_in_or_graded else ""
        out = [CANVAS_COLUMNS + [self.column(t.assignment) for t in tables]]
        for learner, row in sorted(learners.items()):
            name = f"{row.last_name}, {row.first_name}" if row.last_name and row.first_name else learner
            canvas_id = row.lms_user_id if row.lms in ("", CANVAS) else ""
            out.append([name, canvas_id, "", "", ""] + [scores.get((learner, t.assignment), "") for t in tables])
        self.write(out, "canvas-grades.csv")


MOODLE_COLUMNS = ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade",
                  "Grade can be changed", "Last modified (submission)", "Last modified (grade)", "Feedback comments"]


class MoodleExportPlugin(_CourseExport):
    """Moodle's assignment grading worksheet (one assignment): Identifier ``Participant <id>``, grade, feedback."""

    def export(self, gradebook: Any) -> None:
        tables = self.tables(gradebook)
        if len(tables) != 1:
            raise ValueError(f"a Moodle grading worksheet holds one assignment, got {len(tables)}: "
                             "pass --assignment=<name>")
        table = tables[0]
        out = [MOODLE_COLUMNS]
        for row in table.rows:
            out.append([f"Participant {row.participant}" if row.participant else "", row.full_name, row.email,
                        "Submitted for grading" if row.handed_in_or_graded else "No submission",
                        _num(row.score), _num(row.max_score), "Yes", _moodle_time(row.handed_in), "-",
                        row.comment()])
        self.write(out, f"moodle-{table.assignment}.csv")


def _num(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if x == x else ""


def _moodle_time(when: datetime | None) -> str:
    """A time as Moodle's worksheet writes it (``Monday, 2 March 2026, 5:05 PM``), in UTC; '-' for none."""
    if when is None:
        return "-"
    return f"{when:%A}, {when.day} {when:%B %Y}, {when.hour % 12 or 12}:{when:%M %p}"


def plot_scores(rows: list[ClassRow], path: Path, assignment: str) -> Path | None:
    """A histogram of the scores of the learners who handed in (PNG); the y axis counts whole learners."""
    rows = [r for r in rows if r.handed_in_or_graded]
    if not rows:
        return None
    from matplotlib.ticker import MaxNLocator

    from careops.report import theme
    from careops.report.figure import Figure

    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot()
    top = max((r.max_score for r in rows), default=1.0) or 1.0
    ax.hist([r.score for r in rows], bins=[x - 0.5 for x in range(int(top) + 2)], color=theme.FIGURE["primary"],
            rwidth=0.9)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("score")
    ax.set_ylabel("learners")
    ax.set_title(f"{assignment}: score distribution")
    fig.tight_layout()
    fig.savefig(path)
    return path


__all__ = ["CanvasExportPlugin", "ClassRow", "ClassTable", "Exports", "MoodleExportPlugin", "class_table",
           "duration", "export_class", "plot_scores", "test_columns", "write_grades_csv"]
