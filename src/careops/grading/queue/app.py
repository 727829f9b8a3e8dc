"""The grading queue's Celery app: Redis 7 as broker and result store, JSON only, late acknowledgement.

Delivery is at least once, never at most once:

* ``task_acks_late``: a task is acknowledged when it has finished, not when a worker took it;
* ``task_reject_on_worker_lost``: the worker process running it died (``kill -9``, out of memory): the task goes
  back on the queue at once, for any worker;
* a whole worker host that dies leaves its task unacknowledged in Redis; after ``redeliver_after`` seconds (the
  Redis transport's visibility timeout) another worker puts it back on the queue. A task's hard time limit is
  always shorter than that, so a task still running is never handed out twice by this rule.

So a submission may be graded twice; the coordinator records it once (careops.grading.queue.coordinator).
Messages and results are JSON (``accept_content=["json"]``): nothing arrives as a pickle.
"""
from __future__ import annotations

from typing import Any

from careops.errors import CareOpsError

#: the environment variable that names the queue (``careops grade --queue``, ``careops worker --queue``)
QUEUE_ENV = "CAREOPS_QUEUE"
DEFAULT_QUEUE = "redis://127.0.0.1:6379/0"
TASK_NAME = "careops.grade_submission"
QUEUE_NAME = "careops-grading"
#: seconds after which the task of a worker that vanished (host down, kill -9 of the whole worker) is handed out again
DEFAULT_REDELIVER_AFTER = 1800.0
#: how long finished results stay in Redis: a coordinator restarted within this time picks them up
RESULT_SECONDS = 7 * 24 * 3600
START_QUEUE_FIX = ("start Redis: `make queue` (Debian's redis-server on 127.0.0.1:6379), or pass the URL of your "
                   "Redis with --queue redis://HOST:6379/0")


class QueueError(CareOpsError):
    """The grading queue cannot be used: no Redis answers, a URL that is not Redis, a worker that cannot start."""


def check_url(url: str) -> str:
    """``url`` if it names a Redis server (redis://, rediss://, unix://), else QueueError."""
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise QueueError(f"the grading queue must be a Redis URL: expected redis://HOST:PORT/DB, got {url!r}",
                         fix="pass --queue redis://127.0.0.1:6379/0 (make queue starts one on this machine)")
    return url


def shown(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")))


def ping(url: str, *, timeout: float = 3.0) -> None:
    """Raise QueueError with the fix when no Redis answers at ``url``."""
    import redis

    check_url(url)
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise QueueError(f"no Redis answered at {shown(url)}: {exc}", fix=START_QUEUE_FIX) from None
    finally:
        client.close()


def settings(url: str, *, redeliver_after: float = DEFAULT_REDELIVER_AFTER) -> dict[str, Any]:
    """The Celery settings of the grading queue (what the tests check)."""
    sweep = max(1, min(10, int(redeliver_after // 10) or 1))  # look for abandoned tasks often enough
    return {
        "broker_url": url,
        "result_backend": url,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,  # a task past its hard limit is a grader problem, recorded, not looped
        "worker_prefetch_multiplier": 1,  # a worker reserves only what it can start: the others get the rest
        "task_track_started": True,  # "grading" vs "queued" for the progress bar, the dashboard and Flower
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "result_expires": RESULT_SECONDS,
        "task_default_queue": QUEUE_NAME,
        "broker_transport_options": {"visibility_timeout": redeliver_after, "unacked_restore_interval": sweep,
                                  "unacked_restore_throttle": 1},
        "result_backend_transport_options": {"retry_policy": {"timeout": 10.0}},
        "broker_connection_retry_on_startup": True,
        "worker_redirect_stdouts": False,
        "enable_utc": True,
    }


def make_app(url: str, *, redeliver_after: float = DEFAULT_REDELIVER_AFTER) -> Any:
    """A Celery app on the Redis at ``url`` with the grading task registered (not set as Celery's current app)."""
    from celery import Celery

    from careops.grading.queue.tasks import connect_signals, grade_task

    connect_signals()
    app = Celery("careops-grading", set_as_current=False)
    app.conf.update(settings(check_url(url), redeliver_after=redeliver_after))
    app.task(name=TASK_NAME, bind=True, resultrepr_maxsize=120)(grade_task)
    return app
