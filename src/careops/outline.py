"""The outline of a course notebook: its exercises and the times and points it states.

Read from the notebook's JSON alone (nothing runs). Two things use it:

* **exercises** -- an exercise is a run of answer cells (nbgrader solution
  cells with no test between them) and the autograded test cells after them,
  up to the next answer cell: what ``careops solve`` shows and what a solved
  exercise costs in grading (:mod:`careops.solve`);
* **stated times** -- the header's ``**Time:**`` line, the notebook metadata
  (``careops.minutes``, ``careops.tracks``), every exercise heading
  (``## Exercise 2 — title (3 points, ~25 min)``, sub-parts as
  ``### 2a — title (2 points, ~10 min)``) and the exercise table
  (``| exercise | points | minutes |``). :func:`time_problems` says where they
  disagree; ``tests/test_course_times.py`` runs it on every notebook.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: ``## Exercise 2 — the Dockerfile (3 points, ~20 min)``; ``### 2a (2 points, ~10 min)``; ``(not graded, ~10 min)``
HEADING = re.compile(r"^(?P<level>#{2,3}) (?:Exercise )?(?P<label>\d+[a-z]?)\b(?: — (?P<title>[^\n]*?))? "
                     r"\((?:(?P<points>\d+(?:\.\d+)?) points?|(?P<ungraded>not graded))", re.MULTILINE)
_HEADING_TAIL = re.compile(r"\((?:\d+(?:\.\d+)? points?|not graded)(?:, ~(?P<minutes>\d+) min)?\)")
#: ``**Time:** about 2 hours 40 minutes — 30 minutes reading, 130 minutes exercises``
TIME_LINE = re.compile(r"\*\*Time:\*\* about (?P<total>[^—\n]+?) — (?P<reading>\d+) minutes reading, "
                       r"(?P<exercises>\d+) minutes exercises")
#: ``**Short track:** about 1 hour 50 minutes — skip exercises 3b, 5a and 5b ...``
SHORT_LINE = re.compile(r"\*\*Short track:\*\* about (?P<total>[^—\n]+?) — skip exercises? (?P<skip>[^.;(\n]+)")
_TABLE_ROW = re.compile(r"^\|\s*(?P<label>\d+[a-z]?)\. [^|]*\|\s*(?P<points>[^|]*?)\s*\|\s*(?P<minutes>\d+)\s*\|\s*$",
                        re.MULTILINE)
_DURATION = re.compile(r"^\s*(?:(?P<h>\d+) (?:hours?|h)\b)?\s*(?P<m>\d+)?\s*(?:minutes|min)?\s*$")


def source_text(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def nbgrader(cell: dict[str, Any]) -> dict[str, Any]:
    meta = cell.get("metadata")
    found = meta.get("nbgrader") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def is_answer(cell: dict[str, Any]) -> bool:
    """An answer cell: nbgrader's solution cell (code or text)."""
    return bool(nbgrader(cell).get("solution"))


def is_autograded(cell: dict[str, Any]) -> bool:
    """An autograded test: a code cell with points that is not an answer."""
    meta = nbgrader(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def parse_duration(text: str) -> int | None:
    """Minutes in ``1 hour 50 minutes``, ``2 hours``, ``45 minutes``, ``1 h 05``, ``50 min``; None if unreadable."""
    m = _DURATION.match(text.replace("about", ""))
    if not m or not (m.group("h") or m.group("m")):
        return None
    return int(m.group("h") or 0) * 60 + int(m.group("m") or 0)


def format_duration(minutes: int) -> str:
    """``1 hour 50 minutes``, ``2 hours``, ``45 minutes`` (as the notebooks' headers say it)."""
    hours, rest = divmod(minutes, 60)
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    if rest or not hours:
        parts.append(f"{rest} minutes")
    return " ".join(parts)


def short_duration(minutes: int) -> str:
    """``1 h 50``, ``2 h 00``, ``45 min`` (as the tables say it)."""
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest:02d}" if hours else f"{rest} min"


@dataclass(frozen=True)
class Heading:
    """One exercise heading: its label (``2``, ``3a``), points (None: not graded) and minutes."""

    level: int
    label: str
    title: str
    points: float | None
    minutes: int | None
    cell: int  # index of the markdown cell it is in


@dataclass(frozen=True)
class Exercise:
    """Answer cells (consecutive) and the autograded tests after them, up to the next answer cell.

    Answers with no test before the next exercise heading form an exercise of their own (an ungraded step).
    """

    id: str  # the first answer cell's grade id
    answers: tuple[str, ...]
    tests: tuple[str, ...]
    points: float
    heading: Heading | None  # the nearest exercise heading above it

    @property
    def label(self) -> str:
        if self.heading is None:
            return self.id
        title = f" — {self.heading.title}" if self.heading.title else ""
        return f"Exercise {self.heading.label}{title}"


@dataclass
class Outline:
    """What a notebook states about itself."""

    module: str
    headings: list[Heading] = field(default_factory=list)
    exercises: list[Exercise] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)  # the notebook's ``careops`` metadata
    header: str = ""  # the first markdown cell
    table: list[tuple[str, str, int]] = field(default_factory=list)  # (label, points, minutes)
    test_points: dict[str, float] = field(default_factory=dict)  # autograded test grade id -> points
    section_points: dict[str, float] = field(default_factory=dict)  # heading label -> test points below it

    def exercise(self, name: str) -> Exercise | None:
        """The exercise one of whose answer cells is ``name``, or whose heading label is ``name``."""
        for ex in self.exercises:
            if name in ex.answers or (ex.heading and name in (ex.heading.label, f"ex{ex.heading.label}")):
                return ex
        return None

    def top_headings(self) -> list[Heading]:
        return [h for h in self.headings if h.level == 2]

    def minutes_of(self, label: str) -> int | None:
        return next((h.minutes for h in self.headings if h.label == label), None)


def outline(nb: dict[str, Any], module: str = "") -> Outline:
    """The outline of one notebook (its JSON)."""
    meta = (nb.get("metadata") or {}).get("careops") or {}
    out = Outline(module=module or str(meta.get("module", "")), metadata=dict(meta))
    cells = nb.get("cells") or []
    current: Heading | None = None
    top: Heading | None = None
    answers: list[str] = []
    tests: list[str] = []
    points = 0.0
    heading_of_run: Heading | None = None

    def close() -> None:
        nonlocal answers, tests, points
        if answers:
            out.exercises.append(Exercise(answers[0], tuple(answers), tuple(tests), points, heading_of_run))
        answers, tests, points = [], [], 0.0

    for index, cell in enumerate(cells):
        text = source_text(cell)
        if cell.get("cell_type") == "markdown":
            if index == 0:
                out.header = text
                out.table = [(m["label"], m["points"], int(m["minutes"])) for m in _TABLE_ROW.finditer(text)]
            if answers and not tests and HEADING.search(text):
                close()  # answers without a test of their own (a step not graded) end at the next exercise
            for m in HEADING.finditer(text):
                line = text[m.start():text.find("\n", m.start()) if "\n" in text[m.start():] else len(text)]
                tail = _HEADING_TAIL.search(line)
                h = Heading(len(m["level"]), m["label"], (m["title"] or "").strip(),
                            None if m["ungraded"] else float(m["points"]),
                            int(tail["minutes"]) if tail and tail["minutes"] else None, index)
                out.headings.append(h)
                current = h
                if h.level == 2:
                    top = h
                    out.section_points.setdefault(h.label, 0.0)
                else:
                    out.section_points.setdefault(h.label, 0.0)
            continue
        gid = nbgrader(cell).get("grade_id")
        if is_answer(cell):
            if tests:  # a test closed the previous run of answers
                close()
            if not answers:
                heading_of_run = current
            answers.append(str(gid))
        elif is_autograded(cell):
            pts = float(nbgrader(cell).get("points") or 0)
            out.test_points[str(gid)] = pts
            for h in {current, top} - {None}:
                out.section_points[h.label] = out.section_points.get(h.label, 0.0) + pts  # type: ignore[union-attr]
            if answers:
                tests.append(str(gid))
                points += pts
    close()
    return out


# -- stated times ---------------------------------------------------------------------------------

def _label_list(text: str) -> list[str]:
    return re.findall(r"\d+[a-z]?", text)


def time_problems(nb: dict[str, Any], module: str = "") -> list[str]:
    """Where a notebook's header, metadata, headings and table disagree about times and points ([] if nowhere)."""
    o = outline(nb, module)
    name = o.module or module or "the notebook"
    problems: list[str] = []
    minutes = o.metadata.get("minutes") or {}
    reading, exercises = minutes.get("teaching"), minutes.get("exercises")
    if not isinstance(reading, int) or not isinstance(exercises, int):
        return [f"{name}: the metadata has no careops.minutes {{teaching, exercises}} (whole minutes)"]
    line = TIME_LINE.search(o.header)
    if line is None:
        problems.append(f"{name}: the header has no line '**Time:** about ... — N minutes reading, "
                        "M minutes exercises'")
    else:
        total = parse_duration(line["total"])
        if (int(line["reading"]), int(line["exercises"])) != (reading, exercises):
            problems.append(f"{name}: the header says {line['reading']} minutes reading and {line['exercises']} "
                            f"exercises, the metadata {reading} and {exercises}")
        if total != reading + exercises:
            problems.append(f"{name}: the header's total '{line['total']}' is not reading + exercises "
                            f"({format_duration(reading + exercises)})")
    tops = o.top_headings()
    if not tops:
        problems.append(f"{name}: no exercise heading '## Exercise N — title (P points, ~M min)'")
    for h in o.headings:
        if h.minutes is None:
            problems.append(f"{name}: exercise {h.label} states no minutes (write '~M min' in its heading)")
    stated = sum(h.minutes or 0 for h in tops)
    if stated != exercises:
        problems.append(f"{name}: the exercise headings add up to {stated} minutes, the header and metadata say "
                        f"{exercises}")
    for parent in tops:
        subs = [h for h in o.headings if h.level == 3 and h.label[:-1] == parent.label and h.label[-1].isalpha()]
        if subs and sum(s.minutes or 0 for s in subs) != parent.minutes:
            problems.append(f"{name}: the parts of exercise {parent.label} add up to "
                            f"{sum(s.minutes or 0 for s in subs)} minutes, its heading says {parent.minutes}")
        if subs and parent.points is not None and sum(s.points or 0 for s in subs) != parent.points:
            problems.append(f"{name}: the parts of exercise {parent.label} add up to "
                            f"{sum(s.points or 0 for s in subs):g} points, its heading says {parent.points:g}")
    for h in o.headings:
        graded = o.section_points.get(h.label, 0.0)
        if (h.points or 0.0) != graded:
            problems.append(f"{name}: exercise {h.label} says {h.points or 0:g} points, its autograded cells give "
                            f"{graded:g}")
    if o.table:  # a row per exercise, or per part of one (2a, 2b instead of 2)
        rows = {label: (points, mins) for label, points, mins in o.table}
        by_label = {h.label: h for h in o.headings}
        for h in tops:
            parts = [x.label for x in o.headings if x.level == 3 and x.label[:-1] == h.label]
            if h.label not in rows and not (parts and all(p in rows for p in parts)):
                problems.append(f"{name}: the header's table has no row for exercise {h.label}")
        for label, (points, mins) in rows.items():
            h = by_label.get(label)
            if h is None:
                problems.append(f"{name}: the table lists an exercise with no heading: {label}")
                continue
            want_points = "–" if h.points is None else f"{h.points:g}"
            if points != want_points or mins != h.minutes:
                problems.append(f"{name}: the table says exercise {h.label} is {points} points, {mins} minutes; "
                                f"its heading says {want_points} points, {h.minutes} minutes")
    problems += _track_problems(o, name, reading + exercises)
    return problems


def _track_problems(o: Outline, name: str, total: int) -> list[str]:
    tracks = o.metadata.get("tracks")
    line = SHORT_LINE.search(o.header)
    if tracks is None and line is None:
        return []
    short = (tracks or {}).get("short") if isinstance(tracks, dict) else None
    if not isinstance(short, dict) or not isinstance(short.get("minutes"), int) \
            or not isinstance(short.get("skip"), list):
        return [f"{name}: careops.tracks.short must be {{minutes: N, skip: [exercise labels]}}"]
    problems = []
    skipped = [str(s) for s in short["skip"]]
    unknown = [s for s in skipped if o.minutes_of(s) is None]
    if unknown:
        problems.append(f"{name}: the short track skips exercises with no heading: {', '.join(unknown)}")
    want = total - sum(o.minutes_of(s) or 0 for s in skipped)
    if short["minutes"] != want:
        problems.append(f"{name}: the short track's {short['minutes']} minutes are not the total less the skipped "
                        f"exercises ({want})")
    if line is None:
        problems.append(f"{name}: the header has no '**Short track:** about ... — skip exercises ...' line")
    else:
        if parse_duration(line["total"]) != short["minutes"]:
            problems.append(f"{name}: the header's short track is '{line['total']}', the metadata "
                            f"{format_duration(short['minutes'])}")
        if sorted(_label_list(line["skip"])) != sorted(skipped):
            problems.append(f"{name}: the header's short track skips {', '.join(_label_list(line['skip']))}, "
                            f"the metadata {', '.join(skipped)}")
    return problems


def total_minutes(nb: dict[str, Any]) -> int | None:
    """Reading plus exercises, from the metadata."""
    minutes = ((nb.get("metadata") or {}).get("careops") or {}).get("minutes") or {}
    try:
        return int(minutes["teaching"]) + int(minutes["exercises"])
    except (KeyError, TypeError, ValueError):
        return None


def short_track_minutes(nb: dict[str, Any]) -> int | None:
    short = (((nb.get("metadata") or {}).get("careops") or {}).get("tracks") or {}).get("short") or {}
    value = short.get("minutes")
    return value if isinstance(value, int) else None


__all__ = ["Exercise", "Heading", "Outline", "format_duration", "outline", "parse_duration", "short_duration",
           "short_track_minutes", "time_problems", "total_minutes"]
