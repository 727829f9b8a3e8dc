"""`careops grade ASSIGNMENT`: autograde every submission in sealed sandboxes, in parallel.

Collects the submissions (a folder of files, one per learner; a Moodle or
Canvas download, unpacked or as its zip; or nbgrader's exchange), grades
what is new or changed (``regrade`` grades everything again; ``learners``
grades only those, again, and leaves everyone else's grades alone), then
writes for the whole class, from nbgrader's gradebook, feedback HTML and
build/grading/<assignment>/{grades,canvas,moodle}.csv, and prints a summary:
pass rate per exercise, late hand-ins, every submission that could not be
graded fully and every file set aside, each with its reason.
Raises CareOpsError (exit 1) when grading cannot start; returns 2 when some
submissions hit a grader problem (they are graded again on the next run).
"""
from __future__ import annotations

import os
from pathlib import Path

from careops.errors import CareOpsError
from careops.grading.autograder import GradeSummary, grade_batch
from careops.grading.course import COURSE_ID, Course, repo_root
from careops.grading.sandbox import SandboxPolicy

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


def main(*, assignment: str, submissions: Path | None = None, regrade: bool = False, jobs: int | None = None,
         course_dir: Path | None = None, cell_timeout: float | None = None, wall_time: float | None = None,
         feedback: bool = True, progress: bool = True, learners: tuple[str, ...] = (),
         queue: str | None = None) -> int:
    """Grade ``assignment``; print the summary; 0 when every submission was recorded.

    ``queue`` (a Redis URL): grade on the queue's workers (careops worker) instead of here.
    """
    course = Course((course_dir or repo_root()).resolve())
    if not course.config.is_file():
        raise CareOpsError(f"no nbgrader config: expected {course.config}",
                           fix="run careops from a complete checkout of CareOps Labs")
    source = Path(submissions) if submissions else default_submissions(course, assignment)
    policy = SandboxPolicy()
    if cell_timeout or wall_time:
        policy = SandboxPolicy(cell_timeout=cell_timeout or policy.cell_timeout,
                               wall_time=wall_time or policy.wall_time)
    graders = None
    if queue:
        from careops.grading.queue import QueueGraders

        graders = QueueGraders(queue, reuse_results=not regrade)
    summary: GradeSummary = grade_batch(course.root, assignment, source, regrade=regrade, jobs=jobs,
                                        policy=policy, feedback=feedback, progress=progress,
                                        learners=list(learners) or None, graders=graders)
    print(summary)
    return 2 if any(r.status == "error" for r in summary.rows) else 0
