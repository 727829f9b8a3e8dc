"""`careops queue status|flower`: what the grading queue holds, and Flower's view of its workers.

``status ASSIGNMENT`` prints each learner's grading state (queued, grading, graded, failed) as Redis holds it;
``flower`` starts Flower (Celery's monitor) on 127.0.0.1 for the queue's workers and tasks.
"""
from __future__ import annotations

import os
from collections import Counter

from careops.grading.queue import DEFAULT_QUEUE, QUEUE_ENV, make_app, ping, queue_states


def _url(queue: str | None) -> str:
    return queue or os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE


def status_main(*, assignment: str, queue: str | None = None) -> int:
    """Print the queue's state of every learner of ``assignment``."""
    states = queue_states(_url(queue), assignment)
    counts = Counter(states.values())
    print(f"{assignment}: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("queued", "grading", "graded", "failed")))
    for learner, state in sorted(states.items()):
        print(f"  {learner}: {state}")
    return 0


def flower_main(*, queue: str | None = None, port: int = 5555) -> int:
    """Run Flower on 127.0.0.1:``port`` until Ctrl-C."""
    url = _url(queue)
    ping(url)
    app = make_app(url)
    app.start(["flower", "--address=127.0.0.1", f"--port={port}"])
    return 0
