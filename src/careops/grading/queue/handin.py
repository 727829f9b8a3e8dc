"""Grading on arrival: a hand-in enqueues its own grading task at once (the workshop hub calls this).

Call :func:`enqueue_submission` when a learner's hand-in is stored (the hub stores it as
``<learner>+<assignment>+<server time>/`` in its exchange). It checks the files as the batch grader would and
sends one task to the queue; a worker grades it right away. Nothing is recorded then: the gradebook is written
only by the coordinator. When the instructor runs ``careops grade ASSIGNMENT --queue URL --submissions EXCHANGE``
(or ``make grade ... QUEUE=URL``), the batch computes the same task id for the same files and takes the answer
already waiting in the result store, so hand-ins graded on arrival are recorded in seconds, and a hand-in that
arrives while grading runs is picked up by the next run.

    from careops.grading.queue import enqueue_submission, hand_in_state
    ticket = enqueue_submission("redis://127.0.0.1:6379/0", assignment="00-orientation", learner="ana",
                                files=Path("/srv/exchange/careops-labs/inbound/ana+00-orientation+2026-...")),
    hand_in_state("redis://127.0.0.1:6379/0", ticket)  # "queued", "grading", "graded" or "failed"

A rejected hand-in (empty, not a notebook, another assignment) is not sent: the ticket says why, and the batch
records it as rejected without a worker.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from careops.grading import intake
from careops.grading.autograder import (
    AssignmentContext,
    check_submission,
    submission_key,
)
from careops.grading.course import Course, repo_root
from careops.grading.queue.app import make_app, ping
from careops.grading.queue.coordinator import (
    WAITING_STATES,
    QueueGraders,
    grade_request_for,
)
from careops.grading.queue.messages import hard_time_limit
from careops.grading.sandbox import SandboxPolicy


@dataclass(frozen=True)
class HandInTicket:
    """What enqueue_submission did with one hand-in."""

    learner: str
    assignment: str
    key: str  # the journal key the batch will record it under
    task_id: str  # "" when it was not sent
    status: str  # queued | rejected
    reason: str = ""


def hand_in_files(files: Mapping[str, Path] | Path, notebook_names: list[str]) -> dict[str, Path]:
    """Notebook name -> file, from a mapping, a folder of notebooks, or one notebook file."""
    if isinstance(files, Mapping):
        return {str(k): Path(v) for k, v in files.items()}
    path = Path(files)
    if path.is_dir():
        return {p.stem: p for p in sorted(path.glob("*.ipynb"))}
    return {notebook_names[0] if len(notebook_names) == 1 else path.stem: path}


def enqueue_submission(queue: str, *, assignment: str, learner: str, files: Mapping[str, Path] | Path,
                       course_dir: Path | None = None, policy: SandboxPolicy | None = None) -> HandInTicket:
    """Send one learner's hand-in to the grading queue now (see the module doc); returns its ticket."""
    ping(queue)
    course = Course(Path(course_dir or repo_root()).resolve())
    ctx = AssignmentContext.load(course, assignment)
    sub = intake.Submission(intake.learner_id(learner), hand_in_files(files, list(ctx.sources)))
    sub = check_submission(intake.finish(sub, list(ctx.sources)), ctx)
    key = submission_key(sub, ctx)
    if sub.problem:
        return HandInTicket(sub.learner, assignment, key, "", "rejected", sub.problem)
    policy = policy or SandboxPolicy()
    request = grade_request_for(sub, key, ctx, policy)
    app = make_app(queue)
    try:
        QueueGraders(queue).send_or_resume(app, request, limit=hard_time_limit(policy, len(ctx.sources)))
    finally:
        app.close()
    return HandInTicket(sub.learner, assignment, key, request.task_id, "queued")


def hand_in_state(queue: str, ticket: HandInTicket) -> str:
    """Where a ticket's grading is: queued, grading, graded or failed (rejected tickets stay rejected)."""
    if not ticket.task_id:
        return ticket.status
    app = make_app(queue)
    try:
        meta = app.backend.get_task_meta(ticket.task_id, cache=False)
    finally:
        app.close()
    state = meta.get("status", "PENDING")
    if state in WAITING_STATES:
        return WAITING_STATES[state]
    if state != "SUCCESS":
        return "failed"
    result = meta.get("result")
    try:
        data = json.loads(result) if isinstance(result, str) else {}
    except ValueError:
        return "failed"
    return "failed" if not isinstance(data, dict) or "error" in data else "graded"
