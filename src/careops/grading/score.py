"""Scores into the gradebook with nbgrader's own machinery; only the harness writes it.

The notebook handed to nbgrader here was already executed: learner cells in
the sandbox, test cells in trusted code. So nbgrader's ``autograde`` runs
with its Execute and ClearOutput steps removed: it still restores locked
cells from the gradebook (OverwriteCells), validates metadata, and scores
every graded cell with SaveAutoGrades (an error output means zero), in one
gradebook transaction per notebook. Feedback is nbgrader's generate_feedback.
A submission that could not be graded at all gets zero on every cell through
nbgrader's Gradebook API. The hand-in time goes in as nbgrader's own
``timestamp.txt`` (and the exchange's ``submission_secret.txt``, so nbgrader's
release_feedback can hand the feedback back), the learner's extension onto
the submission first: AssignLatePenalties then applies the course's late
policy (:mod:`.deadlines`). All of it runs in one thread (the caller's).
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from careops.grading.course import COURSE_ID, Course, GradingError
from careops.grading.deadlines import Deadlines, prepare_submission
from careops.report import theme

SANITIZE = [
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
SCORE = [
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]


class Scorer:
    """nbgrader's API on one course, loaded once (importing nbgrader is slow)."""

    def __init__(self, course: Course) -> None:
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config.loader import PyFileConfigLoader

        self.course = course
        cfg = PyFileConfigLoader(course.config.name, path=str(course.config.parent)).load_config()
        cfg.Autograde.sanitize_preprocessors = SANITIZE
        cfg.Autograde.autograde_preprocessors = SCORE
        cfg.CourseDirectory.root = str(course.root)
        cfg.CourseDirectory.db_url = course.db_url
        cfg.CourseLatePolicy.course_root = str(course.root)
        self.config = cfg
        self.api = NbGraderAPI(coursedir=CourseDirectory(config=cfg), config=cfg)

    def _profile(self, gb: Any, learner: str, profile: dict[str, str] | None) -> None:
        """What the LMS said about the learner, where the gradebook does not know it yet (a roster wins)."""
        student = gb.update_or_create_student(learner)
        for key in ("first_name", "last_name", "email", "lms_user_id"):
            value = (profile or {}).get(key)
            if value and not getattr(student, key, None):
                setattr(student, key, value)
        gb.db.commit()

    def record(self, assignment: str, learner: str, notebooks: dict[str, dict[str, Any]], *,
               handed_in: datetime | None = None, secret: Path | None = None,
               profile: dict[str, str] | None = None, deadlines: Deadlines | None = None) -> None:
        """Score executed notebooks of one learner into the gradebook (replacing earlier grades)."""
        import warnings

        from nbgrader.api import Gradebook

        submitted = self.course.submitted(learner, assignment)
        if submitted.exists():
            shutil.rmtree(submitted)
        submitted.mkdir(parents=True)
        for name, nb in notebooks.items():
            (submitted / f"{name}.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
        if handed_in is not None:
            (submitted / "timestamp.txt").write_text(handed_in.isoformat(" "), encoding="utf-8")
        if secret is not None and secret.is_file():
            shutil.copyfile(secret, submitted / "submission_secret.txt")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbgrader's SQLAlchemy "not in session" chatter
            with Gradebook(self.course.db_url, COURSE_ID) as gb:
                self._profile(gb, learner, profile)
                prepare_submission(gb, deadlines or Deadlines(), assignment, learner)
            result = self.api.autograde(assignment, learner, force=True, create=True)
        if not result.get("success"):
            raise GradingError(f"nbgrader could not score {learner}'s {assignment}: "
                               f"{(result.get('error') or result.get('log') or '').strip()[-800:]}",
                               fix="read nbgrader's message; the gradebook was not changed for this learner")

    def record_zero(self, assignment: str, learner: str, reason: str, *, handed_in: datetime | None = None,
                    profile: dict[str, str] | None = None) -> None:
        """Zero on every graded cell: the submission could not be graded (reason kept by the journal)."""
        from nbgrader.api import Gradebook

        for stale in (self.course.autograded(learner, assignment), self.feedback_dir(learner, assignment),
                      self.course.submitted(learner, assignment)):
            if stale.exists():
                shutil.rmtree(stale)
        import warnings

        with warnings.catch_warnings(), Gradebook(self.course.db_url, COURSE_ID) as gb:
            warnings.simplefilter("ignore")  # nbgrader's SQLAlchemy "not in session" chatter
            self._profile(gb, learner, profile)
            sub = gb.update_or_create_submission(assignment, learner, timestamp=handed_in)
            for nb in sub.notebooks:
                nb.late_submission_penalty = None
                for grade in nb.grades:
                    grade.auto_score = 0
                    grade.manual_score = None
                    grade.needs_manual_grade = False
            gb.db.commit()
        folder = self.feedback_dir(learner, assignment)
        folder.mkdir(parents=True, exist_ok=True)
        card = theme.card(f"{assignment}: your submission could not be graded",
                          theme.items([(False, f"<span class='reason'>{theme.esc(reason)}</span>"),
                                       (None, "Score: 0. Fix the file and hand it in again.")]), ok=False)
        (folder / "not-graded.html").write_text(
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Not graded</title></head><body>"
            f"{card}</body></html>", encoding="utf-8")

    def feedback_dir(self, learner: str, assignment: str) -> Path:
        return self.course.root / "build" / "course" / "feedback" / learner / assignment

    def feedback(self, assignment: str, learner: str | None = None) -> list[Path]:
        """nbgrader's HTML feedback for one learner, or (``learner`` None) for everyone graded; returns the files."""
        result = self.api.generate_feedback(assignment, learner, force=True)
        if not result.get("success"):
            raise GradingError(f"nbgrader could not write feedback for {learner or 'the class'}: "
                               f"{(result.get('error') or result.get('log') or '').strip()[-800:]}",
                               fix="read nbgrader's message; grades are already saved")
        folder = self.course.root / "build" / "course" / "feedback"
        return sorted(folder.glob(f"{learner or '*'}/{assignment}/*.html"))
