"""`careops worker`: grade submissions from the queue on one Docker engine, N at once.

Start one per grading host (or per engine): ``careops worker --queue redis://COORDINATOR:6379/0 --engine
unix:///var/run/docker.sock --concurrency 2``. The worker prepares its engine first (the grader image: loaded from
``--images-from`` ENGINE when given, else used as it is there, or built offline when missing) and then runs until
Ctrl-C or SIGTERM; a task it had not finished goes back to the queue for another worker. With ``--kubernetes
NAMESPACE`` the sandboxes are Kubernetes Jobs in that namespace instead (the worker's kubeconfig says where).
"""
from __future__ import annotations

import os
from pathlib import Path

from careops.grading.queue import (
    DEFAULT_QUEUE,
    DEFAULT_REDELIVER_AFTER,
    QUEUE_ENV,
    run_worker,
)


def main(*, queue: str | None = None, engine: str | None = None, concurrency: int = 1,
         course_dir: Path | None = None, images_from: str | None = None, name: str | None = None,
         redeliver_after: float = DEFAULT_REDELIVER_AFTER, kubernetes: str | None = None) -> int:
    """Run a grading worker until it is stopped; its exit code."""
    return run_worker(queue=queue or os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE, engine_url=engine,
                      concurrency=concurrency, course_dir=course_dir, images_from=images_from, name=name,
                      redeliver_after=redeliver_after, kubernetes=kubernetes)
