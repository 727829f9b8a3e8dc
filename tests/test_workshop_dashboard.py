"""The instructor's dashboard without the hub: the checks' reports as the hand-in service keeps them, the class's
view (latest verdict, attempts, minutes, stuck), and what the page, the plot and the CSV export show.

The hub test (tests/test_workshop_classroom.py) runs the real services behind JupyterHub with learners in
Chromium; here a scripted morning of three learners is checked to the minute.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from careops.handins import Assignments, HandInStore
from careops.report import theme
from careops.workshop.activity import (
    OTHER,
    ActivityLog,
    ReportRefused,
    checked_report,
    class_view,
)
from careops.workshop.dashboard import CSV_COLUMNS, Dashboard, render_csv, render_page, render_view, rows

REPO = Path(__file__).resolve().parents[1]
COURSE = Assignments({"00-orientation": ("orientation",)})
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
EX1 = "careops.checks.orientation.synthetic_markers"
EX2 = "careops.checks.orientation.container_spec"


def message(check: str, passed: bool, title: str, failed: str = "it is not sorted") -> dict:
    return {"check": check, "title": title, "passed": passed, "not_written": False,
            "summary": f"{title}: {int(passed)}/1 criteria passed",
            "criteria": [{"message": "ok" if passed else failed, "passed": passed}],
            "notebook": "00-orientation/orientation.ipynb", "ran_at": T0.isoformat()}


@pytest.mark.parametrize(("bad", "words"), [
    ([], "a JSON object"),
    ({**message(EX1, True, "x"), "learner": "ben"}, "unknown field(s) learner"),
    ({**message(EX1, True, "x"), "received_at": "2020-01-01"}, "unknown field(s) received_at"),
    ({**message(EX1, True, "x"), "passed": "yes"}, "'passed' must be true or false"),
    ({**message(EX1, True, "x"), "check": "import os; os.system('x')"}, "a check's dotted name"),
    ({**message(EX1, True, "x"), "title": "t" * 500}, "longer than"),
    ({**message(EX1, True, "x"), "criteria": [{"message": 3, "passed": True}]}, "'criteria' must be a list"),
])
def test_a_report_is_only_what_a_check_says(bad: object, words: str) -> None:
    with pytest.raises(ReportRefused, match=words.replace("(", r"\(").replace(")", r"\)")):
        checked_report(bad, COURSE)


def test_a_report_belongs_to_its_notebooks_assignment() -> None:
    assert checked_report(message(EX1, True, "x"), COURSE)["assignment"] == "00-orientation"
    scratch = {**message(EX1, True, "x"), "notebook": "scratch/Untitled.ipynb"}
    assert checked_report(scratch, COURSE)["assignment"] == OTHER


@pytest.fixture
def morning(tmp_path: Path) -> tuple[ActivityLog, HandInStore]:
    """ana fails exercise 1 twice and passes at 09:05, then passes exercise 2; ben fails exercise 1 from 09:00 to
    09:15; cara has done nothing yet. ana hands in at 09:20 and is graded 6/8."""
    log = ActivityLog(tmp_path / "activity.sqlite")
    title1, title2 = "Exercise 1: synthetic or real-looking?", "Exercise 2a: the triage-probe container spec"
    for minute, learner, check, title, passed in [
            (0, "ana", EX1, title1, False), (2, "ana", EX1, title1, False), (5, "ana", EX1, title1, True),
            (7, "ana", EX2, title2, True), (0, "ben", EX1, title1, False), (15, "ben", EX1, title1, False)]:
        log.record(learner, checked_report(message(check, passed, title, failed="SSN marker 999- not found"),
                                           COURSE), now=T0 + timedelta(minutes=minute))
    store = HandInStore(tmp_path / "store")
    nb = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "source": "x", "metadata": {}}]}).encode()
    store.receive("ana", "00-orientation", "orientation", nb, COURSE, now=T0 + timedelta(minutes=20))
    store.write_grades("00-orientation", [{"learner": "ana", "status": "graded", "score": 6.0, "max_score": 8.0}])
    return log, store


def test_the_class_view_has_each_learners_latest_verdict_minutes_and_who_is_stuck(morning) -> None:
    log, store = morning
    view = class_view(log.reports(), ["ana", "ben", "cara"], store.hand_ins(), store.grades(),
                      now=T0 + timedelta(minutes=16), stuck_after=10)
    assert [e.check for e in view.exercises] == [EX1, EX2]
    ana, ben = view.progress[("ana", EX1)], view.progress[("ben", EX1)]
    assert (ana.attempts, ana.passed, ana.minutes, ana.failing_since) == (3, True, 5.0, None)
    assert (ben.attempts, ben.passed, ben.minutes, ben.message) == (2, False, 15.0, "SSN marker 999- not found")
    assert ben.stuck_minutes(view.now) == 16 and view.is_stuck(ben) and not view.is_stuck(ana)
    assert ("cara", EX1) not in view.progress and "cara" in view.learners
    assert [(e.check, passed, failing, stuck) for e, passed, failing, stuck in view.passed_counts()] == [
        (EX1, 1, 0, 1), (EX2, 1, 0, 0)]
    calmer = class_view(log.reports(), ["ana", "ben", "cara"], [], {}, now=T0 + timedelta(minutes=16),
                        stuck_after=20)
    assert not calmer.is_stuck(calmer.progress[("ben", EX1)])
    # an instructor who tried a check is not one of the class (the hub's learners are the rows)
    log.record("dr-lee", checked_report(message(EX1, True, "x"), COURSE))
    assert "dr-lee" not in class_view(log.reports(), ["ana"], [], {}, now=view.now, stuck_after=10).learners


def test_the_page_shows_marks_stuck_hand_ins_grades_and_the_plot_with_the_theme(morning) -> None:
    log, store = morning
    view = class_view(log.reports(), ["ana", "ben", "cara"], store.hand_ins(), store.grades(),
                      now=T0 + timedelta(minutes=16), stuck_after=10)
    dashboard = Dashboard(store, log)
    html = render_view(view, dashboard)
    assert html.count("<div class='careops-result'") >= 4  # the class now, stuck, progress, 00-orientation
    assert "1 stuck" in html and "stuck 16 min" in html and theme.colour("stuck") in html
    assert "SSN marker 999- not found" in html and "not started" in html and "6/8" in html
    assert f"{theme.PASS_MARK} 09:20:00 UTC" in html and "not yet" in html
    assert "<svg" in html and "Class progress" in html and "1/3" in html  # one of three passed exercise 1
    page = render_page(view, dashboard, "?stuck_minutes=10")
    assert page.startswith("<!doctype html>") and "careopsRefresh" in page
    assert json.dumps("/services/dashboard/view?stuck_minutes=10") in page


def test_the_csv_export_has_one_line_per_learner_and_exercise(morning) -> None:
    log, store = morning
    view = class_view(log.reports(), ["ana", "ben", "cara"], store.hand_ins(), store.grades(),
                      now=T0 + timedelta(minutes=16), stuck_after=10)
    found = list(csv.DictReader(io.StringIO(render_csv(view))))
    assert list(found[0]) == CSV_COLUMNS and len(found) == 3 * 2 == len(rows(view))
    by = {(r["learner"], r["check"]): r for r in found}
    assert by[("ben", EX1)]["stuck"] == "True" and by[("ben", EX1)]["latest"] == "failed"
    assert by[("ana", EX1)]["minutes_on"] == "5.0" and by[("ana", EX1)]["hand_ins"] == "1"
    assert by[("ana", EX2)]["score"] == "6.0" and by[("cara", EX2)]["latest"] == "not started"


def test_the_activity_log_keeps_a_cap_per_learner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from careops.workshop import activity

    monkeypatch.setattr(activity, "MAX_REPORTS_PER_LEARNER", 2)
    log = ActivityLog(tmp_path / "a.sqlite")
    for _ in range(2):
        log.record("ana", checked_report(message(EX1, True, "x"), COURSE))
    with pytest.raises(ReportRefused, match="2 check reports already"):
        log.record("ana", checked_report(message(EX1, True, "x"), COURSE))
    assert len(ActivityLog(tmp_path / "a.sqlite").reports()) == 2  # a second reader (the dashboard) sees them


def test_the_hand_in_extension_is_built_against_this_jupyterlabs_packages() -> None:
    """The prebuilt extension's shared packages must be the versions this JupyterLab ships, or JupyterLab
    disables it (the learner image's smoke test would fail only after a long build)."""
    import jupyterlab

    core = json.loads((Path(jupyterlab.__file__).parent / "staging" / "package.json").read_text())["resolutions"]
    ours = json.loads((REPO / "workshop" / "learner" / "handin-extension" / "package.json").read_text())
    assert {name: core.get(name) for name in ours["dependencies"]} == ours["dependencies"]
