"""The sandboxed, parallel autograder: collect, run sealed, score trusted, feed back, export.

For each submission (in a bounded pool of threads, one fresh sandbox per
notebook):

1. intake checks turn away files that are empty, huge, not JSON, not a
   notebook or of another assignment, with a reason (no container starts);
2. the notebook is rebuilt on the instructor's skeleton (:mod:`.restore`);
3. its non-test cells run in the sandbox, in order; each test cell runs at
   its place in trusted code on the host (:mod:`.trusted`), live checks
   against a throwaway lab (:mod:`.live`);
4. the executed notebook is scored by nbgrader into the gradebook, feedback
   is generated, and only then the journal records the submission as done.

Only the main thread writes the gradebook and the journal. A grader killed
at any moment loses nothing: a submission is done when its journal line is
written (after its grades are committed); anything else is graded again, and
nbgrader replaces a learner's earlier grades rather than adding to them.
Re-running grades only new or changed submissions (``regrade=True`` forces).
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from careops.errors import CareOpsError
from careops.grading import intake
from careops.grading.agent import IMAGE_CAP, IMAGES_PER_CELL
from careops.grading.course import COURSE_ID, Course, GradingError, generate_assignment
from careops.grading.live import live_meta, run_live_check
from careops.grading.restore import grade_id, is_test, restore, source_text
from careops.grading.sandbox import (
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxPolicy,
    remove_leftovers,
)
from careops.grading.trusted import (
    TestOutcome,
    failed,
    run_test_cell,
    sandbox_fetcher,
    trusted_prelude,
)
from careops.progress import Progress
from careops.report import theme

GRADER_FILES = ("agent.py", "trusted.py", "restore.py", "live.py", "autograder.py", "sandbox.py", "score.py")
STATUSES = ("graded", "incomplete", "rejected")


def grading_dir(course: Course, assignment: str) -> Path:
    """Where the grader keeps its journal, CSV and plot for one assignment."""
    return course.build / "grading" / assignment


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

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons + self.notes)


class Journal:
    """Append-only record of recorded submissions; the last line of a learner wins."""

    def __init__(self, path: Path) -> None:
        self.path = path

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
            artifacts_from: dict[str, Any]) -> tuple[dict[str, TestOutcome], list[str]]:
    """Run a restored notebook: learner cells in the sandbox, tests on the host. Fills in outputs."""
    tests: dict[str, TestOutcome] = {}
    incidents: list[str] = []
    defined: dict[str, Any] = {}
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
            if live_meta(cell):
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
        ids = []
        for name, nb in self.sources.items():
            for cell in nb.get("cells", []):
                if is_test(cell):
                    ids.append(grade_id(cell) if len(self.sources) == 1 else f"{name}:{grade_id(cell)}")
        return [i for i in ids if i]


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
    out = Outcome(sub.learner, key, "graded")
    for name, source_nb in ctx.sources.items():
        submitted = sub.notebooks.get(name)
        if submitted is None:
            out.reasons.append(f"{name}.ipynb was not handed in (zero)")
            continue
        restored = restore(source_nb, submitted)
        out.notes.extend(restored.notes)
        sandbox = factory.take()
        try:
            tests, incidents = execute(restored.notebook, sandbox, ctx.preludes[name], learner=sub.learner,
                                       artifacts_from=restored.notebook)
        finally:
            sandbox.remove()
        out.reasons.extend(incidents)
        out.notebooks[name] = restored.notebook
        for gid, t in tests.items():
            out.tests[gid if len(ctx.sources) == 1 else f"{name}:{gid}"] = t
    if out.reasons:
        out.status = "incomplete"
    out.seconds = time.monotonic() - start
    return out


@dataclass
class GradeRow:
    """One learner's line of the grade export."""

    learner: str
    status: str
    score: float
    max_score: float
    cells: dict[str, float]
    reason: str


@dataclass
class GradeSummary:
    """What a grading run produced: the grade table, pass rates, problems and where the files are."""

    assignment: str
    rows: list[GradeRow]
    test_ids: list[str]
    max_points: dict[str, float]
    csv_path: Path
    plot_path: Path | None
    graded_now: list[str]
    skipped: list[str]
    seconds: float

    def pass_rates(self) -> dict[str, float]:
        """Per test cell: the share of learners with full marks on it."""
        n = len(self.rows) or 1
        return {t: sum(r.cells.get(t, 0) >= self.max_points[t] for r in self.rows) / n for t in self.test_ids}

    @property
    def problems(self) -> list[GradeRow]:
        return [r for r in self.rows if r.status != "graded"]

    def __str__(self) -> str:
        lines = [(f"{self.assignment}: {len(self.rows)} submission(s), {len(self.graded_now)} graded now, "
                  f"{len(self.skipped)} unchanged; grades in {self.csv_path}")]
        for t, rate in self.pass_rates().items():
            lines.append(f"  {t}: {rate:.0%} full marks")
        for r in self.problems:
            lines.append(f"  ! {r.learner} ({r.status}): {r.reason}")
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
        body = (img + theme.section("Pass rate per exercise", rates) + theme.section("Not graded fully", probs)
                + theme.para(theme.join(["CSV: ", theme.code(self.csv_path)])))
        return theme.card(f"{self.assignment}: {len(self.rows)} submissions", body, ok=not self.problems)


def _fmt(x: float) -> str:
    return f"{x:g}"


def export(ctx: AssignmentContext, learners: Iterable[str], journal: dict[str, dict[str, Any]], path: Path
           ) -> tuple[list[GradeRow], dict[str, float]]:
    """Write the grade CSV (atomically) from the gradebook, with status and reason from the journal."""
    from nbgrader.api import Gradebook, MissingEntry

    test_ids = ctx.test_ids()
    rows: list[GradeRow] = []
    max_points: dict[str, float] = {}
    with Gradebook(ctx.course.db_url, COURSE_ID) as gb:
        for learner in sorted(learners):
            cells: dict[str, float] = {}
            total = maximum = 0.0
            try:
                sub = gb.find_submission(ctx.assignment, learner)
                for nb in sub.notebooks:
                    for g in nb.grades:
                        score = float(g.score or 0.0)
                        total += score
                        maximum += float(g.max_score or 0.0)
                        col = g.name if len(ctx.sources) == 1 else f"{nb.name}:{g.name}"
                        cells[col] = score
                        max_points[col] = float(g.max_score or 0.0)
            except MissingEntry:
                pass
            entry = journal.get(learner, {})
            rows.append(GradeRow(learner, entry.get("status", "missing"), total, maximum, cells,
                                 entry.get("reason", "")))
    for t in test_ids:
        max_points.setdefault(t, 0.0)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["learner", "status", "score", "max_score", *test_ids, "reason"])
    for r in rows:
        w.writerow([r.learner, r.status, _fmt(r.score), _fmt(r.max_score),
                    *(_fmt(r.cells.get(t, 0.0)) for t in test_ids), r.reason])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
    return rows, max_points


def plot_scores(rows: list[GradeRow], path: Path, assignment: str) -> Path | None:
    """A histogram of the scores (PNG)."""
    if not rows:
        return None
    from careops.report.figure import Figure

    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot()
    top = max((r.max_score for r in rows), default=1.0) or 1.0
    ax.hist([r.score for r in rows], bins=[x - 0.5 for x in range(int(top) + 2)], color=theme.FIGURE["primary"],
            rwidth=0.9)
    ax.set_xlabel("score")
    ax.set_ylabel("learners")
    ax.set_title(f"{assignment}: score distribution")
    fig.tight_layout()
    fig.savefig(path)
    return path


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


def grade_batch(course_dir: Path, assignment: str, submissions: Path, *, regrade: bool = False,
                jobs: int | None = None, policy: SandboxPolicy | None = None, feedback: bool = True,
                progress: bool = True) -> GradeSummary:
    """Grade every submission of ``assignment`` found at ``submissions``; see the module doc."""
    from careops import engine
    from careops.grading.score import Scorer

    start = time.monotonic()
    course = Course(Path(course_dir).resolve())
    if not (course.source / assignment).is_dir():
        known = ", ".join(course.assignments()) or "none"
        raise GradingError(f"unknown assignment {assignment!r} (assignments: {known})",
                           fix="pass one of the folder names under notebooks/")
    _ensure_registered(course, assignment)
    ctx = AssignmentContext.load(course, assignment)
    subs = [check_submission(s, ctx) for s in intake.collect(Path(submissions), assignment, list(ctx.sources))]
    out_dir = grading_dir(course, assignment)
    journal = Journal(out_dir / "journal.jsonl")
    done = journal.entries()
    keys = {s.learner: hashlib.sha256(f"{s.digest}:{ctx.version}".encode()).hexdigest()[:24] for s in subs}
    todo = [s for s in subs if regrade or done.get(s.learner, {}).get("key") != keys[s.learner]]
    skipped = sorted(s.learner for s in subs if s not in todo)
    client = engine.client()
    remove_leftovers(assignment, client=client)
    # importing nbgrader's apps takes seconds: do it while the first sandboxes start
    loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nbgrader")
    scorer_future = loader.submit(Scorer, course)
    loader.shutdown(wait=False)
    policy = policy or SandboxPolicy()
    session = uuid.uuid4().hex[:12]
    jobs = max(1, jobs or min(2, os.cpu_count() or 1))

    def record(out: Outcome) -> None:
        scorer = scorer_future.result()
        if out.status == "rejected":
            scorer.record_zero(assignment, out.learner, out.reason)
        else:
            scorer.record(assignment, out.learner, out.notebooks)
            if feedback:
                scorer.feedback(assignment, out.learner)
        journal.append({"learner": out.learner, "key": out.key, "status": out.status, "reason": out.reason,
                        "seconds": round(out.seconds, 2)})

    bar = Progress(f"grading {assignment}", total=len(todo), unit="submission", notebook=True) \
        if progress and todo else None
    rejected = [s for s in todo if s.problem]
    accepted = [s for s in todo if not s.problem]
    failures: dict[str, dict[str, Any]] = {}
    factory = SandboxFactory(policy, assignment=assignment, session=session, client=client,
                             prestart=bool(accepted))
    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade") as pool:
            futures = {pool.submit(grade_submission, s, ctx, factory, keys[s.learner]): s for s in accepted}
            for s in rejected:  # no container for these; recorded while the sandboxes work
                record(Outcome(s.learner, keys[s.learner], "rejected", reasons=[s.problem or ""]))
                if bar:
                    bar.advance()
            for fut in as_completed(futures):
                try:
                    record(fut.result())
                except Exception as exc:  # noqa: BLE001 - the grader's trouble, not the learner's: retried next run
                    msg = exc.message if isinstance(exc, CareOpsError) else f"{type(exc).__name__}: {exc}"
                    failures[futures[fut].learner] = {"status": "error", "reason": f"grader problem: {msg}"}
                if bar:
                    bar.advance()
    finally:
        factory.close()
        remove_leftovers(assignment, client=client, session=session)
        if bar:
            bar.close()
    entries = {**journal.entries(), **failures}
    rows, max_points = export(ctx, [s.learner for s in subs], entries, out_dir / "grades.csv")
    plot = plot_scores(rows, out_dir / "scores.png", assignment)
    return GradeSummary(assignment, rows, ctx.test_ids(), max_points, out_dir / "grades.csv", plot,
                        sorted(s.learner for s in todo), skipped, time.monotonic() - start)
