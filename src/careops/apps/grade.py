"""`careops grade ASSIGNMENT`: autograde every submission in sealed sandboxes, in parallel.

Collects the submissions (a folder of files, one per learner; a Moodle or
Canvas download, unpacked or as its zip; or nbgrader's exchange), grades
what is new or changed (``regrade`` grades everything again; ``learners``
grades only those, again, and leaves everyone else's grades alone), then
writes for the whole class, from nbgrader's gradebook, feedback HTML and
build/grading/<assignment>/{grades,canvas,moodle}.csv, and prints a summary:
pass rate per exercise, late hand-ins, every submission that could not be
graded fully and every file set aside, each with its reason.
A workshop hub's hand-in store (``workshop``: its name, or the store's folder as
``submissions``) is read as an exchange, and the grades go back into it for the
instructor's dashboard.
Raises CareOpsError (exit 1) when grading cannot start; returns 2 when some
submissions hit a grader problem (they are graded again on the next run).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from careops import handins
from careops.errors import CareOpsError
from careops.grading.course import COURSE_ID, Course, repo_root
from careops.grading.sandbox import SandboxPolicy

if TYPE_CHECKING:  # the grader (nbgrader) is imported when grading starts: the learner image's careops CLI has none
    from careops.grading.autograder import GradeSummary

EXCHANGE_ENV = "CAREOPS_EXCHANGE"
DEFAULT_EXCHANGE = Path("/srv/nbgrader/exchange")


def default_submissions(course: Course, assignment: str) -> Path:
    """$CAREOPS_EXCHANGE, nbgrader's default exchange, or <course>/submissions/<assignment>/."""
    for exchange in (os.environ.get(EXCHANGE_ENV), str(DEFAULT_EXCHANGE)):
        if exchange and (Path(exchange) / COURSE_ID / "inbound").is_dir():
            return Path(exchange)
    folder = course.root / "submissions" / assignment
    if folder.is_dir():
        return folder
    raise CareOpsError(
        f"no submissions found for {assignment}: no nbgrader exchange (${EXCHANGE_ENV} or {DEFAULT_EXCHANGE}) "
        f"and no folder {folder}",
        fix="pass the folder of your LMS export (one <learner>.ipynb per learner) as submissions",
    )


def store_grades(source: Path, summary: GradeSummary) -> Path | None:
    """Write the class's grades into ``source`` when it is a workshop's hand-in store (the dashboard shows them)."""
    if not handins.is_store(source):
        return None
    rows = [{"learner": r.learner, "status": r.status, "score": r.score, "max_score": r.max_score,
             "reason": r.reason} for r in summary.rows if r.handed_in_or_graded]
    return handins.HandInStore(source).write_grades(summary.assignment, rows)


def workshop_store(name: str) -> Path:
    """The hand-in store of workshop ``name`` on this host."""
    from careops.workshop.settings import WorkshopSettings

    store = WorkshopSettings.load(name).handin_store
    if not handins.is_store(store):
        raise CareOpsError(f"workshop {name} has no hand-ins yet (nothing in {store})",
                           fix="learners hand in with the Hand in button (or careops submit) in the hub first")
    return store


def main(*, assignment: str, submissions: Path | None = None, workshop: str | None = None, regrade: bool = False,
         jobs: int | None = None, course_dir: Path | None = None, cell_timeout: float | None = None,
         wall_time: float | None = None, feedback: bool = True, progress: bool = True,
         learners: tuple[str, ...] = (), queue: str | None = None) -> int:
    """Grade ``assignment``; print the summary; 0 when every submission was recorded.

    ``queue`` (a Redis URL): grade on the queue's workers (careops worker) instead of here.
    """
    if workshop and submissions:
        raise CareOpsError("give either a workshop or a submissions folder, not both",
                           fix=f"careops grade {assignment} --workshop NAME (its hand-in store)")
    if workshop:
        submissions = workshop_store(workshop)
    course = Course((course_dir or repo_root()).resolve())
    if not course.config.is_file():
        raise CareOpsError(f"no nbgrader config: expected {course.config}",
                           fix="run careops from a complete checkout of CareOps Labs")
    source = Path(submissions) if submissions else default_submissions(course, assignment)
    policy = SandboxPolicy()
    if cell_timeout or wall_time:
        policy = SandboxPolicy(cell_timeout=cell_timeout or policy.cell_timeout,
                               wall_time=wall_time or policy.wall_time)
    from careops.grading.autograder import grade_batch

    graders = None
    if queue:
        from careops.grading.queue import QueueGraders

        graders = QueueGraders(queue, reuse_results=not regrade)
    summary = grade_batch(course.root, assignment, source, regrade=regrade, jobs=jobs,
                                        policy=policy, feedback=feedback, progress=progress,
                                        learners=list(learners) or None, graders=graders)
    print(summary)
    stored = store_grades(source, summary)
    if stored:
        print(f"grades for the workshop's dashboard: {stored}")
    return 2 if any(r.status == "error" for r in summary.rows) else 0
