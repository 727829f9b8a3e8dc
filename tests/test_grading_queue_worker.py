"""careops.grading.queue.worker: a worker's engine gets the course images (loaded when they differ), the sandboxes
of graders that died there are reclaimed, and a worker that cannot start says why."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import docker
import pytest

from careops.grading.queue import QueueError, run_worker
from careops.grading.queue.hosts import free_port
from careops.grading.queue.worker import course_images, ensure_course_images, image_id, reclaim_leftovers
from careops.images.catalog import GRADER_IMAGE

LEAK = """
import docker
from careops.lab import labels as L
docker.DockerClient(base_url={url!r}).containers.create("careops/grader:latest", ["true"],
    labels={{**L.lab_labels("grade-leak-test", "grader", "s-leak"), L.ROLE: "sandbox"}})
"""


@pytest.mark.docker
def test_the_second_engine_gets_every_course_image_the_first_has(second_engine) -> None:
    first = docker.DockerClient(base_url=second_engine.images_from)
    second = second_engine.client()
    try:
        # (loads only what changed on the first engine since the session loaded it: other builds may run here)
        grader = ensure_course_images(second, images_from=second_engine.images_from, progress=False)
        assert grader == image_id(second, GRADER_IMAGE) == image_id(first, GRADER_IMAGE)
        assert {t: i for t, i in course_images(first).items() if i} == {
            t: i for t, i in course_images(second).items() if i}
    finally:
        first.close()
        second.close()


@pytest.mark.docker
def test_the_sandbox_of_a_grader_that_died_is_reclaimed(second_engine) -> None:
    subprocess.run([sys.executable, "-c", LEAK.format(url=second_engine.url)], check=True)  # its creator has ended
    client = second_engine.client()
    try:
        assert reclaim_leftovers(client) >= 1
        assert client.containers.list(all=True, filters={"label": "org.careops.lab=grade-leak-test"}) == []
    finally:
        client.close()


def test_a_worker_without_a_process_or_a_queue_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(QueueError, match="at least one grading process"):
        run_worker(queue="redis://127.0.0.1:6379/0", concurrency=0)
    with pytest.raises(QueueError, match="no Redis answered") as err:
        run_worker(queue=f"redis://127.0.0.1:{free_port()}/0")
    assert "make queue" in (err.value.fix or "")


def test_a_worker_needs_the_grader_and_the_labs_images_not_workshop_modes() -> None:
    from careops.grading.queue.worker import GRADING_IMAGES
    from careops.images.catalog import LAB_IMAGE, REDIS_IMAGE

    tags = {spec.tag for spec in GRADING_IMAGES}
    assert {GRADER_IMAGE, LAB_IMAGE} <= tags
    assert REDIS_IMAGE not in tags and not any("hub" in t or "learner" in t for t in tags)
