"""Feedback that serves the learner: each check's report and pass/fail, never the hidden tests, offline, returned.

While grading, the grader writes what the learner should be told besides the checks into the executed notebook's
metadata (``careops_grading``, see :func:`grading_notes`): the tampering that was undone, the exercises not answered
(a test of an unanswered exercise then says "not answered: exercise 2 (triage_probe_spec)" instead of a
``NameError``), the tests scored 0 for using the course's reference answers, the tests whose hidden part failed,
and the trouble the sandbox had.

nbgrader's ``generate_feedback`` renders the autograded notebook through :class:`LearnerFeedback` (configured in
grading/nbgrader_config.py, so a hand-run ``nbgrader generate_feedback`` gets it too): it removes every test
cell's hidden tests with nbgrader's own ClearHiddenTests region code, replaces the error of a test that failed in
its hidden part by one plain sentence (the grader's cases stay unseen), and puts a summary at the top: score,
hand-in time, due date, late penalty, and the notes above in plain words. The HTML template
(``careops_feedback``) is nbgrader's feedback template without MathJax's CDN script: the page loads nothing from
the network (hospital networks are often offline).

:func:`return_feedback` puts each learner's pages in a folder of their own an instructor can hand back (and a zip
for Moodle's "upload multiple feedback files"), and releases them into nbgrader's exchange for learners who
handed in through it (``nbgrader fetch_feedback``).
"""
from __future__ import annotations

import ast
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbgrader.preprocessors import ClearHiddenTests

from careops.grading.restore import grade_id, is_solution, is_test, nbgrader_meta, source_text, stub
from careops.report import theme

#: notebook metadata the grader writes for the feedback
NOTES_KEY = "careops_grading"
TEMPLATE = "careops_feedback"
HIDDEN_FAILED = ("Not passed: the grader's own cases for this exercise (hidden tests; they are not shown). "
                 "The check above ran on the practice data; look for the cases it does not have.")


# -- while grading ------------------------------------------------------------------------------------------

def exercise_labels(source_nb: dict[str, Any]) -> dict[str, str]:
    """Answer cell ``grade_id`` -> ``exercise 2 (triage_probe_spec)``, from the heading above it."""
    labels: dict[str, str] = {}
    current = ""
    for cell in source_nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            m = re.search(r"\bExercise\s+(\d+[a-z]?)\b", source_text(cell).split("\n", 1)[0])
            if m:
                current = f"exercise {m.group(1)}"
        elif is_solution(cell) and grade_id(cell) and not nbgrader_meta(cell).get("locked"):
            gid = str(grade_id(cell))
            labels[gid] = f"{current} ({gid})" if current else gid
    return labels


def _defines(cell: dict[str, Any]) -> set[str]:
    """Names a (source) answer cell gives the notebook: its assignments, functions, imports, or its artifact."""
    care = (cell.get("metadata") or {}).get("careops") or {}
    if isinstance(care, dict) and care.get("artifact"):
        return {str(care["artifact"])}
    from careops.grading.trusted import python_source

    try:
        tree = ast.parse(python_source(source_text(cell)))
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
    return names


def _uses(cell: dict[str, Any]) -> set[str]:
    care = (cell.get("metadata") or {}).get("careops") or {}
    used = {str(a) for a in care.get("artifacts") or []} if isinstance(care, dict) else set()
    from careops.grading.trusted import python_source

    try:
        tree = ast.parse(python_source(source_text(cell)))
    except SyntaxError:
        return used
    return used | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def unanswered(source_nb: dict[str, Any], notebook: dict[str, Any]) -> list[str]:
    """``grade_id`` s of the answers still as released (the stub) or missing in a restored notebook."""
    answers = {grade_id(c): source_text(c) for c in notebook.get("cells", []) if is_solution(c) and grade_id(c)}
    left = []
    for src in source_nb.get("cells", []):
        gid = grade_id(src)
        if gid and is_solution(src) and not nbgrader_meta(src).get("locked"):
            text = answers.get(gid)
            if text is None or text.strip() == stub(src).strip():
                left.append(str(gid))
    return left


def unanswered_tests(source_nb: dict[str, Any], notebook: dict[str, Any]) -> dict[str, str]:
    """Test ``grade_id`` -> ``not answered: exercise 2 (triage_probe_spec)`` for tests that need an unanswered answer."""
    left = set(unanswered(source_nb, notebook))
    if not left:
        return {}
    labels = exercise_labels(source_nb)
    defines = {str(grade_id(c)): _defines(c) for c in source_nb.get("cells", [])
               if grade_id(c) in left and is_solution(c)}
    out: dict[str, str] = {}
    for cell in source_nb.get("cells", []):
        if not is_test(cell):
            continue
        used = _uses(cell)
        missing = [gid for gid, names in defines.items() if names & used]
        if missing:
            out[str(grade_id(cell))] = "not answered: " + ", ".join(labels.get(g, g) for g in missing)
    return out


def not_answered_output(text: str) -> dict[str, Any]:
    return {"output_type": "error", "ename": "NotAnswered", "evalue": text, "traceback": [text]}


@dataclass
class GradingNotes:
    """What the learner is told besides the checks (stored in the executed notebook's metadata)."""

    undone: list[str] = field(default_factory=list)  # tampering the grader undid
    not_answered: dict[str, str] = field(default_factory=dict)  # test -> "not answered: exercise ..."
    reference_use: dict[str, str] = field(default_factory=dict)  # test -> why it scored 0
    hidden_failed: list[str] = field(default_factory=list)  # tests that failed in their hidden part
    incidents: list[str] = field(default_factory=list)  # what the sandbox could not do (timeouts, a crash)

    def as_metadata(self) -> dict[str, Any]:
        return {"undone": self.undone, "not_answered": self.not_answered, "reference_use": self.reference_use,
                "hidden_failed": self.hidden_failed, "incidents": self.incidents}


def grading_notes(notebook: dict[str, Any], notes: GradingNotes) -> dict[str, Any]:
    """Store ``notes`` in the notebook's metadata (returns the notebook)."""
    notebook.setdefault("metadata", {})[NOTES_KEY] = notes.as_metadata()
    return notebook


# -- rendering -----------------------------------------------------------------------------------------------

class LearnerFeedback(ClearHiddenTests):
    """nbgrader feedback preprocessor: no hidden test source or failure detail; a plain-words summary on top."""

    def preprocess(self, nb: Any, resources: Any) -> tuple[Any, Any]:
        notes = dict((nb.metadata or {}).get(NOTES_KEY) or {})
        hidden = set(notes.get("hidden_failed") or [])
        for cell in nb.cells:
            if not is_test(cell):
                continue  # learners' cells are theirs (a marker in them is their text, not a test)
            if isinstance(cell.source, list):
                cell.source = "".join(cell.source)
            self._remove_hidden_test_region(cell)
            if grade_id(cell) in hidden:
                kept = [o for o in cell.get("outputs", []) if o.get("output_type") != "error"]
                cell["outputs"] = kept + [_card_output(False, "hidden tests", HIDDEN_FAILED)]
        nb.cells.insert(0, _summary_cell(nb, notes, resources))
        nb.metadata.pop(NOTES_KEY, None)
        nb.metadata.pop("celltoolbar", None)
        return nb, resources


def _card_output(ok: bool, title: str, text: str) -> dict[str, Any]:
    from nbformat import from_dict

    return from_dict({"output_type": "display_data", "metadata": {},
                      "data": {"text/plain": text,
                               "text/html": theme.card(title, theme.items([(ok, theme.esc(text))]), ok=ok)}})


def _submission_facts(resources: Any) -> dict[str, Any]:
    """Hand-in time, due date (with the learner's extension) and lateness, from nbgrader's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    info = (resources or {}).get("nbgrader") or {}
    if not info.get("db_url"):
        return {}
    try:
        with Gradebook(info["db_url"]) as gb:
            sub = gb.find_submission(info["assignment"], info["student"])
            return {"handed_in": sub.timestamp, "due": sub.duedate, "extension": sub.extension,
                    "late_seconds": sub.total_seconds_late}
    except (MissingEntry, KeyError):
        return {}


def _summary_cell(nb: Any, notes: dict[str, Any], resources: Any) -> Any:
    from nbformat import from_dict

    from careops.grading.export import duration

    info = (resources or {}).get("nbgrader") or {}
    facts = _submission_facts(resources)
    lines: list[tuple[bool | None, str]] = []
    if facts.get("handed_in"):
        lines.append((None, f"Handed in {facts['handed_in']:%Y-%m-%d %H:%M} UTC"))
    if facts.get("due"):
        ext = " (with your extension)" if facts.get("extension") else ""
        lines.append((None, f"Due {facts['due']:%Y-%m-%d %H:%M} UTC{ext}"))
    issues: list[str] = []
    if facts.get("late_seconds"):
        from datetime import timedelta

        penalty = float(info.get("late_penalty") or 0)
        issues.append(f"Late by {duration(timedelta(seconds=facts['late_seconds']))}: "
                      f"late penalty {penalty:g} point{'s' if penalty != 1 else ''}")
    issues += list(dict.fromkeys((notes.get("not_answered") or {}).values()))
    issues += [f"Scored 0 on {test}: {why}" for test, why in (notes.get("reference_use") or {}).items()]
    issues += [f"Could not be graded fully: {what}" for what in notes.get("incidents") or []]
    lines += [(False, text) for text in issues]
    lines += [(None, f"Undone before grading (the instructor's version was used): {what}")
              for what in notes.get("undone") or []]
    if not issues:
        lines.append((True, "every exercise was graded as you handed it in"))
    body = theme.items((ok, theme.esc(text)) for ok, text in lines)
    title = f"{info.get('assignment', '')}: your feedback".strip(": ")
    html = theme.card(title, body)
    return from_dict({"cell_type": "markdown", "metadata": {}, "source": html, "id": "careops-feedback-summary"})


def _nbgrader_templates() -> Path:
    import nbgrader

    return Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"


def template_dirs() -> list[str]:
    """Where nbconvert finds the offline feedback template: careops's, then nbgrader's own feedback template."""
    return [str(Path(__file__).with_name("templates")), str(_nbgrader_templates())]


def template_paths() -> list[str]:
    """Template roots: nbgrader's (``feedback/index.html.j2``, which ours extends) and the bootstrap CSS that
    nbgrader's template inlines (nbgrader sets that path itself unless, as here, the exporter is configured)."""
    css = _nbgrader_templates().parent / "static" / "node_modules" / "bootstrap" / "dist" / "css"
    return [str(_nbgrader_templates()), str(css)]


# -- returning it -------------------------------------------------------------------------------------------

@dataclass
class Returned:
    """What :func:`return_feedback` handed back."""

    folder: Path
    learners: list[str] = field(default_factory=list)
    moodle_zip: Path | None = None
    exchange: list[str] = field(default_factory=list)  # learners whose feedback went into nbgrader's exchange
    missing: list[str] = field(default_factory=list)  # graded learners with no feedback page (run grading again)

    def __str__(self) -> str:
        lines = [f"feedback of {len(self.learners)} learner(s) in {self.folder}/<learner>/"]
        if self.moodle_zip:
            lines.append(f"  Moodle: upload {self.moodle_zip} with 'Upload multiple feedback files in a zip'")
        if self.exchange:
            lines.append(f"  exchange: {len(self.exchange)} learner(s) can run `nbgrader fetch_feedback`")
        for learner in self.missing:
            lines.append(f"  ! {learner}: no feedback page yet (grade again with feedback on)")
        return "\n".join(lines)


def return_feedback(course: Any, assignment: str, *, dest: Path | None = None, learners: list[str] | None = None,
                    exchange: Path | None = None) -> Returned:
    """Copy each learner's feedback of ``assignment`` to ``dest/<learner>/<assignment>/`` (default:
    build/grading/<assignment>/return), zip it for Moodle's learners, and release it into nbgrader's exchange
    (``exchange``) for those who handed in through it."""
    import zipfile

    from careops.grading.journal import Journal, grading_dir

    source = course.root / "build" / "course" / "feedback"
    dest = Path(dest) if dest else grading_dir(course, assignment) / "return"
    entries = Journal.of(course, assignment).entries()
    wanted = sorted(set(learners) if learners else set(entries))
    done = Returned(dest)
    moodle: list[tuple[str, Path]] = []
    for learner in wanted:
        pages = sorted((source / learner / assignment).glob("*.html"))
        if not pages:
            if learner in entries:
                done.missing.append(learner)
            continue
        target = dest / learner / assignment
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for page in pages:
            shutil.copy2(page, target / page.name)
        done.learners.append(learner)
        profile = entries.get(learner, {}).get("profile") or {}
        if profile.get("lms") == "moodle" and profile.get("participant"):
            full = f"{profile.get('first_name', '')} {profile.get('last_name', '')}".strip()
            folder = f"{full}_{profile['participant']}_assignsubmission_file_"
            moodle += [(f"{folder}/{assignment}-{page.name}", page) for page in pages]
    if moodle:
        done.moodle_zip = dest / f"moodle-feedback-{assignment}.zip"
        with zipfile.ZipFile(done.moodle_zip, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, page in moodle:
                zf.write(page, name)
    if exchange is not None:
        done.exchange = release_to_exchange(course, assignment, exchange,
                                            [l for l in done.learners
                                             if (source / l / assignment / "submission_secret.txt").is_file()])
    return done


def release_to_exchange(course: Any, assignment: str, exchange: Path, learners: list[str]) -> list[str]:
    """nbgrader's own release_feedback (its exchange, its hashes) for ``learners``."""
    from nbgrader.apps import NbGraderAPI

    from careops.grading.course import GradingError

    if not Path(exchange).is_dir():
        raise GradingError(f"no nbgrader exchange at {exchange}: expected the folder learners submit to",
                           fix="pass the exchange's root (the hub's, or nbgrader's default /srv/nbgrader/exchange)")
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader(course.config.name, path=str(course.config.parent)).load_config()
    cfg.CourseDirectory.root = str(course.root)
    cfg.CourseDirectory.db_url = course.db_url
    cfg.Exchange.root = str(exchange)
    api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)
    released = []
    for learner in learners:
        result = api.release_feedback(assignment, learner)
        if not result.get("success"):
            raise GradingError(f"nbgrader could not release {learner}'s feedback into {exchange}: "
                               f"{(result.get('error') or result.get('log') or '').strip()[-600:]}",
                               fix="read nbgrader's message (is the exchange writable?)")
        released.append(learner)
    return released


__all__ = ["HIDDEN_FAILED", "NOTES_KEY", "GradingNotes", "LearnerFeedback", "Returned", "exercise_labels",
           "grading_notes", "not_answered_output", "return_feedback", "template_dirs", "template_paths", "unanswered",
           "unanswered_tests"]
