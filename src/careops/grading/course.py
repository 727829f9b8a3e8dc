"""The nbgrader course of CareOps Labs: layout, running nbgrader, reading grades.

Everything here takes a ``course_dir``: the root of a course laid out like
this repository (``grading/nbgrader_config.py``, ``notebooks/<assignment>/``,
``build/``). The real course is the repository itself (:func:`repo_root`);
tests and the sandboxed grader work on a throwaway copy made by
:func:`make_temp_course`, with its own gradebook, so they never touch build/.

nbgrader always runs as a subprocess of *this* Python (``sys.executable -m
careops.grading.nbgrader_cli``: nbgrader's own command line, started without
an import it does not need) with ``grading/`` as working directory: that is
how it finds the course config, and running it from the course's Python is
what makes the ``python3`` kernel that executes notebooks the course's own
(see :func:`nbgrader_env`).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from careops import paths
from careops.errors import CareOpsError

COURSE_ID = "careops-labs"
CONFIG_FILE = Path("grading") / "nbgrader_config.py"
SOURCE_DIR = Path("notebooks")
RELEASE_DIR = Path("build") / "release"
COURSE_BUILD_DIR = Path("build") / "course"
GRADEBOOK = Path("build") / "gradebook.db"
# Files nbgrader must never treat as part of an assignment.
IGNORED = (".ipynb_checkpoints", "__pycache__", "*.pyc")


class GradingError(CareOpsError):
    """nbgrader refused or failed; carries its own explanation and the log."""

    def __init__(self, message: str, *, fix: str | None = None, log: str = "") -> None:
        super().__init__(message, fix=fix)
        self.log = log


def repo_root() -> Path:
    """The course checkout (``CAREOPS_HOME`` overrides it, as everywhere in careops)."""
    return paths.repo_root()


@dataclass(frozen=True)
class Course:
    """Paths of one course directory; nothing is created by looking."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def source(self) -> Path:
        return self.root / SOURCE_DIR

    @property
    def release(self) -> Path:
        return self.root / RELEASE_DIR

    @property
    def build(self) -> Path:
        return self.root / "build"

    @property
    def gradebook(self) -> Path:
        return self.root / GRADEBOOK

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.gradebook}"

    def submitted(self, student_id: str, assignment: str) -> Path:
        return self.root / COURSE_BUILD_DIR / "submitted" / student_id / assignment

    def autograded(self, student_id: str, assignment: str) -> Path:
        return self.root / COURSE_BUILD_DIR / "autograded" / student_id / assignment

    def assignments(self) -> list[str]:
        """Assignment names: the folders under notebooks/, sorted (same rule as the config)."""
        if not self.source.is_dir():
            return []
        return sorted(
            p.name for p in self.source.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
        )

    def notebooks(self, assignment: str) -> list[Path]:
        """The source notebooks of one assignment (top level of its folder, as nbgrader sees them)."""
        return sorted(p for p in (self.source / assignment).glob("*.ipynb") if p.is_file())


def _check_course(course: Course, assignment: str | None = None) -> None:
    if not course.config.is_file():
        raise GradingError(
            f"no nbgrader config in course {course.root}: expected {course.config}",
            fix="pass the repository root (or a copy made by make_temp_course) as course_dir",
        )
    if assignment is not None and not (course.source / assignment).is_dir():
        known = ", ".join(course.assignments()) or "none"
        raise GradingError(
            f"unknown assignment {assignment!r}: expected a folder {course.source / assignment} "
            f"(assignments: {known})",
            fix="check the name, or create the folder with its notebooks",
        )


def make_temp_course(
    dest: Path,
    assignment: str,
    *,
    from_course: Path | None = None,
    notebooks: Sequence[Path] | None = None,
) -> Course:
    """Copy the course config and one assignment into ``dest``, an empty or new folder.

    ``notebooks`` (default: all of the assignment's) picks which notebooks to
    copy, from anywhere (e.g. test fixtures); the assignment's other files
    (data, scripts) come along from ``from_course`` when it has the folder.
    The copy's gradebook and build/ are its own.
    """
    src = Course((from_course or repo_root()).resolve())
    _check_course(src)
    dest = Path(dest).resolve()
    course = Course(dest)
    course.config.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src.config, course.config)
    target = course.source / assignment
    src_folder = src.source / assignment
    if src_folder.is_dir():
        skip = shutil.ignore_patterns(*IGNORED)

        def ignore(folder: str, names: list[str]) -> set[str]:
            # the notebooks nbgrader grades sit at the top; the chosen ones are copied below
            top = Path(folder) == src_folder
            return set(skip(folder, names)) | ({n for n in names if n.endswith(".ipynb")} if top else set())

        shutil.copytree(src_folder, target, ignore=ignore, dirs_exist_ok=True)
    target.mkdir(parents=True, exist_ok=True)
    chosen = src.notebooks(assignment) if notebooks is None else [Path(p) for p in notebooks]
    for nb in chosen:
        shutil.copy2(nb, target / nb.name)
    course.build.mkdir(parents=True, exist_ok=True)
    return course


def nbgrader_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for nbgrader and the kernels it starts.

    The folder of this Python goes first on PATH: nbgrader runs ``alembic``
    from PATH to set up a gradebook, and ``python`` there must be this one.
    JUPYTER_PATH puts this environment's kernel specs first, so ``python3``
    is its ipykernel even if the user has another ``python3`` kernel in
    ~/.local/share/jupyter (jupyter_client also runs a spec whose command is
    plain ``python`` with ``sys.executable`` of the process starting it).
    """
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")]).rstrip(os.pathsep)
    share = str(Path(sys.prefix) / "share" / "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join([share, env.get("JUPYTER_PATH", "")]).rstrip(os.pathsep)
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


_EXC_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w*(?:Error|Exception|Exit)\w*): (.+)$")
_ERROR_LINE = re.compile(r"^\[\w+ \| ERROR\] (.*)$")
_CONVERTING = re.compile(r"^\[\w+ \| INFO\] (?:Converting|Sanitizing) notebook (.+)$")
_GENERIC = (
    "Traceback (most recent call last):",
    "Please see the the above traceback",
    "Please see the above traceback",
    "There was an error processing assignment",
)

# Known nbgrader complaints and what the notebook author should do about them.
_FIXES: tuple[tuple[str, str], ...] = (
    ("Duplicate grade id", "give every graded, solution and locked cell its own grade_id "
     "(JupyterLab: Property Inspector > nbgrader, or Edit Notebook Metadata)"),
    ("end solution", "close every '### BEGIN SOLUTION' with '### END SOLUTION' in the same cell"),
    ("begin solution", "nest no '### BEGIN SOLUTION' inside another; close each with '### END SOLUTION'"),
    ("hidden tests", "pair every '### BEGIN HIDDEN TESTS' with '### END HIDDEN TESTS' in the same cell, "
     "and only in graded test cells"),
    ("solution region", "put '### BEGIN SOLUTION' / '### END SOLUTION' only in cells marked as solutions"),
    ("must have points", "give every graded cell a number of points greater than 0"),
    ("metadata may be corrupted", "check the nbgrader metadata of the cell named above "
     "(grade_id, points, solution/grade/locked flags)"),
    ("alembic", "run nbgrader through .venv/bin/careops (or with .venv/bin on PATH)"),
    ("database", "back up the gradebook (build/gradebook.db), then run `nbgrader db upgrade` in grading/; "
     "a gradebook that holds no grades yet can simply be deleted (`make release` makes a new one)"),
    ("Kernel died", "the notebook crashed its kernel (memory? sys.exit?): run it in JupyterLab to see"),
    ("No such kernel", "install ipykernel in the course environment: `make venv`"),
)


def explain_nbgrader_log(log: str) -> tuple[str, str | None, str | None]:
    """(explanation, notebook, fix) from nbgrader's log of a failed run.

    nbgrader logs the real cause as the last line of a traceback and frames it
    with generic "see above" lines; keep the causes, in order, once each.
    """
    reasons: list[str] = []
    seen: set[str] = set()
    notebook = None
    for line in log.splitlines():
        m = _CONVERTING.match(line)
        if m:
            notebook = m.group(1).strip()
            continue
        m = _ERROR_LINE.match(line)
        text = None
        if m:
            text = m.group(1).strip()
            if any(text.startswith(g) for g in _GENERIC) or not text:
                continue
        else:
            m = _EXC_LINE.match(line)
            if m and not line.startswith("["):
                text = f"{m.group(1)}: {m.group(2).strip()}"
        if text:
            # the same cause is often logged once as a line and once as an exception
            key = re.sub(r"^\w+: ", "", text).rstrip(".")
            if key not in seen:
                seen.add(key)
                reasons.append(text)
    explanation = "; ".join(reasons) if reasons else (log.strip().splitlines() or ["no output"])[-1]
    fix = None
    low = explanation.lower()
    for needle, advice in _FIXES:
        if needle.lower() in low:
            fix = advice
            break
    return explanation, notebook, fix


@dataclass
class NbgraderRun:
    """What one nbgrader command did."""

    args: list[str]
    returncode: int
    log: str
    seconds: float


def empty_gradebook() -> Path | None:
    """An empty gradebook of this nbgrader release for COURSE_ID, made once and kept in the user cache.

    nbgrader sets up a new gradebook by running ``alembic heads`` in a process of its own to learn the schema's
    revision: about 2.5 s of CPU for every new course (every ``make release`` on a fresh build/, every throwaway
    course of the grader and the tests). The revision is the same for every gradebook of one nbgrader release, so
    it is read here once, in this process (alembic's script folder, no subprocess), into a gradebook that new
    courses copy. None when it cannot be made (nbgrader then sets up the gradebook itself, as it always did)."""
    import contextlib
    import sqlite3
    from importlib.metadata import version

    target = paths.cache_dir() / "gradebooks" / f"empty-nbgrader-{version('nbgrader')}-{COURSE_ID}.db"
    try:
        with contextlib.closing(sqlite3.connect(f"file:{target}?mode=ro", uri=True)) as db:
            if db.execute("SELECT version_num FROM alembic_version").fetchone():
                return target
    except sqlite3.Error:  # none yet, or broken: made (again) below
        pass
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.unlink(missing_ok=True)
        _make_empty_gradebook(partial)
        partial.replace(target)
        return target
    except (OSError, sqlite3.Error, ImportError):
        return None


def _make_empty_gradebook(path: Path) -> None:
    """What nbgrader.api.Gradebook makes for a new database, with alembic's head read in this process."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader import api
    from sqlalchemy import create_engine, text

    config = Config()
    config.set_main_option("script_location", str(Path(api.__file__).with_name("alembic")))
    head = ScriptDirectory.from_config(config).get_current_head()
    engine = create_engine(f"sqlite:///{path}", future=True)
    try:
        api.Base.metadata.create_all(bind=engine)
        with engine.begin() as db:
            db.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            db.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": head})
    finally:
        engine.dispose()
    with api.Gradebook(f"sqlite:///{path}", COURSE_ID):  # adds the course, as nbgrader's first run would
        pass


def seed_gradebook(course: Course) -> bool:
    """Give a course without a gradebook a copy of :func:`empty_gradebook`; True if it got one."""
    if course.gradebook.exists():
        return False
    template = empty_gradebook()
    if template is None:
        return False
    from careops.workspace import copy_new

    course.gradebook.parent.mkdir(parents=True, exist_ok=True)
    return copy_new(template, course.gradebook)  # never over a gradebook another process made meanwhile


def run_nbgrader(
    args: Sequence[str],
    course_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    what: str = "nbgrader",
) -> NbgraderRun:
    """Run ``nbgrader ARGS`` on the course; GradingError with nbgrader's reason if it fails.

    ``what`` names the step in the error ("generate_assignment of 01-ci-pipeline").
    """
    import time

    course = Course(Path(course_dir).resolve())
    _check_course(course)
    course.build.mkdir(parents=True, exist_ok=True)
    seed_gradebook(course)
    cmd = [sys.executable, "-m", "careops.grading.nbgrader_cli", *args]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            cwd=course.config.parent,
            env=nbgrader_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise GradingError(
            f"{what} did not finish: expected it within {timeout:.0f} s, it was still running",
            fix="look for a cell that waits forever (input(), a server that never answers), "
            "or raise the timeout",
            log=out,
        ) from None
    run = NbgraderRun(list(args), proc.returncode, proc.stdout, time.monotonic() - start)
    if proc.returncode != 0:
        explanation, notebook, fix = explain_nbgrader_log(proc.stdout)
        where = f" ({_relative(notebook, course.root)})" if notebook else ""
        raise GradingError(
            f"{what} failed{where}: nbgrader exited {proc.returncode} (expected 0): {explanation}",
            fix=(fix + ", then run it again") if fix else
            f"read nbgrader's log above, fix the notebook, and run it again (command: nbgrader {' '.join(args)})",
            log=proc.stdout,
        )
    return run


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(os.path.normpath(path)).relative_to(root))
    except ValueError:
        return path


def generate_assignment(
    assignment: str, course_dir: Path, *, env: Mapping[str, str] | None = None
) -> Path:
    """Write the learner version of ``assignment`` to build/release/ and register it in the gradebook.

    Runs ``nbgrader generate_assignment --force`` so re-running replaces the
    previous release. Returns the release folder of the assignment.
    """
    course = Course(Path(course_dir).resolve())
    _check_course(course, assignment)
    run_nbgrader(
        ["generate_assignment", assignment, "--force"],
        course.root,
        env=env,
        what=f"nbgrader generate_assignment of {assignment}",
    )
    return course.release / assignment


@dataclass(frozen=True)
class CellScore:
    """The grade nbgrader gave one graded cell of a submitted notebook."""

    notebook: str
    grade_id: str
    score: float
    max_score: float
    auto_score: float | None
    needs_manual_grade: bool
    autograded: bool  # a test cell nbgrader scores (not an answer a person grades)
    output: str = ""  # error/traceback text of the cell in the autograded notebook
    index: int = 0  # 1-based position in the autograded notebook (0: not found)

    @property
    def full_marks(self) -> bool:
        return self.score >= self.max_score

    @property
    def label(self) -> str:
        return f"{self.notebook}:{self.grade_id}"


@dataclass
class AutogradeResult:
    """Per-cell scores of one student's autograded assignment."""

    assignment: str
    student_id: str
    course: Course
    cells: list[CellScore] = field(default_factory=list)
    log: str = ""
    seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cells)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells)

    def autograded_notebook(self, notebook: str) -> Path:
        return self.course.autograded(self.student_id, self.assignment) / f"{notebook}.ipynb"

    def cell_runs(self, notebook: str) -> list[CellRun]:
        """Every code cell of the autograded notebook and how it ended."""
        return cell_runs(self.autograded_notebook(notebook), notebook)


def autograde(
    assignment: str,
    student_id: str,
    submission_notebooks: Iterable[Path],
    course_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> AutogradeResult:
    """Autograde a student's notebooks with ``nbgrader autograde``; return per-cell scores.

    The notebooks are copied into build/course/submitted/<student_id>/<assignment>/
    (replacing an earlier submission), then nbgrader restores the locked and
    test cells from the gradebook, runs the notebooks and records the grades,
    which are read back with nbgrader's Gradebook API. The assignment must have
    been generated in this course first (:func:`generate_assignment`).
    ``env`` goes to nbgrader and so to the kernel (e.g. CAREOPS_LEARNER).
    """
    course = Course(Path(course_dir).resolve())
    _check_course(course, assignment)
    if not course.gradebook.is_file():
        raise GradingError(
            f"cannot autograde {assignment}: expected a gradebook at {course.gradebook}, found none",
            fix="run generate_assignment(assignment, course_dir) on this course first",
        )
    submitted = course.submitted(student_id, assignment)
    if submitted.exists():
        shutil.rmtree(submitted)
    submitted.mkdir(parents=True)
    notebooks = [Path(p) for p in submission_notebooks]
    if not notebooks:
        raise GradingError(
            f"nothing to autograde for {student_id} in {assignment}: expected at least one notebook, got none",
            fix="pass the paths of the submitted .ipynb files",
        )
    for nb in notebooks:
        shutil.copy2(nb, submitted / nb.name)
    run = run_nbgrader(
        ["autograde", assignment, f"--student={student_id}", "--force"],
        course.root,
        env=env,
        timeout=timeout,
        what=f"nbgrader autograde of {assignment} for {student_id}",
    )
    result = AutogradeResult(assignment, student_id, course, log=run.log, seconds=run.seconds)
    result.cells = read_scores(assignment, student_id, course.root)
    return result


def read_scores(assignment: str, student_id: str, course_dir: Path) -> list[CellScore]:
    """Per-cell grades of a submission, from the course's gradebook (nbgrader.api).

    Cells appear in notebook order; ``output`` holds the error text that the
    autograded notebook shows under each cell that failed (else what it printed).
    """
    from nbgrader.api import Gradebook, MissingEntry

    course = Course(Path(course_dir).resolve())
    scores: list[CellScore] = []
    with Gradebook(course.db_url, COURSE_ID) as gb:
        try:
            submission = gb.find_submission(assignment, student_id)
        except MissingEntry:
            raise GradingError(
                f"no grades for {student_id} in {assignment}: the gradebook {course.gradebook} has no such submission",
                fix="autograde the submission first",
            ) from None
        solution_ids: dict[str, set[str]] = {}
        for nb in submission.notebooks:
            solution_ids[nb.name] = {c.name for c in nb.notebook.solution_cells}
            runs = {
                r.grade_id: r
                for r in cell_runs(course.autograded(student_id, assignment) / f"{nb.name}.ipynb", nb.name)
                if r.grade_id
            }
            grades = sorted(nb.grades, key=lambda g: runs[g.name].index if g.name in runs else 10**6)
            for g in grades:
                cell = g.cell
                is_task = getattr(cell, "type", "") == "TaskCell"
                autograded = (
                    not is_task
                    and cell.cell_type == "code"
                    and g.name not in solution_ids[nb.name]
                )
                scores.append(
                    CellScore(
                        notebook=nb.name,
                        grade_id=g.name,
                        score=float(g.score or 0.0),
                        max_score=float(g.max_score or 0.0),
                        auto_score=None if g.auto_score is None else float(g.auto_score),
                        needs_manual_grade=bool(g.needs_manual_grade),
                        autograded=autograded,
                        output=(runs[g.name].error or runs[g.name].text) if g.name in runs else "",
                        index=runs[g.name].index if g.name in runs else 0,
                    )
                )
    return scores


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class CellRun:
    """How one cell of an autograded notebook ended: its error, if it raised."""

    notebook: str
    index: int  # 1-based position in the notebook
    grade_id: str | None
    error: str  # the traceback without colours; "" if the cell did not raise
    text: str  # what it printed (stdout/stderr)

    @property
    def label(self) -> str:
        return f"{self.notebook}:{self.grade_id}" if self.grade_id else f"{self.notebook}: cell {self.index}"

    @property
    def error_summary(self) -> str:
        """The exception line(s) at the end of the traceback (with a careops ``fix:`` line)."""
        lines = [ln for ln in self.error.strip().splitlines() if ln.strip()]
        for i in range(len(lines) - 1, -1, -1):
            if re.match(r"^\w[\w.]*(Error|Exception|Exit|Interrupt|Warning)\b", lines[i]) or lines[i].startswith(
                ("AssertionError", "KeyboardInterrupt")
            ):
                return "\n".join(lines[i:])
        return lines[-1] if lines else ""


def cell_runs(path: Path, notebook: str | None = None) -> list[CellRun]:
    """Every code cell of an executed notebook with its error and printed text, in order."""
    import json

    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as fh:
        nb = json.load(fh)
    name = notebook or path.stem
    runs = []
    for i, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        gid = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        errors, texts = [], []
        for o in cell.get("outputs", []) or []:
            if o.get("output_type") == "error":
                tb = o.get("traceback") or [f"{o.get('ename')}: {o.get('evalue')}"]
                errors.append(_ANSI.sub("", "\n".join(tb)))
            elif o.get("output_type") == "stream":
                t = o.get("text", "")
                texts.append("".join(t) if isinstance(t, list) else t)
        runs.append(CellRun(name, i, gid, "\n".join(errors), _ANSI.sub("", "".join(texts)).strip()))
    return runs
