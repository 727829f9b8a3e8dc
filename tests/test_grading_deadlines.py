"""careops.grading.deadlines: grading/deadlines.yaml into nbgrader's gradebook; late hand-ins scored by nbgrader's
AssignLatePenalties with the course's plugin, with and without an extension (real nbgrader, a real gradebook).
"""
from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from careops.grading import deadlines as dl
from careops.grading.course import COURSE_ID, generate_assignment, make_temp_course

ASSIGNMENT = "00-orientation"
DUE = datetime(2026, 3, 2, 17, 0)  # UTC
DEADLINES = textwrap.dedent("""\
    timezone: Europe/London
    late_policy: {penalty: per_day, per_day: 0.25, max: 0.5, grace: 10 minutes}
    assignments:
      00-orientation:
        due: 2026-03-02 17:00
        extensions:
          late-excused: 3 days
          own-date: 2026-03-10T09:00:00+00:00
    """)


def test_the_file_reads_zones_durations_and_dates() -> None:
    assert dl.parse_duration("36 hours", "x") == timedelta(hours=36)
    assert dl.parse_duration("90 min", "x") == timedelta(minutes=90)
    with pytest.raises(dl.DeadlineError, match="not a duration"):
        dl.parse_duration("soonish", "x")


def test_late_policy_arithmetic() -> None:
    policy = dl.LatePolicy("per_day", per_day=0.25, max=0.5, grace=timedelta(minutes=10))
    assert policy.penalty_for(8, 5 * 60) == 0  # within the grace
    assert policy.penalty_for(8, 3600) == 2  # a started day: 25 %
    assert policy.penalty_for(8, 86400 + 1) == 4  # two started days: 50 %
    assert policy.penalty_for(8, 10 * 86400) == 4  # at most 50 %
    assert dl.LatePolicy("zero").penalty_for(8, 3600) == 8 and dl.LatePolicy().penalty_for(8, 3600) == 0
    assert "25% of the score per started day" in policy.describe()


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Any:
    course = make_temp_course(tmp_path_factory.mktemp("deadlines-course"), ASSIGNMENT)
    generate_assignment(ASSIGNMENT, course.root)
    (course.root / dl.DEADLINES_FILE).write_text(DEADLINES, encoding="utf-8")
    return course


def test_loaded_from_the_course(course: Any) -> None:
    d = dl.load(course.root)
    assert d.due[ASSIGNMENT] == DUE  # 17:00 in London in March is 17:00 UTC
    assert d.extensions[ASSIGNMENT] == {"late-excused": timedelta(days=3),
                                        "own-date": datetime(2026, 3, 10, 9) - DUE}
    assert d.due_for(ASSIGNMENT, "late-excused") == DUE + timedelta(days=3)
    assert dl.load(course.root / "nowhere").due == {}


def test_a_late_hand_in_is_penalised_by_nbgrader_and_an_extension_excuses_it(course: Any,
                                                                           orientation_source: dict) -> None:
    """Both hand in a day and a half late, with full marks; only the one with an extension keeps them."""
    from nbgrader.api import Gradebook

    from careops.grading.score import Scorer

    deadlines = dl.load(course.root)
    with Gradebook(course.db_url, COURSE_ID) as gb:
        dl.apply(gb, deadlines, ASSIGNMENT)
    scorer = Scorer(course)
    late = DUE + timedelta(hours=36)
    for learner in ("late-plain", "late-excused", "on-time"):
        scorer.record(ASSIGNMENT, learner, {"orientation": orientation_source},
                      handed_in=DUE - timedelta(hours=1) if learner == "on-time" else late, deadlines=deadlines)
    with Gradebook(course.db_url, COURSE_ID) as gb:
        subs = {s: gb.find_submission(ASSIGNMENT, s) for s in ("late-plain", "late-excused", "on-time")}
        assert {s: sub.timestamp for s, sub in subs.items()} == {"late-plain": late, "late-excused": late,
                                                                  "on-time": DUE - timedelta(hours=1)}
        assert subs["late-plain"].total_seconds_late == 36 * 3600 and subs["late-plain"].late_submission_penalty == 4
        assert subs["late-excused"].extension == timedelta(days=3)
        assert subs["late-excused"].total_seconds_late == 0 and subs["late-excused"].late_submission_penalty == 0
        assert subs["on-time"].late_submission_penalty == 0
    # the instructor grants late-plain an extension afterwards: the next run's reassessment lifts the penalty
    text = DEADLINES.replace("late-excused: 3 days", "late-excused: 3 days\n      late-plain: 2 days")
    (course.root / dl.DEADLINES_FILE).write_text(text, encoding="utf-8")
    with Gradebook(course.db_url, COURSE_ID) as gb:
        dl.reassess(gb, dl.load(course.root), ASSIGNMENT)
        assert gb.find_submission(ASSIGNMENT, "late-plain").late_submission_penalty == 0
    (course.root / dl.DEADLINES_FILE).write_text(DEADLINES, encoding="utf-8")


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "grading").mkdir()
    (tmp_path / dl.DEADLINES_FILE).write_text("late_policy: {penalty: half}\n")
    with pytest.raises(dl.DeadlineError, match="penalty is 'half'"):
        dl.load(tmp_path)
    (tmp_path / dl.DEADLINES_FILE).write_text("assignments: {a: {due: next tuesday}}\n")
    with pytest.raises(dl.DeadlineError, match="is not a date and time"):
        dl.load(tmp_path)
