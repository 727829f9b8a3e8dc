"""careops.grading.queue.messages: requests and answers are checked JSON of bounded size; nothing else passes."""
from __future__ import annotations

import json
from typing import Any

import pytest

from careops.grading.autograder import Outcome
from careops.grading.course import GradingError
from careops.grading.queue.messages import (
    MAX_RESULT_BYTES,
    GradeRequest,
    answer_from_json,
    failure_to_json,
    hard_time_limit,
    outcome_to_json,
    policy_fields,
    policy_from,
)
from careops.grading.sandbox import SandboxPolicy
from careops.grading.trusted import TestOutcome as CellOutcome
from careops.lab.policy import Limits

NB = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
      "cells": [{"cell_type": "code", "source": "x = 1\n", "metadata": {}, "outputs": [], "execution_count": None}]}


def request(**changes: Any) -> GradeRequest:
    fields = dict(assignment="00-orientation", learner="ana", key="ab" * 12, version="cd" * 8,
                  notebooks={"orientation": NB}, policy=policy_fields(SandboxPolicy(cell_timeout=6, wall_time=60)))
    return GradeRequest(**{**fields, **changes})


def test_a_request_round_trips_with_its_limits_and_a_task_id_fixed_by_learner_and_key() -> None:
    req = request()
    back = GradeRequest.from_json(req.to_json())
    assert back == req
    assert back.task_id == f"careops-grade-00-orientation-ana-{'ab' * 12}"
    assert request(learner="bo").task_id != req.task_id  # two learners may hand in the same file
    policy = policy_from(back.policy)
    assert (policy.cell_timeout, policy.wall_time, policy.limits) == (6.0, 60.0, SandboxPolicy().limits)


@pytest.mark.parametrize("bad", [
    {"learner": "../etc"}, {"key": "not-hex"}, {"notebooks": {}}, {"notebooks": {"orientation": {"cells": 3}}},
    {"policy": {"cell_timeout": "6"}}, {"policy": {"privileged": True}},
    {"policy": {**policy_fields(SandboxPolicy()), "limits": {"memory": 2**40, "cpus": 1.0, "pids": 64}}},
])
def test_a_request_that_is_not_what_a_coordinator_sends_is_refused(bad: dict) -> None:
    data = {"format": 1, **json.loads(request().to_json()), **bad}
    with pytest.raises(Exception) as err:
        GradeRequest.from_json(json.dumps(data))
    assert "careops" in type(err.value).__module__  # a CareOpsError with the fix, never a crash


def test_json_only_a_pickle_or_another_format_is_not_a_request() -> None:
    import pickle

    with pytest.raises(GradingError, match="JSON text"):
        GradeRequest.from_json(pickle.dumps({"format": 1}))
    with pytest.raises(GradingError, match="format"):
        GradeRequest.from_json(json.dumps({"format": 99}))


def test_an_outcome_round_trips_with_its_notebooks_reasons_and_tests() -> None:
    req = request()
    out = Outcome("ana", req.key, "incomplete", reasons=["cell 3 did not finish within 6 s (interrupted)"],
                  notes=["edited test cell x (restored)"], notebooks={"orientation": NB},
                  tests={"test_x": CellOutcome("test_x", False, reason="wrong")}, seconds=1.5)
    answer = answer_from_json(outcome_to_json(out, worker="w1 on unix:///e.sock"), req)
    assert answer.worker == "w1 on unix:///e.sock" and answer.error == ""
    got = answer.outcome
    assert (got.status, got.reasons, got.notes, got.notebooks, got.seconds) == (
        out.status, out.reasons, out.notes, out.notebooks, out.seconds)
    assert got.tests["test_x"].passed is False and got.tests["test_x"].reason == "wrong"


def test_an_answer_for_another_submission_or_with_an_unknown_notebook_or_status_is_refused() -> None:
    req = request()
    out = Outcome("ana", req.key, "graded", notebooks={"orientation": NB})
    with pytest.raises(GradingError, match="expected the answer for bo"):
        answer_from_json(outcome_to_json(out), request(learner="bo"))
    out.notebooks = {"other": NB}
    with pytest.raises(GradingError, match="notebooks"):
        answer_from_json(outcome_to_json(out), req)
    out.notebooks, out.status = {"orientation": NB}, "rejected"
    with pytest.raises(GradingError, match="status"):
        answer_from_json(outcome_to_json(out), req)


def test_sizes_are_checked_before_parsing_and_a_worker_never_answers_more_than_the_limit() -> None:
    req = request()
    with pytest.raises(GradingError, match="over the queue's 32 MiB"):
        answer_from_json(" " * (MAX_RESULT_BYTES + 1), req)
    big = {"nbformat": 4, "metadata": {}, "cells": [{"cell_type": "markdown", "source": "x" * MAX_RESULT_BYTES}]}
    text = outcome_to_json(Outcome("ana", req.key, "graded", notebooks={"orientation": big}))
    answer = answer_from_json(text, req)
    assert answer.outcome is None and "over the queue's 32 MiB" in answer.error


def test_a_workers_failure_is_an_answer_with_its_reason() -> None:
    req = request()
    answer = answer_from_json(failure_to_json("ana", req.key, "the grading image is missing", worker="w2"), req)
    assert answer.outcome is None and answer.error == "the grading image is missing" and answer.worker == "w2"


def test_the_hard_time_limit_covers_every_notebooks_start_and_wall_time() -> None:
    policy = SandboxPolicy(wall_time=100, start_timeout=20, limits=Limits(memory=256 * 1024**2))
    assert hard_time_limit(policy, 2) == 2 * 120 + 60
    assert hard_time_limit(policy, 0) == hard_time_limit(policy, 1)
