"""careops.grading.queue.coordinator on real Redis: a task is sent once per submission, a restarted coordinator
takes the answers already stored, and a failed answer is sent again next run. The workers' side is played by
writing answers into the result store through Celery's backend, as a worker's task would."""
from __future__ import annotations

from typing import Any

import pytest

from careops.grading import intake
from careops.grading.autograder import AssignmentContext, Outcome
from careops.grading.course import GradingError
from careops.grading.queue.app import QUEUE_NAME, make_app
from careops.grading.queue.coordinator import QueueGraders, grade_request_for, queue_states
from careops.grading.queue.messages import failure_to_json, outcome_to_json
from careops.grading.sandbox import SandboxPolicy

ASSIGNMENT = "00-orientation"
POLICY = SandboxPolicy(cell_timeout=6, wall_time=60)


@pytest.fixture
def queue(queue_redis) -> Any:
    url = queue_redis.database(5)
    app = make_app(url)
    app.backend.client.flushdb()
    yield url, app
    app.backend.client.flushdb()
    app.close()


def work(course: Any, notebook: dict, *learners: str) -> tuple[AssignmentContext, list]:
    ctx = AssignmentContext.load(course, ASSIGNMENT)
    subs = [intake.Submission(who, {}, digest=who, notebooks={"orientation": notebook}) for who in learners]
    return ctx, [(s, f"{i:024x}") for i, s in enumerate(subs, start=1)]


def test_each_submission_is_sent_once_even_when_a_restarted_coordinator_asks_again(
        queue, orientation_course, orientation_release) -> None:
    url, app = queue
    ctx, batch = work(orientation_course, orientation_release, "ana", "bo")
    for _ in range(2):  # the second coordinator finds the markers: nothing is sent twice
        graders = QueueGraders(url)
        for sub, key in batch:
            graders.send_or_resume(app, grade_request_for(sub, key, ctx, POLICY), limit=60)
    assert app.backend.client.llen(QUEUE_NAME) == 2
    assert queue_states(url, ASSIGNMENT) == {"ana": "queued", "bo": "queued"}
    QueueGraders(url, reuse_results=False).send_or_resume(  # --regrade: sent again
        app, grade_request_for(*batch[0], ctx, POLICY), limit=60)
    assert app.backend.client.llen(QUEUE_NAME) == 3


def test_stored_answers_are_taken_and_a_failure_is_forgotten_so_the_next_run_sends_it_again(
        queue, orientation_course, orientation_release) -> None:
    url, app = queue
    ctx, batch = work(orientation_course, orientation_release, "ana", "bo")
    (ana, ana_key), (bo, bo_key) = batch
    ana_task = grade_request_for(ana, ana_key, ctx, POLICY).task_id
    bo_task = grade_request_for(bo, bo_key, ctx, POLICY).task_id
    # ana was graded while the previous coordinator was down: her answer waits in the result store
    app.backend.store_result(ana_task, outcome_to_json(Outcome("ana", ana_key, "graded",
                                                               notebooks={"orientation": orientation_release}),
                                                       worker="w1 on unix:///one.sock"), "SUCCESS")
    graders = QueueGraders(url, poll=0.05)
    with graders.grading(ctx, POLICY, batch) as results:
        assert app.backend.client.llen(QUEUE_NAME) == 1  # only bo's task was sent
        app.backend.store_result(bo_task, failure_to_json("bo", bo_key, "no grader image", worker="w2"), "SUCCESS")
        got = {sub.learner: result for sub, result in results}
    assert isinstance(got["ana"], Outcome) and got["ana"].status == "graded"
    assert isinstance(got["bo"], GradingError) and "no grader image" in got["bo"].message
    assert graders.counts.resumed == 1
    assert graders.graded_by == {"ana": "w1 on unix:///one.sock", "bo": "w2"}
    assert queue_states(url, ASSIGNMENT) == {"ana": "graded"}  # bo's failure is forgotten: the next run sends it
    QueueGraders(url).send_or_resume(app, grade_request_for(bo, bo_key, ctx, POLICY), limit=60)
    assert app.backend.client.llen(QUEUE_NAME) == 2 and queue_states(url, ASSIGNMENT)["bo"] == "queued"


def test_a_submission_too_large_to_travel_is_its_own_grader_problem_not_the_batchs(
        queue, orientation_course, orientation_release, monkeypatch) -> None:
    from careops.grading.queue import messages

    url, app = queue
    ctx, batch = work(orientation_course, orientation_release, "ana")
    monkeypatch.setattr(messages, "MAX_REQUEST_BYTES", 1000)  # the orientation notebook is larger than this
    with QueueGraders(url).grading(ctx, POLICY, batch) as results:
        ((sub, got),) = list(results)
    assert sub.learner == "ana" and isinstance(got, GradingError) and "over the 0 MiB limit" in got.message
    assert app.backend.client.llen(QUEUE_NAME) == 0
