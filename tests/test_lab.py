"""The Lab sandbox API against a real engine: labels, limits, isolation, clean-up."""
from __future__ import annotations

import uuid

import docker
import pytest

from careops.errors import ExecFailed, ExecTimeout, LabError, PolicyViolation
from careops.lab import Lab, find, parse_spec, reset
from careops.lab import labels as L
from careops.lab.drills import simulate_crash
from careops.lab.policy import Limits, parse_bytes

pytestmark = pytest.mark.docker
IMAGE = "careops/lab-runtime:latest"


@pytest.fixture
def learner() -> str:
    """A learner id of its own per test, removed afterwards whatever happens."""
    who = f"t-{uuid.uuid4().hex[:8]}"
    yield who
    reset(None, who)


@pytest.fixture
def client() -> docker.DockerClient:
    from careops import engine

    return engine.client()


def test_everything_a_lab_starts_is_labelled_and_named_per_learner(learner, client):
    with Lab("ward-a", learner=learner) as lab:
        c = lab.run(IMAGE, name="probe", command=["sleep", "60"])
        vol = lab.volume("data")
        assert c.name == f"careops-{learner}-ward-a-probe"
        for lbl in (c.labels, client.networks.get(lab.network_name).attrs["Labels"], client.volumes.get(vol).attrs["Labels"]):
            assert lbl[L.LAB] == "ward-a" and lbl[L.LEARNER] == learner and lbl[L.MANAGED] == "true"
            assert lbl[L.SESSION] == lab.session
        assert {r.kind for r in lab.resources()} == {"container", "network", "volume"}
    assert find("ward-a", learner) == []


def test_limits_and_hardening_are_enforced_by_the_engine(learner):
    with Lab("limits", learner=learner) as lab:
        c = lab.run(IMAGE, name="probe", command=["sleep", "60"], memory="64m", cpus=0.5, pids=32,
                    user="1000", read_only=True)
        lim = c.limits()
        assert lim["memory"] == 64 * 2**20 and lim["cpus"] == 0.5 and lim["pids"] == 32
        assert lim["read_only"] and not lim["privileged"] and lim["cap_drop"] == ["ALL"]
        assert "no-new-privileges" in lim["security_opt"][0]
        assert c.exec(["id", "-u"]).output.strip() == "1000"
        assert not c.exec("touch /etc/x", check=False).ok
        hog = c.exec(["python3", "-c", "bytearray(200 * 2**20)"], check=False, timeout=30)
        assert not hog.ok, "a 200 MiB allocation in a 64 MiB container must fail"


def test_default_limits_apply_when_none_are_given(learner):
    with Lab("defaults", learner=learner) as lab:
        lim = lab.run(IMAGE, name="probe", command=["sleep", "60"]).limits()
        assert (lim["memory"], lim["cpus"], lim["pids"]) == (Limits().memory, Limits().cpus, Limits().pids)


def test_two_learners_never_collide_and_cannot_reach_each_other(client):
    a, b = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    try:
        lab_a, lab_b = Lab("shared-name", learner=a), Lab("shared-name", learner=b)
        srv_a = lab_a.run(IMAGE, name="web", command=["python3", "-m", "http.server", "8000"])
        srv_b = lab_b.run(IMAGE, name="web", command=["python3", "-m", "http.server", "8000"])
        client_a = lab_a.run(IMAGE, name="client", command=["sleep", "120"])
        assert srv_a.name != srv_b.name and lab_a.network_name != lab_b.network_name
        probe = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3); print('reached')"
        same = client_a.exec(["sh", "-c", f"for i in 1 2 3 4 5; do python3 -c \"{probe}\" http://web:8000/ && exit 0; sleep 1; done; exit 1"],
                             check=False, timeout=30)
        assert "reached" in same.output, f"a lab container reaches its own lab's service by name: {same.output}"
        other = client_a.exec(["python3", "-c", probe, f"http://{srv_b.ip()}:8000/"], check=False, timeout=15)
        assert not other.ok and "reached" not in other.output, "learner a must not reach learner b's container"
        lab_a.close()
        assert find("shared-name", a) == [] and len(find("shared-name", b)) == 2, "closing a's lab leaves b's alone"
    finally:
        reset(None, a)
        reset(None, b)


def test_published_ports_listen_on_loopback_only(learner):
    import urllib.request

    with Lab("ports", learner=learner) as lab:
        web = lab.run(IMAGE, name="web", command=["python3", "-m", "http.server", "8000"], ports=[8000])
        host_ip = web.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostIp"]
        assert host_ip == "127.0.0.1"
        from careops.polling import eventually

        status = eventually(lambda: urllib.request.urlopen(f"http://127.0.0.1:{web.port(8000)}/", timeout=2).status,
                            timeout=20, what="the web server")
        assert status == 200


def test_reset_after_a_crashed_kernel_removes_everything(learner):
    leaked = simulate_crash("night-shift", learner=learner)
    assert {r.kind for r in leaked} == {"container", "network", "volume"}
    assert all(r.leaked for r in leaked), "the creator process is gone, so the resources are leaked"
    report = reset("night-shift", learner)
    assert len(report.removed) == 3 and not report.failed
    assert find("night-shift", learner) == []


def test_find_by_creator_process_lists_only_what_that_process_made(learner):
    import os

    leaked = simulate_crash("night-shift", learner=learner)  # made by a process that is gone
    with Lab("day-shift", learner=learner) as lab:
        lab.volume("data")
        mine = find(learner=learner, creator_pid=os.getpid())
        assert {(r.lab, r.kind) for r in mine} == {("day-shift", "network"), ("day-shift", "volume")}
        assert find(learner=learner, creator_pid=os.getpid() + 10**7) == []
    assert len(leaked) == 3


def test_reopening_a_lab_reclaims_what_a_crash_left(learner):
    simulate_crash("night-shift", learner=learner)
    with Lab("night-shift", learner=learner) as lab:
        assert len(lab.reclaimed) == 3
        assert lab.resources() == [r for r in find("night-shift", learner) if r.session == lab.session]


def test_exec_timeout_and_failure_are_different_errors(learner):
    with Lab("exec", learner=learner) as lab:
        c = lab.run(IMAGE, name="probe", command=["sleep", "60"])
        with pytest.raises(ExecTimeout, match="did not finish within 1 s"):
            c.exec("sleep 30", timeout=1)
        with pytest.raises(ExecFailed, match="exited 3, expected 0"):
            c.exec("echo broken; exit 3")
        assert c.exec("echo fine").output == "fine\n"


def test_exec_stream_hands_over_every_line_and_kills_the_whole_command_at_its_limit(learner):
    with Lab("exec-stream", learner=learner) as lab:
        c = lab.run(IMAGE, name="probe", command=["sleep", "60"])
        lines: list[str] = []
        res = c.exec_stream(["sh", "-c", "echo one; printf 'two\\r\\nthree'; echo; echo $GREETING; printf \"$PWD\""],
                            on_line=lines.append, env={"GREETING": "hello"}, workdir="/tmp", timeout=10)
        assert (res.exit_code, res.timed_out) == (0, False) and lines == ["one", "two", "three", "hello", "/tmp"]
        # a child that keeps running is killed with its parent: nothing of the command is left
        res = c.exec_stream(["sh", "-c", "sleep 300 & echo started; wait"], timeout=1)
        assert res.timed_out and res.output == "started\n" and 1 <= res.seconds < 1 + 5
        assert not [p for p in c.processes("-o pid,args") if "sleep 300" in p["COMMAND"]]
        with pytest.raises(ExecTimeout, match="`sh -c sleep 30` in .* did not finish within 1 s"):
            c.exec("sleep 30", timeout=1)
        assert c.exec("id -u", user="1000").output == "1000\n"


def test_files_go_in_and_come_out_byte_for_byte_with_owner_and_mode(learner):
    with Lab("files", learner=learner) as lab:
        c = lab.run(IMAGE, name="probe", command=["sleep", "60"])
        payload = bytes(range(256)) * 64
        c.put_files("/tmp", {"drop/data.bin": payload, "drop/note.txt": b"SYN-0001\n"}, mode=0o640, uid=1000, gid=1000)
        assert c.get_file("/tmp/drop/data.bin") == payload
        assert c.exec(["stat", "-c", "%a %u %n", "/tmp/drop", "/tmp/drop/note.txt"]).output.split("\n")[:2] == [
            "755 1000 /tmp/drop", "640 1000 /tmp/drop/note.txt"]
        with pytest.raises(docker.errors.NotFound):
            c.get_file("/tmp/drop/missing.txt")


def test_wait_state_logs_and_processes_without_the_sdk_object(learner):
    with Lab("state", learner=learner) as lab:
        with lab.run(IMAGE, name="short", command=["sh", "-c", "echo out; echo err >&2; exit 7"], wait=False) as c:
            assert c.wait(timeout=30) == 7
            state = c.state()
            assert (state.status, state.exit_code, state.oom_killed, state.killed) == ("exited", 7, False, False)
            assert c.exit_code == 7 and c.image_name == IMAGE
            assert (c.logs(None, stderr=False), c.logs(None, stdout=False)) == ("out\n", "err\n")
        assert [x.name for x in lab.containers()] == []  # the with block removed it
        long = lab.run(IMAGE, name="long", command=["sleep", "60"])
        assert long.state().exit_code is None and long.exit_code is None
        assert any(p["COMMAND"] == "sleep" for p in long.processes("-o pid,uid,comm"))
        with pytest.raises(LabError, match="did not exit within 1 s"):
            long.wait(timeout=1)
        long.kill()
        assert long.wait(timeout=10) == 137 and long.state().killed
        long.start()
        assert long.wait_until("running").state().exit_code is None


def test_nothing_outside_the_lab_package_reaches_past_lab_container():
    """``LabContainer.raw`` is an escape hatch for tests and notebooks, not for careops' own code."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "careops"
    not_a_container = {"grading/sandbox.py", "grading/queue/kubernetes_job.py"}  # .raw: the exec socket (or its stand-in)
    allowed: dict[str, int] = {}
    found = {}
    for path in src.rglob("*.py"):
        rel = path.relative_to(src).as_posix()
        if rel.startswith("lab/") or rel in not_a_container:
            continue
        uses = len(re.findall(r"\.raw\b", path.read_text(encoding="utf-8")))
        if uses:
            found[rel] = uses
    assert {k: v for k, v in found.items() if allowed.get(k) != v} == {}


@pytest.mark.parametrize("kwargs, message", [
    ({"memory": "64g"}, "memory limit"),
    ({"pids": 100000}, "pids limit"),
    ({"cap_add": ["SYS_ADMIN"]}, "not allowed"),
    ({"binds": {"/var/run/docker.sock": "/var/run/docker.sock"}}, "may never be mounted"),
    ({"binds": {"/etc": "/host-etc"}}, "no work folder"),
])
def test_sandbox_rules_refuse_dangerous_requests(learner, kwargs, message):
    with Lab("policy", learner=learner) as lab:
        with pytest.raises(PolicyViolation, match=message):
            lab.run(IMAGE, name="bad", command=["true"], **kwargs)
        assert lab.containers() == []


def test_host_folders_only_from_the_work_folder_and_read_only(learner, tmp_path):
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "msg.hl7").write_text("MSH|^~\\&|\r")
    with Lab("mounts", learner=learner, workdir=tmp_path) as lab:
        c = lab.run(IMAGE, name="reader", command=["sleep", "60"], binds={tmp_path / "inbox": "/inbox"})
        assert c.exec("cat /inbox/msg.hl7").output.startswith("MSH")
        assert not c.exec("touch /inbox/new", check=False).ok
        with pytest.raises(PolicyViolation, match="outside the lab's work folder"):
            lab.run(IMAGE, name="escape", command=["true"], binds={tmp_path.parent: "/up"})


def test_a_missing_image_is_explained(learner):
    with Lab("noimage", learner=learner) as lab:
        with pytest.raises(LabError, match="not on this engine.*\n.*make images"):
            lab.run("careops/does-not-exist:1", name="x")


def test_run_spec_runs_a_declarative_container(learner):
    spec = """
name: triage-probe
image: careops/lab-runtime:latest
command: [sleep, infinity]
user: "1000"
read_only: true
limits: {memory: 96m, cpus: 0.25, pids: 40}
labels: {hospital.owner: ward-it, hospital.data: synthetic}
"""
    with Lab("spec", learner=learner) as lab:
        c = lab.run_spec(spec)
        lim = c.limits()
        assert (lim["memory"], lim["cpus"], lim["pids"], lim["user"]) == (96 * 2**20, 0.25, 40, "1000")
        assert c.labels["hospital.data"] == "synthetic"


@pytest.mark.parametrize("text, message", [
    ("name: [unclosed", "not valid YAML at line 1"),
    ("- a list", "must be a YAML mapping"),
    ("name: x\nprivileged: true", "'privileged' is refused"),
    ("name: x\nimage_name: y", "unknown key 'image_name'"),
    ("image: y", "has no 'name'"),
    ("name: x\nlabels: {org.careops.lab: other}", "careops' own"),
    ("name: x\nlimits: {memory: lots}", "is not a size"),
])
def test_bad_specs_get_a_clear_error(text, message):
    with pytest.raises(PolicyViolation, match=message):
        parse_spec(text)


def test_parse_bytes():
    assert parse_bytes("128m") == 128 * 2**20 and parse_bytes("1g") == 2**30 and parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes(1000) == 1000


def test_learner_ids_are_safe_and_distinct(monkeypatch):
    monkeypatch.setenv("CAREOPS_LEARNER", "Ana.M")
    first = L.learner_id()
    monkeypatch.setenv("CAREOPS_LEARNER", "ana-m")
    assert first != L.learner_id() and first.startswith("ana-m-")


# -- clean-up racing another removal (a unit test of DirectBackend's waits; the real clean-up is tested above) --

class _RacingContainer:
    """A container whose removal another caller started first: the engine answers 409 until that one is done."""

    id = "c0ffee"
    name = "web"
    labels: dict[str, str] = {}

    def __init__(self, engine: "_RacingEngine") -> None:
        self.engine = engine

    def remove(self, **_kw) -> None:
        import requests

        response = requests.Response()
        response.status_code = 409
        raise docker.errors.APIError("conflict", response,
                                     explanation=f"removal of container {self.id} is already in progress")


class _RacingNetwork:
    """A network still holding the endpoint of that container until the container is gone."""

    def __init__(self, engine: "_RacingEngine") -> None:
        self.engine = engine
        self.attrs = {"Labels": {}, "Containers": {}}

    def disconnect(self, *_a, **_kw) -> None:
        pass

    def reload(self) -> None:
        pass

    def remove(self) -> None:
        import requests

        self.engine.network_tries += 1
        if self.engine.network_tries < 3:  # the endpoint goes a moment after the container
            response = requests.Response()
            response.status_code = 403
            raise docker.errors.APIError("forbidden", response,
                                         explanation="error while removing network: network x has active endpoints")
        self.engine.network_removed = True


class _RacingEngine:
    def __init__(self) -> None:
        self.polls = 0
        self.network_removed = False
        self.network_tries = 0
        self.containers = self
        self.networks = self
        self.api = self

    def get(self, name: str):
        return _RacingContainer(self) if name == "web" else _RacingNetwork(self)

    def inspect_container(self, _id: str) -> dict:
        self.polls += 1
        if self.polls >= 3:  # the other removal finished
            raise docker.errors.NotFound("gone")
        return {}


def test_clean_up_waits_for_a_removal_already_under_way_then_removes_the_network(monkeypatch):
    from careops.lab import direct
    from careops.lab.backend import ResourceRecord

    engine = _RacingEngine()
    backend = direct.DirectBackend(engine)
    monkeypatch.setattr(backend, "owns", lambda labels, ref=None: True)
    removed, failed = backend.remove([ResourceRecord("container", "web", {}, "running"),
                                      ResourceRecord("network", "lab-net", {}, "-")])
    assert failed == [] and [r.name for r in removed] == ["web", "lab-net"]
    assert engine.polls >= 3 and engine.network_tries == 3 and engine.network_removed


def test_clean_up_reports_a_removal_that_never_finishes(monkeypatch):
    from careops.lab import direct
    from careops.lab.backend import ResourceRecord

    engine = _RacingEngine()
    engine.inspect_container = lambda _id: {}  # the other removal never ends
    monkeypatch.setattr(direct, "REMOVAL_WAIT_SECONDS", 0.5)
    backend = direct.DirectBackend(engine)
    monkeypatch.setattr(backend, "owns", lambda labels, ref=None: True)
    removed, failed = backend.remove([ResourceRecord("container", "web", {}, "running")])
    assert removed == [] and "already in progress" in failed[0][1]
