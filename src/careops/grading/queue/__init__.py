"""Grading past one machine: Celery workers on several Docker engines, Redis as broker and result store.

``careops grade ASSIGNMENT --queue redis://HOST:6379/0`` collects and checks the submissions as local grading
does, sends each accepted one as one task (:mod:`.coordinator`), and records every answer in the gradebook and the
journal itself, once per submission. ``careops worker --queue URL --engine ENGINE --concurrency N`` grades tasks
with the sandbox code of local grading on its own engine (:mod:`.worker`, :mod:`.tasks`). What travels is checked
JSON (:mod:`.messages`); delivery settings are in :mod:`.app`. A hand-in can start its own grading on arrival
(:func:`enqueue_submission`, :mod:`.handin`). A class past a few Docker hosts grades in Kubernetes Jobs
(:mod:`.kubernetes_job`). :mod:`.hosts` runs Redis, a second engine and workers on one machine (tests, bench).
"""
from careops.grading.queue.app import (
    DEFAULT_QUEUE,
    DEFAULT_REDELIVER_AFTER,
    QUEUE_ENV,
    QueueError,
    make_app,
    ping,
)
from careops.grading.queue.coordinator import QueueGraders, queue_states
from careops.grading.queue.handin import HandInTicket, enqueue_submission, hand_in_state
from careops.grading.queue.messages import GradeRequest
from careops.grading.queue.worker import run_worker

__all__ = [
    "DEFAULT_QUEUE",
    "DEFAULT_REDELIVER_AFTER",
    "QUEUE_ENV",
    "GradeRequest",
    "HandInTicket",
    "QueueError",
    "QueueGraders",
    "enqueue_submission",
    "hand_in_state",
    "make_app",
    "ping",
    "queue_states",
    "run_worker",
]
