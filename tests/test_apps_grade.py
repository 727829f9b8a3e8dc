"""`careops grade` (careops.apps.grade.main): its errors before any grading starts (grading itself:
tests/test_grade_adversarial_batch.py)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ASSIGNMENT = "00-orientation"


def test_grade_app_explains_a_missing_submissions_folder(tmp_path: Path) -> None:
    from careops.apps.grade import main
    from careops.errors import CareOpsError
    from careops.grading.course import make_temp_course

    course = make_temp_course(tmp_path / "c", ASSIGNMENT)
    with pytest.raises(CareOpsError, match="no submissions found for 00-orientation"):
        main(assignment=ASSIGNMENT, course_dir=course.root)
    shutil.rmtree(course.root)
