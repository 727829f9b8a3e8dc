"""careops.grading.queue.hosts: Redis and a second Docker engine on this machine, started and stopped for real."""
from __future__ import annotations

from pathlib import Path

import docker
import pytest

from careops.grading.queue import QueueError, ping
from careops.grading.queue.hosts import DockerEngine, RedisServer

pytestmark = pytest.mark.docker


def test_a_redis_server_answers_on_its_own_port_and_is_gone_after(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:
        ping(server.url)
        assert server.database(3).endswith(f":{server.port}/3")
    with pytest.raises(QueueError, match="no Redis answered") as err:
        ping(server.url, timeout=0.5)
    assert "make queue" in (err.value.fix or "")


def test_the_second_engine_is_another_daemon_with_its_own_data_root_and_the_same_grader(second_engine) -> None:
    first = docker.DockerClient(base_url=second_engine.images_from)
    second = second_engine.client()
    try:
        assert second.info()["DockerRootDir"] == str(second_engine.folder / "data")
        assert first.info()["DockerRootDir"] != second.info()["DockerRootDir"]
        assert second.images.get("careops/grader:latest").id == second_engine.grader_id
        assert first.images.get("careops/grader:latest").id == second_engine.grader_id
        assert "--bridge" in second_engine.command() and "--iptables=false" in second_engine.command()
    finally:
        first.close()
        second.close()


def test_each_data_root_gets_its_own_socket_and_exec_root(tmp_path: Path) -> None:
    a, b = DockerEngine(tmp_path / "a"), DockerEngine(tmp_path / "b")
    assert a.socket != b.socket and a.exec_root != b.exec_root
    assert len(str(a.socket)) < 100  # a unix socket path must be short


def test_the_first_engines_default_bridge_survives_the_second_engine(second_engine) -> None:
    """A dockerd started with ``--bridge none`` removes the host's docker0 at start (the first engine's containers on
    its default network then cannot start), unless it runs in a network namespace of its own."""
    import docker

    first = docker.from_env()
    try:
        name = (first.networks.get("bridge").attrs.get("Options") or {}).get("com.docker.network.bridge.name")
    finally:
        first.close()
    assert name == "docker0"
    assert Path("/sys/class/net/docker0").exists(), "the second engine took the first engine's docker0"
    assert second_engine.command()[:2] == ["unshare", "--net"]
