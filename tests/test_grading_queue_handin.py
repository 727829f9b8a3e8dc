"""careops.grading.queue.handin: a hand-in is graded on arrival by a worker; the instructor's batch later records
that answer without grading it again, and a rejected hand-in is never sent."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import builders as B  # tests/fixtures/submissions/builders.py (see conftest)

from careops.grading.autograder import grade_batch, grading_dir
from careops.grading.queue import QueueGraders, enqueue_submission, hand_in_state
from careops.grading.queue.app import QUEUE_NAME, make_app
from careops.grading.queue.handin import hand_in_files
from careops.grading.queue.hosts import WorkerProcess
from careops.grading.sandbox import SandboxPolicy

ASSIGNMENT = "00-orientation"
POLICY = SandboxPolicy(cell_timeout=6, wall_time=60)


def test_a_folder_a_file_or_a_mapping_names_the_notebooks(tmp_path: Path) -> None:
    (tmp_path / "orientation.ipynb").write_text("{}")
    assert hand_in_files(tmp_path, ["orientation"]) == {"orientation": tmp_path / "orientation.ipynb"}
    assert hand_in_files(tmp_path / "orientation.ipynb", ["orientation"]) == {
        "orientation": tmp_path / "orientation.ipynb"}
    assert hand_in_files({"a": tmp_path / "x.ipynb"}, ["a", "b"]) == {"a": tmp_path / "x.ipynb"}


@pytest.mark.docker
@pytest.mark.slow
def test_a_hand_in_graded_on_arrival_is_recorded_by_the_next_batch_without_grading_it_again(
        tmp_path: Path, queue_redis, orientation_course, orientation_source, second_engine) -> None:
    url = queue_redis.database(6)
    app = make_app(url)
    app.backend.client.flushdb()
    inbound = tmp_path / "exchange" / "careops-labs" / "inbound"
    ana = inbound / f"ana+{ASSIGNMENT}+2026-12-01 09:00:00.000000 UTC"
    ana.mkdir(parents=True)
    B.save(orientation_source, ana / "orientation.ipynb")
    empty = inbound / f"bo+{ASSIGNMENT}+2026-12-01 09:01:00.000000 UTC"
    empty.mkdir()
    (empty / "orientation.ipynb").write_text("", encoding="utf-8")

    rejected = enqueue_submission(url, assignment=ASSIGNMENT, learner="bo", files=empty,
                                  course_dir=orientation_course.root, policy=POLICY)
    assert (rejected.status, rejected.task_id) == ("rejected", "")
    assert "is empty" in rejected.reason and hand_in_state(url, rejected) == "rejected"
    ticket = enqueue_submission(url, assignment=ASSIGNMENT, learner="ana", files=ana,
                                course_dir=orientation_course.root, policy=POLICY)
    assert ticket.status == "queued" and hand_in_state(url, ticket) == "queued"
    assert app.backend.client.llen(QUEUE_NAME) == 1
    worker = WorkerProcess(url, engine_url=second_engine.url, images_from=second_engine.images_from,
                           name="arrival@engine2", log=tmp_path / "worker.log",
                           course_dir=orientation_course.root).start()
    try:
        worker.wait_ready()
        deadline = time.monotonic() + 120
        while hand_in_state(url, ticket) != "graded":
            assert time.monotonic() < deadline, worker.log.read_text()[-2000:]
            time.sleep(0.2)
    finally:
        worker.stop()
    # the instructor's batch, with no worker running: ana's answer is waiting, bo is rejected without one
    graders = QueueGraders(url)
    summary = grade_batch(orientation_course.root, ASSIGNMENT, tmp_path / "exchange", policy=POLICY,
                          progress=False, feedback=False, graders=graders)
    assert graders.counts.resumed == 1 and app.backend.client.llen(QUEUE_NAME) == 0
    rows = {r.learner: r for r in summary.rows}
    assert (rows["ana"].status, rows["ana"].score) == ("graded", 8.0)
    assert rows["bo"].status == "rejected"
    assert "ana,graded,8,8,2,2,2,2," in (grading_dir(orientation_course, ASSIGNMENT) / "grades.csv").read_text()
    app.close()
