"""`careops queue status|flower`: the queue's state per learner, and Flower answering for the queue."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import redirect_stdout

from careops.apps.queue import status_main
from careops.grading.queue import enqueue_submission
from careops.grading.queue.app import make_app
from careops.grading.queue.hosts import free_port


def test_status_lists_each_learner_of_the_assignment(queue_redis, orientation_course, orientation_source,
                                                     tmp_path) -> None:
    url = queue_redis.database(7)
    app = make_app(url)
    app.backend.client.flushdb()
    app.close()
    (tmp_path / "orientation.ipynb").write_text(__import__("json").dumps(orientation_source), encoding="utf-8")
    enqueue_submission(url, assignment="00-orientation", learner="ana", files=tmp_path / "orientation.ipynb",
                       course_dir=orientation_course.root)
    out = io.StringIO()
    with redirect_stdout(out):
        assert status_main(assignment="00-orientation", queue=url) == 0
    assert out.getvalue() == "00-orientation: 1 queued, 0 grading, 0 graded, 0 failed\n  ana: queued\n"


def test_flower_answers_for_the_queue(queue_redis) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "careops.cli", "queue", "flower", "--queue",
                             queue_redis.database(8), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=2) as answer:
                    assert answer.read() == b"OK"
                    break
            except OSError:
                assert proc.poll() is None, "flower exited"
                assert time.monotonic() < deadline, "flower did not answer within 60 s"
                time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
