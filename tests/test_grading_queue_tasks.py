"""careops.grading.queue.tasks: a worker grades one request with local grading's code, or says why it cannot."""
from __future__ import annotations

import json
from typing import Any

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.autograder import AssignmentContext
from careops.grading.queue.messages import GradeRequest, answer_from_json, policy_fields
from careops.grading.queue.tasks import close_factories, grade_request
from careops.grading.sandbox import SandboxPolicy

ASSIGNMENT = "00-orientation"


def request_for(course: Any, notebook: dict, *, version: str | None = None) -> GradeRequest:
    ctx = AssignmentContext.load(course, ASSIGNMENT)
    return GradeRequest(ASSIGNMENT, "ana", "0123456789abcdef01234567", version or ctx.version,
                        {"orientation": notebook}, policy_fields(SandboxPolicy(cell_timeout=6, wall_time=60)))


@pytest.mark.docker
def test_a_request_is_graded_in_a_sandbox_on_this_engine(orientation_course, orientation_source) -> None:
    import os

    from careops import engine
    from careops.grading.sandbox import lab_name
    from careops.lab import labels as L
    from careops.polling import eventually

    def ours() -> list:  # this process's sandboxes (other graders may run on this engine meanwhile)
        return engine.client().containers.list(all=True, filters={"label": [
            f"{L.LAB}={lab_name(ASSIGNMENT)}", f"{L.CREATOR_PID}={os.getpid()}"]})

    req = request_for(orientation_course, orientation_source)
    try:
        answer = answer_from_json(grade_request(req.to_json(), course_dir=orientation_course.root, worker="w"), req)
        eventually(ours, until=lambda found: len(found) == 1, timeout=60, what="the next task's sandbox, started")
    finally:
        close_factories()  # as when the grading process ends
    assert ours() == []
    assert answer.error == "" and answer.outcome is not None
    assert answer.outcome.status == "graded" and all(t.passed for t in answer.outcome.tests.values())
    assert set(answer.outcome.tests) == {"test_is_synthetic", "test_triage_probe_spec", "test_triage_probe_running",
                                         "test_leaked_names"}


def test_a_worker_whose_checkout_differs_from_the_coordinators_refuses_to_grade(
        orientation_course, orientation_release) -> None:
    req = request_for(orientation_course, orientation_release, version="f" * 16)
    answer = answer_from_json(grade_request(req.to_json(), course_dir=orientation_course.root), req)
    assert answer.outcome is None
    assert "their source notebooks or grader code differ" in answer.error and "f" * 16 in answer.error


def test_a_broken_request_is_answered_with_the_reason_not_an_exception(orientation_course) -> None:
    text = grade_request(json.dumps({"format": 1, "learner": "ana"}), course_dir=orientation_course.root)
    assert "a queue message is not valid" in json.loads(text)["error"]
    assert B.ANSWERS  # the builders are importable here (the conftest puts them on the path)
