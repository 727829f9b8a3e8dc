"""The sandboxed, parallel autograder: collect, run sealed, score trusted, feed back, export.

For each submission (in a bounded pool of threads, one fresh sandbox per
notebook):

1. intake checks turn away files that are empty, huge, not JSON, not a
   notebook or of another assignment, with a reason (no container starts);
2. the notebook is rebuilt on the instructor's skeleton (:mod:`.restore`);
3. its non-test cells run in the sandbox, in order; each test cell runs at
   its place in trusted code on the host (:mod:`.trusted`), live checks
   against a throwaway lab (:mod:`.live`);
4. the executed notebook is scored by nbgrader into the gradebook (with its
   hand-in time, so nbgrader's late-submission plugin applies the course's
   deadlines), and only then the journal records the submission as done.

Only the main thread writes the gradebook and the journal. A grader killed
at any moment loses nothing: a submission is done when its journal line is
written (after its grades are committed); anything else is graded again, and
nbgrader replaces a learner's earlier grades rather than adding to them.
Re-running grades only new or changed submissions (``regrade=True`` forces);
``learners=[...]`` grades only those (always again) and leaves everyone else's
grades as they are. After every run grades.csv, the LMS exports, the plot and
the feedback are written again for the whole class from the gradebook
(:mod:`.export`, :mod:`.feedback`).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from careops.errors import CareOpsError
from careops.grading import intake
from careops.grading.agent import IMAGE_CAP, IMAGES_PER_CELL
from careops.grading.course import COURSE_ID, Course, GradingError, generate_assignment
from careops.grading.export import ClassRow, export_class, test_columns
from careops.grading.feedback import (
    GradingNotes,
    exercise_labels,
    grading_notes,
    not_answered_output,
    unanswered,
    unanswered_tests,
)
from careops.grading.journal import Journal, grading_dir
from careops.grading.live import live_meta, run_live_check
from careops.grading.references import exercises_using_references
from careops.grading.restore import grade_id, is_test, restore, source_text
from careops.grading.sandbox import (
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxPolicy,
    remove_leftovers,
    remove_run,
)
from careops.grading.trusted import (
    TestOutcome,
    failed,
    run_test_cell,
    sandbox_fetcher,
    trusted_prelude,
)
from careops.outline import outline
from careops.progress import Progress
from careops.solve.marks import zeroed_tests
from careops.report import theme

GRADER_FILES = ("agent.py", "trusted.py", "restore.py", "live.py", "autograder.py", "sandbox.py", "score.py",
                "references.py", "feedback.py")
STATUSES = ("graded", "incomplete", "rejected")
#: a learner's line of the grade table (the class table's row)
GradeRow = ClassRow


@dataclass
class Outcome:
    """What grading one submission produced, before it is recorded."""

    learner: str
    key: str
    status: str  # graded | incomplete | rejected
    reasons: list[str] = field(default_factory=list)  # why it could not be graded (fully)
    notes: list[str] = field(default_factory=list)  # tampering that was undone
    notebooks: dict[str, dict[str, Any]] = field(default_factory=dict)
    tests: dict[str, TestOutcome] = field(default_factory=dict)
    seconds: float = 0.0
    submission: intake.Submission | None = None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons + self.notes)


def skipped_by_grader(cell: dict[str, Any]) -> bool:
    """A locked lab step the instructor marked ``careops: {grader: skip}`` (it needs the engine)."""
    meta = cell.get("metadata") or {}
    care = meta.get("careops") if isinstance(meta, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return (isinstance(care, dict) and care.get("grader") == "skip" and isinstance(nbg, dict)
            and bool(nbg.get("locked")) and not nbg.get("solution"))


# -- executing one notebook ---------------------------------------------------
def _sandbox_png(out: dict[str, Any]) -> str | None:
    """A picture a learner cell showed (base64 PNG), if it is one: decoded strictly, PNG magic, size capped."""
    data = out.get("png")
    if out.get("output_type") != "display_data" or not isinstance(data, str) or len(data) > IMAGE_CAP * 4 // 3 + 4:
        return None
    try:
        png = base64.b64decode(data, validate=True)
    except ValueError:
        return None
    return data if png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) <= IMAGE_CAP else None


def _sandbox_outputs(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """Outputs from the sandbox as data: text streams, pictures (PNG only) and one error, strictly typed."""
    outputs: list[dict[str, Any]] = []
    pictures = 0
    for out in answer.get("outputs") or []:
        if isinstance(out, dict) and out.get("name") in ("stdout", "stderr") and isinstance(out.get("text"), str):
            outputs.append({"output_type": "stream", "name": out["name"], "text": out["text"][:65536]})
        elif isinstance(out, dict) and pictures < IMAGES_PER_CELL and (png := _sandbox_png(out)) is not None:
            pictures += 1
            outputs.append({"output_type": "display_data", "metadata": {},
                            "data": {"image/png": png, "text/plain": "<figure>"}})
    err = answer.get("error")
    if isinstance(err, dict):
        tb = err.get("traceback")
        outputs.append({"output_type": "error", "ename": str(err.get("ename", "Error"))[:100],
                        "evalue": str(err.get("evalue", ""))[:4000],
                        "traceback": (tb if isinstance(tb, str) else "")[:65536].splitlines()})
    return outputs


def execute(notebook: dict[str, Any], sandbox: Sandbox, prelude: dict[str, Any], *, learner: str,
            artifacts_from: dict[str, Any], zeroed: dict[str, str] | None = None,
            not_answered: dict[str, str] | None = None, solved: dict[str, str] | None = None
            ) -> tuple[dict[str, TestOutcome], list[str]]:
    """Run a restored notebook: learner cells in the sandbox, tests on the host. Fills in outputs.

    ``zeroed`` tests (test -> reason: they rely on the reference answers) score 0 without running;
    a failed test or an answer cell in ``not_answered`` (grade id -> "not answered: exercise ...") says so
    instead of its error; ``solved`` tests (test -> reason: the learner used ``careops solve`` on their exercise)
    score 0 the same way.
    """
    tests: dict[str, TestOutcome] = {}
    incidents: list[str] = []
    defined: dict[str, Any] = {}
    zeroed, not_answered, solved = zeroed or {}, not_answered or {}, solved or {}
    try:
        sandbox.wait_ready()
    except SandboxError as exc:
        raise GradingError(f"the grading sandbox did not start: {exc.message}",
                           fix="careops doctor; is the grader image built (make images)?") from None
    for index, cell in enumerate(notebook["cells"], start=1):
        if cell.get("cell_type") != "code":
            continue
        gid = grade_id(cell)
        label = f"cell {gid or index}"
        if is_test(cell):
            if str(gid) in zeroed:
                outcome = failed(str(gid), f"scored 0: {zeroed[str(gid)]}", "ReferenceUse")
            elif str(gid) in solved:
                outcome = failed(str(gid), f"scored 0: {solved[str(gid)]}", "Solved")
            elif live_meta(cell):
                outcome = run_live_check(cell, artifacts_from, prelude, learner=learner,
                                         fetch=sandbox_fetcher(sandbox) if sandbox.dead is None else None)
            elif sandbox.dead is not None:
                outcome = failed(str(gid), f"not run: {sandbox.dead.message}")
            else:
                outcome = run_test_cell(cell, prelude, defined, sandbox)
            if sandbox.dead is not None and sandbox.dead.message not in incidents:
                incidents.append(sandbox.dead.message)
            err = outcome.error_output() or {}
            if err.get("ename") == "NotGraded" and "not run:" not in outcome.reason:
                incidents.append(f"{gid}: {outcome.reason}")
            elif not outcome.passed and str(gid) in not_answered and err.get("ename") != "NotGraded":
                outcome.outputs = [not_answered_output(not_answered[str(gid)])]
                outcome.hidden = False
            tests[str(gid)] = outcome
            cell["outputs"] = outcome.outputs
            continue
        if sandbox.dead is not None:
            cell["outputs"] = []
            continue
        if skipped_by_grader(cell):
            cell["outputs"] = [{"output_type": "stream", "name": "stdout",
                                "text": "(a lab step: the grader does not run it)\n"}]
            continue
        try:
            answer = sandbox.request("run", label=label, source=source_text(cell))
        except SandboxError as exc:
            incidents.append(exc.message)
            cell["outputs"] = [{"output_type": "error", "ename": "SandboxError", "evalue": exc.message,
                                "traceback": [f"SandboxError: {exc.message}"]}]
            continue
        cell["outputs"] = _sandbox_outputs(answer)
        if str(gid) in not_answered and any(o.get("output_type") == "error" for o in cell["outputs"]):
            cell["outputs"] = [not_answered_output(not_answered[str(gid)])]  # the stub's NotImplementedError
    for incident in sandbox.incidents:
        if incident not in incidents:
            incidents.append(incident)
    return tests, incidents


# -- the batch ---------------------------------------------------------------
@dataclass
class AssignmentContext:
    """The trusted side of one assignment: source notebooks and their instructor imports."""

    course: Course
    assignment: str
    sources: dict[str, dict[str, Any]]
    preludes: dict[str, dict[str, Any]]
    version: str  # changes when the source notebooks or the grader change: everything is graded again

    @classmethod
    def load(cls, course: Course, assignment: str) -> AssignmentContext:
        paths = course.notebooks(assignment)
        if not paths:
            raise GradingError(f"assignment {assignment} has no notebooks in {course.source / assignment}",
                               fix="check the assignment name")
        sources = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in paths}
        h = hashlib.sha256()
        for p in paths:
            h.update(p.name.encode() + p.read_bytes())
        here = Path(__file__).parent
        for name in GRADER_FILES:
            h.update((here / name).read_bytes())
        return cls(course, assignment, sources, {k: trusted_prelude(v) for k, v in sources.items()},
                   h.hexdigest()[:16])

    def test_ids(self) -> list[str]:
        """Column names of the autograded test cells, in notebook order."""
        return test_columns(self.sources)


def check_submission(sub: intake.Submission, ctx: AssignmentContext) -> intake.Submission:
    """Parse every notebook of a submission, or say why it cannot be graded."""
    problems = []
    for name, source_nb in ctx.sources.items():
        path = sub.files.get(name)
        if path is None:
            continue  # a missing notebook scores zero (nbgrader's rule)
        nb, problem = intake.check_notebook(path, ctx.assignment, source_nb)
        if problem:
            problems.append(problem)
        else:
            sub.notebooks[name] = nb  # type: ignore[assignment]
    unknown = sorted(set(sub.files) - set(ctx.sources))
    if not sub.notebooks and not problems:
        problems.append(f"no notebook of {ctx.assignment} was handed in (expected {', '.join(ctx.sources)}"
                        f"{'; got ' + ', '.join(unknown) if unknown else ''})")
    sub.problem = "; ".join(problems) or None
    return sub


def grade_submission(sub: intake.Submission, ctx: AssignmentContext, factory: SandboxFactory,
                     key: str) -> Outcome:
    """Grade one accepted submission: one fresh sandbox per notebook."""
    start = time.monotonic()
    out = Outcome(sub.learner, key, "graded", submission=sub)
    for name, source_nb in ctx.sources.items():
        submitted = sub.notebooks.get(name)
        if submitted is None:
            out.reasons.append(f"{name}.ipynb was not handed in (zero)")
            continue
        restored = restore(source_nb, submitted)
        out.notes.extend(restored.notes)
        zeroed = exercises_using_references(restored.notebook)
        solved = {gid: why for gid, why in zeroed_tests(restored.notebook, layout=outline(source_nb)).items()
                  if gid not in zeroed}
        out.notes.extend(f"{gid} scored 0: {why}" for gid, why in {**zeroed, **solved}.items())
        labels = exercise_labels(source_nb)
        not_answered = {**{gid: f"not answered: {labels.get(gid, gid)}"
                           for gid in unanswered(source_nb, restored.notebook)},
                        **unanswered_tests(source_nb, restored.notebook)}
        sandbox = factory.take()
        try:
            tests, incidents = execute(restored.notebook, sandbox, ctx.preludes[name], learner=sub.learner,
                                       artifacts_from=restored.notebook, zeroed=zeroed, not_answered=not_answered,
                                       solved=solved)
        finally:
            factory.release(sandbox)
        out.reasons.extend(incidents)
        grading_notes(restored.notebook, GradingNotes(
            undone=[n for n in restored.notes if not n.startswith("missing answer")],
            not_answered={g: t for g, t in not_answered.items() if g in tests and not tests[g].passed},
            # (answer cells' own "not answered" show in their place; the summary lists the tests')
            reference_use=zeroed, hidden_failed=[g for g, t in tests.items() if t.hidden and not t.passed],
            incidents=incidents))
        out.notebooks[name] = restored.notebook
        for gid, t in tests.items():
            out.tests[gid if len(ctx.sources) == 1 else f"{name}:{gid}"] = t
    if out.reasons:
        out.status = "incomplete"
    out.seconds = time.monotonic() - start
    return out


def submission_key(sub: intake.Submission, ctx: AssignmentContext) -> str:
    """What a journal line is keyed by: the files handed in and the grader's version (a change of either grades again)."""
    return hashlib.sha256(f"{sub.digest}:{ctx.version}".encode()).hexdigest()[:24]


# -- where submissions are graded: the seam between the batch and its workers ---------------
#: one submission back from grading: its Outcome, or the exception that kept it from being graded
Graded = tuple[intake.Submission, "Outcome | Exception"]


class Graders(Protocol):
    """Grades accepted submissions somewhere and hands back their Outcomes; the batch records them.

    ``grading(ctx, policy, work)`` is a context manager around the whole batch: ``work`` is a list of
    (submission, key); it yields an iterator of (submission, Outcome or the exception that kept it from being
    graded), in the order they finish. ``news()`` is a short line for the progress bar ("" when nothing to say).
    :class:`LocalGraders` is today's pool of sandboxes on this machine's engine;
    ``careops.grading.queue.QueueGraders`` sends each submission to Celery workers on other engines.
    """

    def grading(self, ctx: AssignmentContext, policy: SandboxPolicy, work: list[tuple[intake.Submission, str]]
                ) -> AbstractContextManager[Iterator[Graded]]: ...

    def news(self) -> str: ...


class LocalGraders:
    """``jobs`` sandboxes at once on this machine's engine (threads; one fresh sandbox per notebook)."""

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = max(1, jobs or min(2, os.cpu_count() or 1))

    @contextmanager
    def grading(self, ctx: AssignmentContext, policy: SandboxPolicy, work: list[tuple[intake.Submission, str]]
                ) -> Iterator[Iterator[Graded]]:
        from careops import engine

        client = engine.client()
        remove_leftovers(ctx.assignment, client=client)
        session = uuid.uuid4().hex[:12]
        factory = SandboxFactory(policy, assignment=ctx.assignment, session=session, client=client,
                                 prestart=bool(work))
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="grade")
        stopping = True  # until the batch is through: an exception, Ctrl-C or SIGTERM stops the sandboxes at once
        try:
            futures = {pool.submit(grade_submission, s, ctx, factory, key): s for s, key in work}
            yield ((futures[f], _result_or_error(f)) for f in as_completed(futures))
            stopping = False
        finally:
            if stopping:  # remove the sandboxes in use and the spare now, before waiting for the threads
                factory.abort()
                remove_run(ctx.assignment, session, client=client)
            pool.shutdown(wait=True, cancel_futures=stopping)
            factory.close()
            if stopping:  # anything a thread started while it was stopping
                remove_run(ctx.assignment, session, client=client)
            remove_leftovers(ctx.assignment, client=client, session=session)

    def news(self) -> str:
        return ""


def _result_or_error(future: Future[Outcome]) -> Outcome | Exception:
    error = future.exception()
    if error is None:
        return future.result()
    if isinstance(error, Exception):
        return error
    raise error  # KeyboardInterrupt, SystemExit: not a submission's problem


@dataclass
class GradeSummary:
    """What a grading run produced: the class's grade table, pass rates, problems and where the files are."""

    assignment: str
    rows: list[ClassRow]
    test_ids: list[str]
    max_points: dict[str, float]
    csv_path: Path
    plot_path: Path | None
    graded_now: list[str]
    skipped: list[str]
    seconds: float
    not_collected: list[intake.NotCollected] = field(default_factory=list)
    exports: dict[str, Path] = field(default_factory=dict)

    @property
    def handed_in(self) -> list[ClassRow]:
        return [r for r in self.rows if r.handed_in_or_graded]

    def pass_rates(self) -> dict[str, float]:
        """Per test cell: the share of learners who handed in with full marks on it."""
        rows = self.handed_in
        n = len(rows) or 1
        return {t: sum(r.cells.get(t, 0) >= self.max_points[t] for r in rows) / n for t in self.test_ids}

    @property
    def problems(self) -> list[ClassRow]:
        return [r for r in self.rows if r.status not in ("graded", "missing")]

    def __str__(self) -> str:
        lines = [(f"{self.assignment}: {len(self.handed_in)} submission(s), {len(self.graded_now)} graded now, "
                  f"{len(self.skipped)} unchanged; grades in {self.csv_path}")]
        for t, rate in self.pass_rates().items():
            lines.append(f"  {t}: {rate:.0%} full marks")
        for r in self.problems:
            lines.append(f"  ! {r.learner} ({r.status}): {r.reason}")
        late = [r for r in self.handed_in if r.late]
        for r in late:
            lines.append(f"  late: {r.learner} by {r.late} (penalty {r.late_penalty:g})")
        for nc in self.not_collected:
            lines.append(f"  not collected: {nc}")
        if self.exports:
            lines.append("  exports: " + ", ".join(f"{k} {v}" for k, v in self.exports.items()))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        img = ""
        if self.plot_path and self.plot_path.is_file():
            img = theme.image(self.plot_path.read_bytes(), "score distribution")
        rates = theme.table(([t, theme.num(f"{r:.0%}")] for t, r in self.pass_rates().items()),
                            header=["test", "full marks"])
        probs = (theme.table(([r.learner, theme.state("failed" if r.status != "incomplete" else "not-approved",
                                                      r.status), r.reason] for r in self.problems),
                             header=["learner", "status", "reason"]) if self.problems else theme.muted("none"))
        odd = (theme.table(([nc.path, nc.reason] for nc in self.not_collected), header=["file", "why it was set aside"])
               if self.not_collected else theme.muted("none"))
        body = (img + theme.section("Pass rate per exercise", rates) + theme.section("Not graded fully", probs)
                + theme.section("Not collected", odd) + theme.para(theme.join(["CSV: ", theme.code(self.csv_path)])))
        return theme.card(f"{self.assignment}: {len(self.handed_in)} submissions", body, ok=not self.problems)


def _ensure_registered(course: Course, assignment: str) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    if course.gradebook.is_file():
        with Gradebook(course.db_url, COURSE_ID) as gb:
            try:
                gb.find_assignment(assignment)
                return
            except MissingEntry:
                pass
    generate_assignment(assignment, course.root)


def _roster(course: Course) -> dict[str, dict[str, str]]:
    """The gradebook's students (an imported roster maps LMS names and ids to the course's learner ids)."""
    from nbgrader.api import Gradebook

    if not course.gradebook.is_file():
        return {}
    with Gradebook(course.db_url, COURSE_ID) as gb:
        return {s.id: {"first_name": s.first_name or "", "last_name": s.last_name or "", "email": s.email or "",
                       "lms_user_id": s.lms_user_id or ""} for s in gb.students}


class GradingStopped(KeyboardInterrupt):
    """The grader got SIGTERM: it removed its sandboxes and stops; what was not recorded is graded next run."""

    exit_code = 128 + signal.SIGTERM


class _StopOnSigterm:
    """While grading in the main thread, SIGTERM raises :class:`GradingStopped` (Python's default would end the
    process on the spot and leave the sandboxes running), except inside ``deferred()`` blocks (a submission being
    recorded), where it is raised at the block's end. A second SIGTERM ends the process at once."""

    def __init__(self) -> None:
        self.requested = False
        self._depth = 0
        self._previous: Any = None
        self._installed = False

    def _stop(self) -> GradingStopped:
        return GradingStopped("stopped by SIGTERM: the sandboxes were removed; what was not recorded is graded "
                              "on the next run")

    def _handler(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if not self._depth:
            raise self._stop()

    def __enter__(self) -> _StopOnSigterm:
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            self._previous = signal.signal(signal.SIGTERM, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed and not self.requested:
            signal.signal(signal.SIGTERM, self._previous)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
        if self.requested and not self._depth:
            raise self._stop()


def grade_batch(course_dir: Path, assignment: str, submissions: Path, *, regrade: bool = False,
                jobs: int | None = None, policy: SandboxPolicy | None = None, feedback: bool = True,
                progress: bool = True, learners: list[str] | None = None,
                graders: Graders | None = None) -> GradeSummary:
    """Grade the submissions of ``assignment`` found at ``submissions`` (only ``learners``' when given, always
    again); then write the class's grades, exports and feedback from the gradebook. See the module doc.

    ``graders`` says where submissions are graded: default :class:`LocalGraders` (``jobs`` at once here).
    """
    from careops.grading import deadlines as dl
    from careops.grading.score import Scorer

    start = time.monotonic()
    course = Course(Path(course_dir).resolve())
    if not (course.source / assignment).is_dir():
        known = ", ".join(course.assignments()) or "none"
        raise GradingError(f"unknown assignment {assignment!r} (assignments: {known})",
                           fix="pass one of the folder names under notebooks/")
    _ensure_registered(course, assignment)
    ctx = AssignmentContext.load(course, assignment)
    deadlines = dl.load(course.root)
    _deadlines_into_gradebook(course, assignment, deadlines, reassess=False)
    out_dir = grading_dir(course, assignment)
    found = intake.collect(Path(submissions), assignment, list(ctx.sources), work=out_dir / "unpacked",
                           roster=_roster(course))
    subs = [check_submission(s, ctx) for s in found.submissions]
    if learners:
        unknown = sorted(set(learners) - {s.learner for s in subs})
        if unknown:
            raise GradingError(
                f"no submission of {', '.join(unknown)} at {submissions} (found: "
                f"{', '.join(sorted(s.learner for s in subs)) or 'none'})",
                fix="check the learner id (the grades.csv column 'learner'), or the submissions folder")
        subs = [s for s in subs if s.learner in learners]
    journal = Journal(out_dir / "journal.jsonl")
    done = journal.entries()
    keys = {s.learner: submission_key(s, ctx) for s in subs}
    todo = [s for s in subs if regrade or learners or done.get(s.learner, {}).get("key") != keys[s.learner]]
    skipped = sorted(s.learner for s in subs if s not in todo)
    graders = graders or LocalGraders(jobs)
    # importing nbgrader's apps takes seconds: do it while the first sandboxes start
    loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbgrader")
    scorer_future = loader.submit(Scorer, course)
    loader.shutdown(wait=False)
    policy = policy or SandboxPolicy()
    by_learner = {s.learner: s for s in subs}

    def entry(out: Outcome, sub: intake.Submission) -> dict[str, Any]:
        return {"learner": out.learner, "key": out.key, "status": out.status, "reason": out.reason,
                "seconds": round(out.seconds, 2), "handed_in": sub.handed_in.isoformat(" ") if sub.handed_in else "",
                "handed_in_from": sub.handed_in_from, "origin": sub.origin, "profile": sub.profile}

    def record(out: Outcome) -> None:
        scorer = scorer_future.result()
        sub = by_learner[out.learner]
        if out.status == "rejected":
            scorer.record_zero(assignment, out.learner, out.reason, handed_in=sub.handed_in, profile=sub.profile)
        else:
            scorer.record(assignment, out.learner, out.notebooks, handed_in=sub.handed_in, secret=sub.secret,
                          profile=sub.profile, deadlines=deadlines)
        journal.append(entry(out, sub))

    bar = Progress(f"grading {assignment}", total=len(todo), unit="submission", notebook=True) \
        if progress and todo else None
    rejected = [s for s in todo if s.problem]
    accepted = [s for s in todo if not s.problem]
    stopping = True  # until the batch is through: an exception, Ctrl-C or SIGTERM stops the run at once
    try:
        work = [(s, keys[s.learner]) for s in accepted]
        with _StopOnSigterm() as stop, graders.grading(ctx, policy, work) as results:
            for s in rejected:  # no container for these; recorded while the sandboxes work
                with stop.deferred():
                    record(Outcome(s.learner, keys[s.learner], "rejected", reasons=[s.problem or ""]))
                if bar:
                    bar.advance()
            for sub, got in results:
                with stop.deferred():  # a submission's gradebook rows and journal line are written whole
                    try:
                        if isinstance(got, Exception):
                            raise got
                        record(got)
                    except Exception as exc:  # noqa: BLE001 - the grader's trouble, not the learner's: retried
                        msg = exc.message if isinstance(exc, CareOpsError) else f"{type(exc).__name__}: {exc}"
                        journal.append(entry(Outcome(sub.learner, "", "error", reasons=[f"grader problem: {msg}"]),
                                             sub))
                if bar:
                    bar.advance(text=graders.news())
        stopping = False
    finally:
        if bar:
            bar.close(ok=None if stopping else True, text="stopped" if stopping else "")
    scorer = scorer_future.result()
    _deadlines_into_gradebook(course, assignment, deadlines, reassess=True)
    if feedback and course.root.joinpath("build", "course", "autograded").is_dir():
        scorer.feedback(assignment)  # the whole class: the gradebook (late penalties, hand grading) may have moved
    exports = export_class(course, assignment)
    return GradeSummary(assignment, exports.table.rows, exports.table.test_ids, exports.table.max_points,
                        exports.grades_csv, exports.plot, sorted(s.learner for s in todo), skipped,
                        time.monotonic() - start, found.not_collected,
                        {"canvas": exports.canvas_csv, "moodle": exports.moodle_csv})


def _deadlines_into_gradebook(course: Course, assignment: str, deadlines: Any, *, reassess: bool) -> None:
    """The due date (before scoring) and, after it, everyone's late penalty from the current deadlines file
    (it may have changed since a learner was graded)."""
    import warnings

    from nbgrader.api import Gradebook

    from careops.grading import deadlines as dl

    with warnings.catch_warnings(), Gradebook(course.db_url, COURSE_ID) as gb:
        warnings.simplefilter("ignore")  # nbgrader's SQLAlchemy "not in session" chatter
        dl.apply(gb, deadlines, assignment)
        if reassess:
            dl.reassess(gb, deadlines, assignment)
