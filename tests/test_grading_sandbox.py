"""careops.grading.sandbox: the sealed container a submission runs in (the agent inside it: test_grading_agent.py).

Every test but the last starts real containers from careops/grader:latest (lab/sandbox.py, the learner's Lab, is
tested in test_lab.py).
"""
from __future__ import annotations

import docker
import pytest

from careops import engine
from careops.grading.sandbox import (
    GRADER_LEARNER,
    Sandbox,
    SandboxError,
    SandboxFactory,
    SandboxPolicy,
    lab_name,
    remove_leftovers,
    remove_run,
)
from careops.lab import labels as L
from careops.lab import resources
from careops.lab.policy import Limits

pytestmark = pytest.mark.docker


def test_the_container_is_sealed(grading_sandboxes) -> None:
    sb = grading_sandboxes.start()
    try:
        sb.container.reload()
        host = sb.container.attrs["HostConfig"]
        cfg = sb.container.attrs["Config"]
        assert host["NetworkMode"] == "none"
        assert host["ReadonlyRootfs"] is True
        assert host["Privileged"] is False
        assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["Memory"] == 512 * 1024**2 and host["MemorySwap"] == host["Memory"]
        assert host["PidsLimit"] == 64 and host["NanoCpus"] == 10**9
        assert host["LogConfig"]["Type"] == "none"
        assert not host.get("Binds") and not sb.container.attrs.get("Mounts")
        assert set(host["Tmpfs"]) == {"/tmp", "/home/grader"}
        assert cfg["User"] == "1000:1000"
        assert not any(k.startswith(("DOCKER_CERT", "CAREOPS_TEST")) for k in cfg["Env"])
        # `careops labs ls` sees it as a lab resource of the grader
        found = resources.find(lab_name(grading_sandboxes.assignment), GRADER_LEARNER)
        assert sb.name in [r.name for r in found]
        probe = sb.request("run", source=(
            "import os, socket\n"
            "out = [os.getuid(), os.path.exists('/var/run/docker.sock')]\n"
            "try:\n    socket.create_connection(('.'.join(['192', '0', '2', '1']), 80), timeout=2); out.append('net')\n"
            "except OSError as e:\n    out.append(type(e).__name__)\n"
            "try:\n    open('/usr/owned', 'w'); out.append('wrote')\n"
            "except OSError as e:\n    out.append(e.errno)\n"
            "print(out)\n"))
        assert probe["ok"] and probe["error"] is None
        assert probe["outputs"][0]["text"].strip() == "[1000, False, 'OSError', 30]"  # 30: EROFS
    finally:
        sb.remove()
    with pytest.raises(docker.errors.NotFound):
        engine.client().containers.get(sb.name)


def test_a_loop_is_interrupted_and_the_sandbox_goes_on(grading_sandboxes) -> None:
    sb = grading_sandboxes.start(cell_timeout=3)
    try:
        answer = sb.request("run", label="cell loop", source="while True:\n    pass\n")
        assert answer["ok"] is False and answer["timed_out"] is True
        assert sb.incidents == ["cell loop did not finish within 3 s (interrupted)"]
        assert sb.request("run", source="print('alive')")["outputs"][0]["text"] == "alive\n"
    finally:
        sb.remove()


def test_a_loop_that_ignores_interrupts_is_killed(grading_sandboxes) -> None:
    sb = grading_sandboxes.start(cell_timeout=3)
    try:
        with pytest.raises(SandboxError) as err:
            sb.request("run", label="cell stubborn", source=(
                "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass\n"))
        assert err.value.reason == "timeout"
        assert "cell stubborn did not finish within 3 s" in err.value.message
        with pytest.raises(SandboxError):  # dead stays dead
            sb.request("run", source="1")
    finally:
        sb.remove()


def test_memory_exhaustion_and_exits_are_reported(grading_sandboxes) -> None:
    sb = grading_sandboxes.start(limits=Limits(memory=256 * 1024**2, cpus=1.0, pids=64))
    try:
        with pytest.raises(SandboxError) as err:
            sb.request("run", source="hog = b'x' * (1024 * 2**20)\n")
        assert err.value.reason == "memory" and "ran out of memory (256 MiB)" in err.value.message
    finally:
        sb.remove()
    sb = grading_sandboxes.start()
    try:
        assert sb.request("run", source="import sys\nsys.exit(3)\n")["error"]["ename"] == "SystemExit"
        with pytest.raises(SandboxError) as err:
            sb.request("run", source="import os\nos._exit(5)\n")
        assert err.value.reason == "crashed" and "exit code 5" in err.value.message
    finally:
        sb.remove()


def test_output_is_capped(grading_sandboxes) -> None:
    sb = grading_sandboxes.start(output_cap=1000)
    try:
        flood = sb.request("run", source="for _ in range(100000):\n    print('x' * 5000)\n")
        text = flood["outputs"][0]["text"]
        assert text.startswith("x" * 1000) and text.endswith("[output truncated by the grader]\n")
        assert len(text) < 1100
        files = sb.request("run", source=(
            "with open('/tmp/fill', 'wb') as fh:\n    for _ in range(1024):\n        fh.write(b'0' * 2**20)\n"))
        assert files["error"]["evalue"].startswith("[Errno 28]")  # the tmpfs is full, the host is not
        with pytest.raises(SandboxError) as err:  # writing around the agent, onto the protocol itself
            sb.request("run", source=(
                "import os\nfor fd in range(3, 12):\n    try:\n"
                "        for _ in range(48):\n            os.write(fd, b'z' * 2**20)\n"
                "    except OSError:\n        pass\n"))
        assert err.value.reason == "output"
    finally:
        sb.remove()


def test_factory_hands_out_fresh_containers_and_cleans_up(grading_sandboxes) -> None:
    assignment, session = grading_sandboxes.assignment, grading_sandboxes.session
    factory = SandboxFactory(SandboxPolicy(), assignment=assignment, session=session)
    first = factory.take()
    second = factory.take()
    try:
        assert first.container.id != second.container.id
        first.wait_ready()
        first.request("run", source="x = 1")
        second.wait_ready()
        assert second.request("get", name="x")["kind"] == "missing"  # nothing carried over
    finally:
        first.remove()
        second.remove()
        factory.close()
    left = [r for r in resources.find(lab_name(assignment), GRADER_LEARNER) if r.session == session]
    assert left == []


def test_abort_removes_sandboxes_in_use_and_the_spare_and_starts_no_more(grading_sandboxes) -> None:
    assignment, session = grading_sandboxes.assignment, grading_sandboxes.session
    factory = SandboxFactory(SandboxPolicy(), assignment=assignment, session=session)
    busy = factory.take()
    busy.wait_ready()
    factory.abort()
    with pytest.raises(SandboxError) as err:
        busy.request("run", source="x = 1")  # its container is gone: the grading thread learns it at once
    assert err.value.reason == "crashed"
    with pytest.raises(SandboxError) as stopped:
        factory.take()
    assert stopped.value.reason == "stopped"
    left = [r for r in resources.find(lab_name(assignment), GRADER_LEARNER) if r.session == session]
    assert left == []
    assert remove_run(assignment, session) == 0


def test_a_released_sandbox_is_cut_off_at_once_and_gone_when_the_factory_closes(grading_sandboxes) -> None:
    assignment, session = grading_sandboxes.assignment, grading_sandboxes.session
    factory = SandboxFactory(SandboxPolicy(), assignment=assignment, session=session, prestart=False)
    used = factory.take()
    used.wait_ready()
    factory.release(used)
    with pytest.raises(SandboxError):
        used.request("run", source="x = 1")  # the grader's side of it is closed at once
    factory.close()  # waits for the removal released sandboxes queue
    with pytest.raises(docker.errors.NotFound):
        engine.client().containers.get(used.name)
    factory.release(used)  # after close: removed in place, without an error


def test_leftovers_of_a_dead_grader_are_reclaimed(grading_sandboxes) -> None:
    assignment = grading_sandboxes.assignment
    sb = Sandbox(engine.client(), SandboxPolicy(), assignment=assignment, session=grading_sandboxes.session)
    sb.remove()
    # a container labelled as made by a process that no longer exists
    labels = {**sb.labels, L.CREATOR_PID: "999999999"}
    kwargs = SandboxPolicy().create_kwargs(name=sb.name + "-orphan", labels=labels)
    engine.client().containers.create(**kwargs)
    assert remove_leftovers(assignment) >= 1
    with pytest.raises(docker.errors.NotFound):
        engine.client().containers.get(sb.name + "-orphan")


def test_policy_refuses_unsafe_limits() -> None:
    with pytest.raises(Exception) as err:
        SandboxPolicy(limits=Limits(memory=64 * 1024**3)).create_kwargs(name="x", labels={})
    assert "memory limit" in str(err.value)
    kwargs = SandboxPolicy().create_kwargs(name="x", labels={})
    assert kwargs["network_mode"] == "none" and kwargs["cap_drop"] == ["ALL"] and kwargs["read_only"] is True
    assert "volumes" not in kwargs and "privileged" in kwargs and kwargs["privileged"] is False
