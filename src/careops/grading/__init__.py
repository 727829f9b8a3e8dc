"""Grading for CareOps Labs: nbgrader's course, releases and autograding.

The building blocks (``course``) run real nbgrader on a course directory and
read grades back with nbgrader's own Gradebook API; ``release`` makes the
learner versions with a content-hash stamp, ``learner_copy`` the learner's
copy of the course (no answers); ``harness`` proves every graded check of a
notebook both ways; ``cleanup`` removes a graded run's labs; ``references``
says where the answers live and finds a hand-in that reaches for them. The
sandboxed batch grader is ``autograder`` (with ``intake`` and ``lms`` for
what was handed in, ``restore``, ``sandbox``/``agent``, ``trusted``,
``live``, ``score``, ``deadlines``, ``journal``, ``export`` for the class's
grades and LMS imports, ``feedback`` for the learner's pages and their
return); import it from there.
Importing this package does not import nbgrader (it is slow to import).
"""
from careops.grading.cleanup import CleanupReport, remove_learner_labs
from careops.grading.course import (
    COURSE_ID,
    AutogradeResult,
    CellScore,
    Course,
    GradingError,
    autograde,
    generate_assignment,
    make_temp_course,
    read_scores,
    repo_root,
    run_nbgrader,
)

__all__ = [
    "COURSE_ID",
    "AutogradeResult",
    "CellScore",
    "CleanupReport",
    "Course",
    "GradingError",
    "autograde",
    "generate_assignment",
    "make_temp_course",
    "read_scores",
    "remove_learner_labs",
    "repo_root",
    "run_nbgrader",
]
