"""The coordinator's side of the queue: send each submission as one task, take the answers back, one by one.

:class:`QueueGraders` plugs into :func:`careops.grading.autograder.grade_batch` where the local pool would
(``careops grade --queue``): the batch still collects and checks the submissions, and it alone writes the
gradebook and the journal, keyed by submission. A task's id is fixed by the learner and the journal key, so:

* a coordinator killed mid-batch and started again finds every answer already in the result store (Redis keeps
  them a week) and records those at once; tasks still queued or running are waited for, not sent again;
* a task delivered twice (its worker died, the queue handed it out again) answers under the same id: the batch
  records one answer per submission, and the journal key makes a later run skip it.
"""
from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from careops.grading import intake
from careops.grading.autograder import AssignmentContext, Graded
from careops.grading.course import GradingError
from careops.grading.queue.app import (
    DEFAULT_REDELIVER_AFTER,
    QUEUE_NAME,
    RESULT_SECONDS,
    TASK_NAME,
    make_app,
    ping,
    shown,
)
from careops.grading.queue.messages import (
    GradeRequest,
    answer_from_json,
    hard_time_limit,
    policy_fields,
)
from careops.grading.sandbox import SandboxPolicy

#: the marker a coordinator leaves in Redis when it sends a task (so a restarted one does not send it again)
SENT_PREFIX = "careops-sent-"
#: Celery's states, as the progress line and the dashboard name them
WAITING_STATES = {"PENDING": "queued", "RECEIVED": "queued", "STARTED": "grading", "RETRY": "queued"}


def grade_request_for(sub: intake.Submission, key: str, ctx: AssignmentContext,
                      policy: SandboxPolicy) -> GradeRequest:
    """The task of one checked, accepted submission."""
    return GradeRequest(ctx.assignment, sub.learner, key, ctx.version, dict(sub.notebooks), policy_fields(policy))


@dataclass
class QueueCounts:
    """Where the batch's tasks are: what the progress line says."""

    queued: int = 0
    grading: int = 0
    graded: int = 0
    resumed: int = 0  # answers a previous (killed) coordinator's tasks had already left in the result store
    workers: dict[str, int] = field(default_factory=dict)  # answers per worker

    def line(self) -> str:
        parts = [f"{self.grading} grading", f"{self.queued} queued"]
        if self.workers:
            parts.append(f"{len(self.workers)} worker(s)")
        return ", ".join(parts)


class QueueGraders:
    """Grades on Celery workers through the Redis at ``url`` (see the module doc).

    ``reuse_results=False`` (``--regrade``) forgets answers a previous run left and grades everything again.
    ``poll`` is the seconds between looks at the result store. After a batch, ``graded_by`` maps each learner to
    the worker (node and engine) that graded it and ``counts`` says how many answers were resumed.
    """

    def __init__(self, url: str, *, reuse_results: bool = True, poll: float = 0.25,
                 redeliver_after: float = DEFAULT_REDELIVER_AFTER) -> None:
        self.url = url
        self.reuse_results = reuse_results
        self.poll = poll
        self.redeliver_after = redeliver_after
        self.counts = QueueCounts()
        self.graded_by: dict[str, str] = {}

    def news(self) -> str:
        return self.counts.line()

    @contextmanager
    def grading(self, ctx: AssignmentContext, policy: SandboxPolicy, work: list[tuple[intake.Submission, str]]
                ) -> Iterator[Iterator[Graded]]:
        ping(self.url)
        app = make_app(self.url, redeliver_after=self.redeliver_after)
        try:
            if work and not app.control.ping(timeout=1.0):
                print(f"careops: no worker answers on {shown(self.url)} yet; the submissions wait in the queue "
                      f"until one starts: careops worker --queue {shown(self.url)}", file=sys.stderr, flush=True)
            pending: dict[str, tuple[intake.Submission, GradeRequest]] = {}
            unsent: list[Graded] = []
            for sub, key in work:
                request = grade_request_for(sub, key, ctx, policy)
                try:
                    self.send_or_resume(app, request, limit=hard_time_limit(policy, len(ctx.sources)))
                except GradingError as exc:  # too large to travel: that submission's problem, not the batch's
                    unsent.append((sub, exc))
                    continue
                pending[request.task_id] = (sub, request)
            yield itertools.chain(unsent, self._answers(app, pending))
        finally:
            app.close()

    # -- sending ---------------------------------------------------------------------------
    def send_or_resume(self, app: Any, request: GradeRequest, *, limit: float) -> None:
        backend = app.backend
        marker = SENT_PREFIX + request.task_id
        if self.reuse_results:
            meta = backend.get_task_meta(request.task_id, cache=False)
            state = meta.get("status", "PENDING")
            sent = backend.client.get(marker)
            if state == "STARTED" or (state == "SUCCESS" and _graded(meta.get("result"), request)):
                self.counts.resumed += state == "SUCCESS"
                return  # answered already, or a worker has it: do not send it again
            stale = time.time() - float(sent or 0) > self.redeliver_after + limit
            if sent is not None and state not in ("SUCCESS", "FAILURE") and not stale:
                return  # queued by the previous coordinator, still waiting for a worker
        backend.forget(request.task_id)  # a failed or stale answer must not answer the task sent now
        text = request.to_json()  # raises for an oversized submission before anything is sent
        backend.client.set(marker, str(time.time()), ex=RESULT_SECONDS)
        app.send_task(TASK_NAME, args=[text], task_id=request.task_id, queue=QUEUE_NAME,
                      time_limit=min(limit, self.redeliver_after - 1))

    # -- receiving -------------------------------------------------------------------------
    def _answers(self, app: Any, pending: dict[str, tuple[intake.Submission, GradeRequest]]) -> Iterator[Graded]:
        backend = app.backend
        while pending:
            ids = list(pending)
            metas = backend.mget([backend.get_key_for_task(t) for t in ids])
            counts = {"queued": 0, "grading": 0}
            finished = []
            for task_id, raw in zip(ids, metas):
                meta = backend.decode_result(raw) if raw else {"status": "PENDING"}
                state = meta.get("status", "PENDING")
                if state in ("SUCCESS", "FAILURE", "REVOKED"):
                    finished.append((task_id, state, meta.get("result")))
                else:
                    counts[WAITING_STATES.get(state, "queued")] += 1
            self.counts.queued, self.counts.grading = counts["queued"], counts["grading"]
            for task_id, state, result in finished:
                sub, request = pending.pop(task_id)
                self.counts.graded += 1
                backend.client.delete(SENT_PREFIX + task_id)
                got = self._outcome(request, state, result)
                if isinstance(got, Exception):
                    backend.forget(task_id)  # a grader problem: the next run sends it again
                yield sub, got
            if pending and not finished:
                time.sleep(self.poll)

    def _outcome(self, request: GradeRequest, state: str, result: object) -> Any:
        if state != "SUCCESS":
            what = f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else repr(result)[:300]
            return GradingError(f"the queue's worker failed on {request.learner} ({state}): {what}",
                                fix="read the worker's log; this submission is graded again on the next run")
        try:
            answer = answer_from_json(result, request)
        except GradingError as exc:
            return exc
        self.graded_by[request.learner] = answer.worker
        self.counts.workers[answer.worker] = self.counts.workers.get(answer.worker, 0) + 1
        if answer.outcome is None:
            return GradingError(f"the worker {answer.worker} could not grade {request.learner}: {answer.error}",
                                fix="fix the worker (its message says how); the next run grades it again")
        return answer.outcome


def _graded(result: object, request: GradeRequest) -> bool:
    """A stored answer that holds a valid Outcome (not a worker's failure, which is worth another try)."""
    try:
        return answer_from_json(result, request).outcome is not None
    except GradingError:
        return False


def queue_states(url: str, assignment: str) -> dict[str, str]:
    """Learner -> queued | grading | graded | failed, for the tasks of ``assignment`` Redis knows (the dashboard's
    view; answers stay a week). A learner with several hand-ins shows the latest state seen."""
    ping(url)
    app = make_app(url)
    prefix = f"careops-grade-{assignment}-"
    states: dict[str, str] = {}
    try:
        backend = app.backend
        meta_prefix = backend.get_key_for_task(prefix).decode()
        for raw in backend.client.scan_iter(match=f"{SENT_PREFIX}{prefix}*", count=500):
            learner = raw.decode()[len(SENT_PREFIX + prefix):].rsplit("-", 1)[0]
            states[learner] = "queued"
        for raw in backend.client.scan_iter(match=f"{meta_prefix}*", count=500):
            task_id = raw.decode()[len(meta_prefix) - len(prefix):]
            learner = task_id[len(prefix):].rsplit("-", 1)[0]
            meta = backend.decode_result(backend.client.get(raw) or b"{}")
            state = meta.get("status", "PENDING")
            result = meta.get("result")
            if state in WAITING_STATES:
                states[learner] = WAITING_STATES[state]
            elif state == "SUCCESS" and isinstance(result, str) and '"error":' not in result[:2000]:
                states[learner] = "graded"
            else:
                states[learner] = "failed"
    finally:
        app.close()
    return states
