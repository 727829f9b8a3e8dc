"""careops.grading.sandbox (and the agent inside it): the sealed container a submission runs in.

Every test starts real containers from careops/grader:latest.
"""
from __future__ import annotations

import base64
import pickle
import uuid

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
)
from careops.lab import labels as L
from careops.lab import resources
from careops.lab.policy import Limits

ASSIGNMENT = "sandbox-test"
pytestmark = pytest.mark.docker


@pytest.fixture()
def session() -> str:
    sid = "t" + uuid.uuid4().hex[:11]
    yield sid
    remove_leftovers(ASSIGNMENT, session=sid)


def new(session: str, **policy: object) -> Sandbox:
    sb = Sandbox(engine.client(), SandboxPolicy(**policy), assignment=ASSIGNMENT, session=session)
    sb.wait_ready()
    return sb


def call(sb: Sandbox, name: str, *args: object) -> dict:
    return sb.request("call", name=name, args=base64.b64encode(pickle.dumps((args, {}))).decode())


def test_the_container_is_sealed(session: str) -> None:
    sb = new(session)
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
        found = resources.find(lab_name(ASSIGNMENT), GRADER_LEARNER)
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


def test_agent_returns_values_and_errors_as_data(session: str) -> None:
    sb = new(session)
    try:
        ran = sb.request("run", source=(
            "import os\n"
            "def pair(a, b):\n    return (a, {'sum': a + b}, {1, 2}, [None, 1.5, 'x'])\n"
            "def boom(x):\n    raise ValueError(f'bad {x}')\n"
            "def weird():\n    return object()\n"
            "data = {'k': [1, 2]}\n"
            "class Sneaky(str):\n    def __eq__(self, other):\n        return True\n"
            "sneaky = Sneaky('x')\n"
            "1 / 0\n"))
        assert ran["error"]["ename"] == "ZeroDivisionError"
        assert call(sb, "pair", 2, 3)["value"] == {"__tuple__": [
            2, {"__dict__": {"sum": 5}}, {"__set__": [1, 2]}, [None, 1.5, "x"]]}
        err = call(sb, "boom", 7)
        assert err["ok"] is False and err["error"]["ename"] == "ValueError" and err["error"]["evalue"] == "bad 7"
        assert call(sb, "weird")["error"]["ename"] == "NotTransferable"
        assert sb.request("get", name="pair")["kind"] == "callable"
        got = sb.request("get", name="os")
        assert (got["kind"], got["module"]) == ("module", "os")
        assert sb.request("get", name="data")["value"] == {"__dict__": {"k": [1, 2]}}
        assert sb.request("get", name="nothing")["kind"] == "missing"
        # a str subclass with a lying __eq__ never leaves as a str
        assert sb.request("get", name="sneaky")["kind"] == "opaque"
    finally:
        sb.remove()


def test_a_loop_is_interrupted_and_the_sandbox_goes_on(session: str) -> None:
    sb = new(session, cell_timeout=3)
    try:
        answer = sb.request("run", label="cell loop", source="while True:\n    pass\n")
        assert answer["ok"] is False and answer["timed_out"] is True
        assert sb.incidents == ["cell loop did not finish within 3 s (interrupted)"]
        assert sb.request("run", source="print('alive')")["outputs"][0]["text"] == "alive\n"
    finally:
        sb.remove()


def test_a_loop_that_ignores_interrupts_is_killed(session: str) -> None:
    sb = new(session, cell_timeout=3)
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


def test_memory_exhaustion_and_exits_are_reported(session: str) -> None:
    sb = new(session, limits=Limits(memory=256 * 1024**2, cpus=1.0, pids=64))
    try:
        with pytest.raises(SandboxError) as err:
            sb.request("run", source="hog = b'x' * (1024 * 2**20)\n")
        assert err.value.reason == "memory" and "ran out of memory (256 MiB)" in err.value.message
    finally:
        sb.remove()
    sb = new(session)
    try:
        assert sb.request("run", source="import sys\nsys.exit(3)\n")["error"]["ename"] == "SystemExit"
        with pytest.raises(SandboxError) as err:
            sb.request("run", source="import os\nos._exit(5)\n")
        assert err.value.reason == "crashed" and "exit code 5" in err.value.message
    finally:
        sb.remove()


def test_output_is_capped(session: str) -> None:
    sb = new(session, output_cap=1000)
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


def test_factory_hands_out_fresh_containers_and_cleans_up(session: str) -> None:
    factory = SandboxFactory(SandboxPolicy(), assignment=ASSIGNMENT, session=session)
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
    left = [r for r in resources.find(lab_name(ASSIGNMENT), GRADER_LEARNER) if r.session == session]
    assert left == []


def test_leftovers_of_a_dead_grader_are_reclaimed(session: str) -> None:
    sb = Sandbox(engine.client(), SandboxPolicy(), assignment=ASSIGNMENT, session=session)
    sb.remove()
    # a container labelled as made by a process that no longer exists
    labels = {**sb.labels, L.CREATOR_PID: "999999999"}
    kwargs = SandboxPolicy().create_kwargs(name=sb.name + "-orphan", labels=labels)
    engine.client().containers.create(**kwargs)
    assert remove_leftovers(ASSIGNMENT) >= 1
    with pytest.raises(docker.errors.NotFound):
        engine.client().containers.get(sb.name + "-orphan")


def test_policy_refuses_unsafe_limits() -> None:
    with pytest.raises(Exception) as err:
        SandboxPolicy(limits=Limits(memory=64 * 1024**3)).create_kwargs(name="x", labels={})
    assert "memory limit" in str(err.value)
    kwargs = SandboxPolicy().create_kwargs(name="x", labels={})
    assert kwargs["network_mode"] == "none" and kwargs["cap_drop"] == ["ALL"] and kwargs["read_only"] is True
    assert "volumes" not in kwargs and "privileged" in kwargs and kwargs["privileged"] is False
