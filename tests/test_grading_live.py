"""careops.grading.live: which test cells are live checks, and the reasons a live check fails before any lab starts.

(Live checks against real labs run in the grading end-to-end tests and beside each module's checks.)
"""
from __future__ import annotations

from typing import Any

from careops.checks import live_checks
from careops.grading.live import live_meta, run_live_check


def _test_cell(**metadata: Any) -> dict[str, Any]:
    return {"cell_type": "code", "source": "assert container.status == 'running'\n",
            "metadata": {"nbgrader": {"grade_id": "test_live", "grade": True, "points": 2, "locked": True},
                         **metadata}}


def test_a_cell_is_a_live_check_only_when_it_names_one() -> None:
    care = {"live_check": "orientation.triage_probe", "artifacts": ["triage_probe_spec"]}
    assert live_meta(_test_cell(careops=care)) == care
    for meta in ({}, {"careops": {"live_check": ""}}, {"careops": "orientation.triage_probe"},
                 {"careops": {"artifacts": ["triage_probe_spec"]}}):
        assert live_meta(_test_cell(**meta)) is None, meta


def test_an_unknown_check_or_a_missing_artifact_fails_the_cell_with_its_reason() -> None:
    unknown = run_live_check(_test_cell(careops={"live_check": "no.such_check"}), {"cells": []}, {}, learner="ana")
    assert not unknown.passed and unknown.grade_id == "test_live"
    assert unknown.reason.startswith("NotGraded: the grader has no live check 'no.such_check' (known: ")
    known = sorted(live_checks())
    assert known and all(name in unknown.reason for name in known)
    care = {"live_check": known[0], "artifacts": ["never-written"]}
    missing = run_live_check(_test_cell(careops=care), {"cells": []}, {}, learner="ana")
    assert not missing.passed
    assert missing.reason == "ArtifactError: artifact never-written is missing from the notebook"
