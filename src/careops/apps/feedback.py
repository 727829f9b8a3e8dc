"""`careops feedback return ASSIGNMENT`: hand each learner's feedback back.

Copies every graded learner's feedback pages of ASSIGNMENT (as ``careops grade`` last wrote them from the
gradebook) into ``<to>/<learner>/<assignment>/`` (default build/grading/<assignment>/return), a folder per
learner an instructor can send or share; writes a zip for Moodle's "Upload multiple feedback files in a zip"
when learners came from a Moodle download; and, with ``exchange``, releases the feedback into nbgrader's
exchange for learners who handed in through it (they run ``nbgrader fetch_feedback``; in workshop mode the hub
hands it to their server).
"""
from __future__ import annotations

from pathlib import Path

from careops.errors import CareOpsError
from careops.grading.course import Course, repo_root


def return_main(*, assignment: str, to: Path | None = None, learners: tuple[str, ...] = (),
                exchange: Path | None = None, course_dir: Path | None = None) -> int:
    """Return the feedback of ``assignment``; 1 when a graded learner has no feedback page yet."""
    from careops.grading.feedback import return_feedback

    course = Course((course_dir or repo_root()).resolve())
    if assignment not in course.assignments():
        raise CareOpsError(f"unknown assignment {assignment!r} (assignments: {', '.join(course.assignments())})",
                           fix="pass one of the folder names under notebooks/")
    done = return_feedback(course, assignment, dest=to, learners=list(learners) or None, exchange=exchange)
    if not done.learners and not done.missing:
        raise CareOpsError(f"no feedback of {assignment} to return: nobody was graded yet",
                           fix=f"careops grade {assignment} first")
    print(done)
    return 1 if done.missing else 0
