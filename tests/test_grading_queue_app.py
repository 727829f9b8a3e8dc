"""careops.grading.queue.app: the delivery settings, Redis URLs and the clear error when no Redis answers."""
from __future__ import annotations

import pytest

from careops.grading.queue.app import (
    QUEUE_NAME,
    TASK_NAME,
    QueueError,
    check_url,
    make_app,
    ping,
    settings,
)


def test_a_task_is_acknowledged_late_put_back_when_its_worker_dies_and_travels_as_json_only() -> None:
    conf = settings("redis://127.0.0.1:6379/0", redeliver_after=600)
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["accept_content"] == conf["result_accept_content"] == ["json"]
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] == 600
    assert conf["broker_transport_options"]["unacked_restore_interval"] <= 10


def test_the_app_refuses_pickles_and_registers_the_grading_task() -> None:
    app = make_app("redis://127.0.0.1:6379/0")
    try:
        assert TASK_NAME in app.tasks and app.conf.task_default_queue == QUEUE_NAME
        assert "pickle" not in app.conf.accept_content
    finally:
        app.close()


@pytest.mark.parametrize("url", ["amqp://guest@localhost//", "127.0.0.1:6379", "", "memory://"])
def test_only_redis_urls_are_queues(url: str) -> None:
    with pytest.raises(QueueError, match="must be a Redis URL"):
        check_url(url)


def test_no_redis_at_the_url_fails_with_the_fix() -> None:
    from careops.grading.queue.hosts import free_port

    with pytest.raises(QueueError, match=r"no Redis answered at redis://127\.0\.0\.1:\d+/0") as err:
        ping(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    assert "make queue" in (err.value.fix or "")


def test_a_password_in_the_url_is_never_shown() -> None:
    from careops.grading.queue.app import shown

    assert shown("redis://:s3cret@192.0.2.5:6379/0") == "redis://:***@192.0.2.5:6379/0"
    assert shown("redis://grader:s3cret@queue.example.org/1") == "redis://grader:***@queue.example.org/1"
    assert shown("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


@pytest.mark.docker
def test_the_workshop_hosts_redis_image_serves_the_queue_with_a_password_only() -> None:
    from careops.images import ensure_images
    from careops.images.catalog import REDIS_IMAGE
    from careops.lab import Lab
    from careops.polling import eventually

    ensure_images(["redis"], progress=False)  # optional in `make images`; built here when missing
    with Lab("queue-redis", learner="h-queue-redis") as lab:
        box = lab.run(REDIS_IMAGE, name="redis", ports=[6379], env={"CAREOPS_REDIS_PASSWORD": "synthetic-pass"},
                      volumes={"queue-data": "/data"})
        port = box.port(6379)
        url = f"redis://:synthetic-pass@127.0.0.1:{port}/0"
        eventually(lambda: ping(url, timeout=1) is None, timeout=30, what="the queue's Redis to answer")
        app = make_app(url)
        try:
            assert app.backend.client.config_get("appendonly") == {"appendonly": "yes"}
        finally:
            app.close()
        with pytest.raises(QueueError, match="no Redis answered"):
            ping(f"redis://127.0.0.1:{port}/0", timeout=1)  # no password: refused
