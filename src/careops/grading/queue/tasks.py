"""The grading task, run by a worker: one submission, graded by the sandbox code on the worker's own engine.

The worker checks the request, loads the assignment from its own checkout of the course (and refuses to grade
when that differs from the coordinator's: same sources and grader, or the grades could differ), grades with
:func:`careops.grading.autograder.grade_submission` exactly as local grading does (sandboxes on the worker's
engine, or Kubernetes Jobs with ``careops worker --kubernetes``), and answers JSON text. It
writes nothing of the course: the gradebook and the journal are the coordinator's.
"""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path
from typing import Any

from careops.errors import CareOpsError
from careops.grading import intake
from careops.grading.autograder import AssignmentContext, Outcome, grade_submission
from careops.grading.course import Course, repo_root
from careops.grading.queue.messages import (
    GradeRequest,
    failure_to_json,
    outcome_to_json,
    policy_from,
)
from careops.grading.sandbox import SandboxFactory, SandboxPolicy, remove_leftovers

#: the app setting that names the worker's checkout of the course (careops worker --course-dir)
COURSE_SETTING = "careops_course_dir"
#: the app setting that names the Kubernetes namespace whose Jobs run the sandboxes (careops worker --kubernetes)
KUBERNETES_SETTING = "careops_kubernetes_namespace"

_contexts: dict[tuple[str, str], AssignmentContext] = {}


def assignment_context(course_dir: Path, assignment: str, version: str) -> AssignmentContext:
    """The assignment as this worker's checkout has it, loaded once per process (again when it changed)."""
    cache = (str(course_dir), assignment)
    ctx = _contexts.get(cache)
    if ctx is None or ctx.version != version:
        ctx = _contexts[cache] = AssignmentContext.load(Course(course_dir), assignment)
    return ctx


def worker_name(task: Any = None) -> str:
    """Which worker and engine graded: the Celery node name (or host) and DOCKER_HOST."""
    node = getattr(getattr(task, "request", None), "hostname", None) or socket.gethostname()
    return f"{node} on {os.environ.get('DOCKER_HOST') or 'the default engine'}"


def grade_request(text: object, *, course_dir: Path, worker: str = "", kubernetes: str | None = None) -> str:
    """Grade the request ``text`` (JSON) on this process's engine, or in Kubernetes Jobs of the namespace
    ``kubernetes``; answer JSON text (an outcome or a failure)."""

    try:
        request = GradeRequest.from_json(text)
    except CareOpsError as exc:
        return failure_to_json("?", "?", exc.message, worker=worker)
    try:
        ctx = assignment_context(course_dir, request.assignment, request.version)
        if ctx.version != request.version:
            return failure_to_json(request.learner, request.key, (
                f"this worker's checkout grades {request.assignment} as version {ctx.version}, the coordinator as "
                f"{request.version}: their source notebooks or grader code differ (update the worker's checkout "
                "to the coordinator's commit and restart it)"), worker=worker)
        sub = intake.Submission(request.learner, {}, notebooks=request.notebooks)
        policy = policy_from(request.policy)
        grade = _grade_in_jobs if kubernetes else _grade_on_engine
        return outcome_to_json(grade(sub, ctx, policy, request.key, kubernetes or ""), worker=worker)
    except CareOpsError as exc:
        return failure_to_json(request.learner, request.key, exc.message, worker=worker)
    except Exception as exc:  # noqa: BLE001 - any trouble becomes the answer: the coordinator records it as such
        return failure_to_json(request.learner, request.key, f"{type(exc).__name__}: {exc}", worker=worker)


#: this grading process's sandbox factory: (assignment, policy) -> factory. It keeps the next sandbox started
#: between tasks, as local grading does between submissions; one at a time (a new assignment closes the old one)
_factories: dict[tuple[str, SandboxPolicy], SandboxFactory] = {}


def sandbox_factory(assignment: str, policy: SandboxPolicy) -> SandboxFactory:
    """This process's factory for ``assignment`` under ``policy``, its spare sandbox already starting."""
    from careops import engine

    found = _factories.get((assignment, policy))
    if found is None:
        close_factories()
        client = engine.client()
        remove_leftovers(assignment, client=client)  # of graders that died here (their pid is gone)
        found = _factories[(assignment, policy)] = SandboxFactory(
            policy, assignment=assignment, session=uuid.uuid4().hex[:12], client=client, prestart=True)
    return found


def close_factories(*_: Any, **__: Any) -> None:
    """Remove the spare sandboxes of this process (when it ends, and before it grades another assignment)."""
    while _factories:
        _, factory = _factories.popitem()
        factory.close()
        remove_leftovers(factory.assignment, client=factory.client, session=factory.session)


def _grade_on_engine(sub: intake.Submission, ctx: AssignmentContext, policy: SandboxPolicy, key: str,
                     _: str) -> Outcome:
    return grade_submission(sub, ctx, sandbox_factory(ctx.assignment, policy), key)


def _grade_in_jobs(sub: intake.Submission, ctx: AssignmentContext, policy: SandboxPolicy, key: str,
                   namespace: str) -> Outcome:
    from careops.grading.queue.kubernetes_job import JobSandboxFactory, KubernetesJobs

    factory = JobSandboxFactory(policy, assignment=ctx.assignment, session=uuid.uuid4().hex[:12],
                                jobs=KubernetesJobs(namespace=namespace))
    return grade_submission(sub, ctx, factory, key)  # type: ignore[arg-type]


def _on_process_shutdown(**_: Any) -> None:
    close_factories()


def connect_signals() -> None:
    """Close this process's spare sandboxes when Celery ends it (called by make_app)."""
    from celery.signals import worker_process_shutdown

    worker_process_shutdown.connect(_on_process_shutdown, weak=False, dispatch_uid="careops-close-sandboxes")


def grade_task(task: Any, request: str) -> str:
    """The Celery task (registered by careops.grading.queue.app.make_app): see :func:`grade_request`."""
    course_dir = Path(task.app.conf.get(COURSE_SETTING) or repo_root())
    return grade_request(request, course_dir=course_dir, worker=worker_name(task),
                         kubernetes=task.app.conf.get(KUBERNETES_SETTING))
