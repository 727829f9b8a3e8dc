"""The lab broker's HTTP API on this machine's engine: two learners, module 0's lab cells, module 2's build, refusals.

The broker (careops.workshop.broker.make_app) runs here in a thread with the real
engine; the one stand-in is who a token belongs to, which the hub answers in
workshop mode (tests/test_workshop_broker.py does all of this through the real hub,
from inside learners' servers). Learner code talks to it exactly as in a learner's
server: CAREOPS_BROKER_URL and a token in the environment, then careops.lab as usual.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest
import requests
from tornado.httpserver import HTTPServer

from careops import engine
from careops.errors import BrokerError, LabError, PolicyViolation, QuotaExceeded
from careops.lab import Lab, find, reset
from careops.lab.backend import BROKER_TOKEN_ENV, BROKER_URL_ENV, LabRef, ResourceRecord, RunRequest
from careops.lab.broker import BrokerBackend
from careops.lab.direct import DirectBackend
from careops.lab.policy import LabQuota
from careops.workshop.broker import Broker, BrokerSettings, make_app

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[1]
RUN = uuid.uuid4().hex[:6]
ANA, BEN = f"ana-{RUN}", f"ben-{RUN}"
TOKENS = {"tok-ana": {"kind": "user", "name": ANA}, "tok-ben": {"kind": "user", "name": BEN},
          "tok-svc": {"kind": "service", "name": "careops"}}
TRIAGE_SPEC = """
name: triage-probe
image: careops/lab-runtime:latest
command: [sleep, infinity]
user: "1000"
read_only: true
limits: {memory: 128m, cpus: 0.5, pids: 64}
labels: {hospital.owner: ward-it, hospital.data: synthetic}
"""
SOLUTION = REPO / "grading" / "references" / "containerize"


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    """The broker's app on a free loopback port, in a thread with its own event loop; every lab of both removed after."""

    async def identify(token: str) -> dict | None:
        return TOKENS.get(token)

    settings = BrokerSettings(workshop=f"bt{RUN}", quota=LabQuota(containers=4, memory=768 * 2**20))
    broker = Broker(settings, engine.client(), identify, lambda model: True)
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    found: dict[str, int] = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        server = HTTPServer(make_app(broker))
        sockets = __import__("tornado.netutil", fromlist=["bind_sockets"]).bind_sockets(0, "127.0.0.1")
        server.add_sockets(sockets)
        found["port"] = sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()

    threading.Thread(target=serve, daemon=True).start()
    assert ready.wait(10)
    try:
        yield f"http://127.0.0.1:{found['port']}/services/lab-broker/"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        for who in (ANA, BEN):
            reset(None, who, client=engine.client())


@pytest.fixture
def as_learner(broker_url: str, monkeypatch: pytest.MonkeyPatch):
    """Make this process one learner's kernel in the hub: the broker's URL and their token in the environment."""

    def become(who: str) -> BrokerBackend:
        monkeypatch.setenv(BROKER_URL_ENV, broker_url)
        monkeypatch.setenv(BROKER_TOKEN_ENV, f"tok-{who}")
        monkeypatch.setenv("CAREOPS_LEARNER", {"ana": ANA, "ben": BEN}[who])
        return BrokerBackend(broker_url, f"tok-{who}")

    return become


def raw(broker_url: str, token: str | None, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.request(method, broker_url + "api/v1/" + path, headers=headers, timeout=60, **kwargs)


def test_module_0_lab_cells_run_through_the_broker_and_pass_their_checks(as_learner, tmp_path) -> None:
    from careops.checks import orientation as check
    from careops.lab.drills import simulate_crash
    from careops.lab.resources import as_dataframe
    from careops.preflight import preflight

    backend = as_learner("ana")
    assert backend.whoami()["learner"] == ANA
    report = preflight()
    assert report.ok, str(report)
    assert report.engine.startswith(("Docker Engine", "Podman"))
    lab = Lab("orientation")
    assert lab.learner == ANA and lab.backend.via_broker and lab.network_name == f"careops-{ANA}-orientation"
    probe = lab.run_spec(TRIAGE_SPEC)
    assert probe.name == f"careops-{ANA}-orientation-triage-probe" and probe.status == "running"
    check.running_container(probe)  # raises unless every criterion passed
    lines: list[str] = []
    res = probe.exec_stream(["sh", "-c", "echo one; sleep 0.3; echo two; exit 3"], on_line=lines.append, timeout=10)
    assert (res.exit_code, res.timed_out, lines) == (3, False, ["one", "two"])
    assert probe.exec_stream(["sleep", "30"], timeout=1).timed_out
    box = lab.run(name="box", command=["sleep", "60"], memory="16m")
    box.put_files("/tmp", {"drop/note.txt": b"SYN-0001\n"}, uid=1000, gid=1000)
    assert box.get_file("/tmp/drop/note.txt") == b"SYN-0001\n"
    with pytest.raises(docker.errors.NotFound):
        box.get_file("/tmp/drop/missing.txt")
    box.remove()
    assert any(p["COMMAND"] == "sleep" for p in probe.processes("-o pid,uid,comm"))
    short = lab.run(name="short", command=["sh", "-c", "echo out; echo err >&2; exit 7"], memory="32m", wait=False)
    assert short.wait(timeout=30) == 7 and short.logs(None, stderr=False) == "out\n" and short.state().exit_code == 7
    with pytest.raises(LabError, match="no docker SDK object here"):
        probe.raw  # noqa: B018 - there is no SDK object through the broker
    # exercise 3: a crashed kernel's leftovers, found, listed, reset and gone
    leaked = simulate_crash("night-shift")
    assert {r.kind for r in leaked} == {"container", "network", "volume"} and all(r.leaked for r in leaked)
    table = as_dataframe(find())
    assert set(table["learner"]) == {ANA}, "a learner lists only their own labs"
    assert set(table[table["leaked"]]["lab"]) == {"night-shift"}
    assert len(reset("night-shift").removed) == 3
    check.lab_is_clean("night-shift")
    lab.close()
    assert find("orientation") == []


def test_the_careops_cli_lists_and_resets_only_the_learners_own_labs(as_learner, broker_url) -> None:
    as_learner("ben")
    lab = Lab("ward-b")
    lab.run(name="pump", command=["sleep", "60"], memory="16m")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    ls = subprocess.run([sys.executable, "-m", "careops.cli", "labs", "ls", "--all-learners"], env=env, capture_output=True,
                        text=True, timeout=120)
    assert ls.returncode == 0 and f"careops-{BEN}-ward-b-pump" in ls.stdout and ANA not in ls.stdout, ls.stdout
    out = subprocess.run([sys.executable, "-m", "careops.cli", "labs", "reset", "ward-b", "--yes"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and find("ward-b") == [], out.stdout + out.stderr
    lab.closed = True


def test_a_learner_cannot_list_stop_exec_into_or_read_another_learners_lab(as_learner, broker_url) -> None:
    as_learner("ana")
    lab_a = Lab("secrets")
    pump = lab_a.run(name="pump", command=["sleep", "120"], memory="16m", user="0", volumes={"ward-db": "/data"})
    pump.exec("echo SYN-7 > /data/mrn.txt")
    volume = f"careops-{ANA}-secrets-ward-db"
    ben = as_learner("ben")
    # through the careops client, as ben's kernel
    with pytest.raises(PolicyViolation, match=f"you are learner {BEN}: labs of {ANA} are not yours"):
        Lab("secrets", learner=ANA)
    with pytest.raises(PolicyViolation, match=f"labs of {ANA} are not yours"):
        find(learner=ANA)
    assert [r for r in find() if r.learner == ANA] == []
    with pytest.raises(PolicyViolation, match=f"labs of {ANA} are not yours"):
        reset("secrets", ANA)
    removed, failed = ben.remove([ResourceRecord("volume", volume, {}, "-"),
                                  ResourceRecord("container", pump.name, {}, "running")])
    assert removed == [] and {r.name for r, _ in failed} == {volume, pump.name}
    assert all("not one of your lab resources" in why for _, why in failed)
    lab_b = Lab("secrets")
    assert lab_b.network_name == f"careops-{BEN}-secrets"
    thief = lab_b.run(name="thief", command=["sh", "-c", "ls /data; cat /data/mrn.txt; sleep 60"], memory="16m",
                      volumes={volume: "/data"})
    assert "SYN-7" not in thief.logs() and thief.exec(["ls", "/data"]).output == "", "the volume is ben's own, empty"
    # raw HTTP with ben's token and ana's names
    for method, path, body in [("GET", f"containers/{pump.name}", None),
                               ("POST", f"containers/{pump.name}/exec", {"argv": ["cat", "/data/mrn.txt"]}),
                               ("GET", f"containers/{pump.name}/logs", None),
                               ("GET", f"containers/{pump.name}/archive?path=/data/mrn.txt", None),
                               ("GET", f"containers/{pump.name}/top", None),
                               ("POST", f"containers/{pump.name}/stop", {}),
                               ("POST", f"containers/{pump.name}/kill", {}),
                               ("DELETE", f"containers/{pump.name}", None),
                               ("PUT", f"containers/{pump.name}/archive?path=/tmp", None)]:
        r = raw(broker_url, "tok-ben", method, path, json=body)
        assert r.status_code == 404 and r.json()["error"] == "not_found", (method, path, r.text)
        assert f"no lab container {pump.name} of learner {BEN}" in r.json()["message"], r.text
    ana_ref = LabRef("secrets", ANA, "0123456789ab", "kernel", "1").to_wire()
    for path, body in [("labs/open", {"ref": ana_ref, "reclaim": True}),
                       ("labs/run", {"ref": ana_ref, "request": RunRequest("x", "careops/lab-runtime:latest").to_wire()}),
                       ("labs/containers", {"ref": ana_ref}), ("labs/volume", {"ref": ana_ref, "name": "ward-db"})]:
        r = raw(broker_url, "tok-ben", "POST", path, json=body)
        assert r.status_code == 403 and r.json()["error"] == "policy", (path, r.text)
        assert f"you are learner {BEN}" in r.json()["message"] or f"belongs to learner {ANA}" in r.json()["message"]
    r = raw(broker_url, "tok-ben", "GET", f"resources?learner={ANA}")
    assert r.status_code == 403 and f"labs of {ANA} are not yours" in r.json()["message"]
    # the hub's own containers are not lab containers: nobody reaches them through the broker
    r = raw(broker_url, "tok-ben", "POST", "containers/careops-hub/exec", json={"argv": ["id"]})
    assert r.status_code == 404
    # ana's container is untouched
    assert pump.status == "running" and pump.exec("cat /data/mrn.txt").output == "SYN-7\n"
    lab_b.close()
    as_learner("ana")
    lab_a.close()


@pytest.mark.parametrize("request_body, status, kind, message", [
    ({"privileged": True}, 403, "policy", "'privileged' is refused: lab containers never run privileged"),
    ({"network_mode": "host"}, 403, "policy", "'network_mode' is refused"),
    ({"mounts": [{"Source": "/", "Target": "/host"}]}, 403, "policy", "'mounts' is refused"),
    ({"binds": {"/var/run/docker.sock": "/var/run/docker.sock"}}, 403, "policy", "may never be mounted"),
    ({"binds": {"/etc": "/host-etc"}}, 403, "policy", "cannot be mounted: on the workshop host"),
    ({"image": "careops/hub:latest"}, 403, "policy", "image careops/hub:latest is not one of the course's images"),
    ({"image": "careops/grader:latest"}, 403, "policy", "not one of the course's images"),
    ({"cap_add": ["SYS_ADMIN"]}, 403, "policy", "SYS_ADMIN are not allowed"),
    ({"limits": {"memory": 1024 * 2**20}}, 429, "quota", "would bring your lab containers to 1 GiB"),
    ({"image": "careops/does-not-exist:1"}, 403, "policy", "is not one of the course's images"),
    ({"image": f"careops-learner/adt:{ANA}-0000000000"}, 409, "lab", "is not on this engine"),
])
def test_requests_outside_the_lab_api_are_refused_with_a_clear_message(broker_url, request_body, status, kind,
                                                                       message) -> None:
    ref = LabRef("refusals", ANA, "0123456789ab", "kernel", "1")
    assert raw(broker_url, "tok-ana", "POST", "labs/open", json={"ref": ref.to_wire(), "reclaim": True}).ok
    body = {**RunRequest("bad", "careops/lab-runtime:latest").to_wire(), **request_body}
    r = raw(broker_url, "tok-ana", "POST", "labs/run", json={"ref": ref.to_wire(), "request": body})
    assert (r.status_code, r.json()["error"]) == (status, kind), r.text
    assert message in r.json()["message"] and r.json()["fix"], r.text
    assert find("refusals", ANA, client=engine.client())[0].kind == "network", "nothing was started"
    reset("refusals", ANA, client=engine.client())


def test_the_quota_counts_a_learners_containers_in_every_lab(as_learner) -> None:
    as_learner("ana")
    with Lab("quota-a") as a, Lab("quota-b") as b:
        for n in range(2):
            a.run(name=f"c{n}", command=["sleep", "60"], memory="16m")
            b.run(name=f"c{n}", command=["sleep", "60"], memory="16m")
        with pytest.raises(QuotaExceeded, match="would make 5 lab containers; your share of this workshop host is 4"):
            a.run(name="c9", command=["sleep", "60"], memory="16m")
        a.run(name="c0", command=["sleep", "60"], memory="16m")  # replacing one fits
        assert BrokerBackend.from_env().whoami()["usage"]["containers"] == 4


def test_requests_without_a_learners_token_or_outside_the_api_are_refused(broker_url) -> None:
    assert raw(broker_url, None, "GET", "whoami").status_code == 401
    r = raw(broker_url, "not-a-token", "GET", "whoami")
    assert r.status_code == 403 and "does not know this token" in r.json()["message"]
    r = raw(broker_url, "tok-svc", "GET", "whoami")
    assert r.status_code == 403 and "only learners' servers use the lab broker" in r.json()["message"]
    for method, path in [("POST", "../../v1.43/containers/create"), ("GET", "../../_ping"), ("POST", "exec/abc/start"),
                         ("POST", "containers/create"), ("GET", "labs/open")]:
        r = requests.request(method, broker_url + "api/v1/" + path, headers={"Authorization": "token tok-ana"},
                             json={"Image": "alpine", "HostConfig": {"Privileged": True}}, timeout=30)
        assert r.status_code in (404, 405), (method, path, r.status_code)
    r = requests.post(broker_url.replace("/services/lab-broker/", "/v1.43/containers/create"), json={}, timeout=30)
    assert r.status_code == 404 and "never the engine's own API" in r.json()["message"]
    with pytest.raises(BrokerError, match="refused"):
        BrokerBackend(broker_url, "not-a-token").whoami()


def test_module_2_builds_and_runs_the_learners_image_through_the_broker(as_learner, broker_url) -> None:
    from careops.checks import containerize as check
    from careops.containerize.live import run_service

    as_learner("ana")
    image = check.build((SOLUTION / "Dockerfile").read_text(), (SOLUTION / ".dockerignore").read_text(), progress=False)
    assert image.ok, image.reason
    assert image.tag.startswith(f"careops-learner/adt:{ANA}-")
    with Lab("containerize") as lab:
        adt = run_service(lab, image.tag)
        adt.wait_until("healthy", timeout=60)
        assert adt.exec(["id", "-u"]).output.strip() == "10001"
        as_learner("ben")
        with Lab("containerize") as lab_b:
            with pytest.raises(PolicyViolation, match="not one of the course's images"):
                lab_b.run(image.tag, name="stolen")
        r = raw(broker_url, "tok-ben", "POST", "images/remove", json={"ref": image.tag})
        assert r.status_code == 403, r.text
        as_learner("ana")
    image.remove()
    with pytest.raises(docker.errors.ImageNotFound):
        engine.client().images.get(image.tag)
    # the grader's image holds the solutions: a Dockerfile may not start from it (nor from the hub's)
    for base in ("careops/grader:latest", "careops/hub:latest"):
        refused = check.build(f"FROM {base}\nRUN ls /\n", None, progress=False)
        assert not refused.ok and f"image {base} is not one of the course's images" in refused.reason, refused.reason
        assert refused.log == [] and refused.tag is None


def test_direct_labs_are_unchanged_without_the_broker_variable(monkeypatch) -> None:
    monkeypatch.delenv(BROKER_URL_ENV, raising=False)
    who = f"t-{RUN}"
    with Lab("plain", learner=who) as lab:
        assert isinstance(lab.backend, DirectBackend) and lab.backend.confinement is None
        c = lab.run(name="web", command=["sleep", "30"], ports=[8000], memory="16m")
        assert c.attrs["NetworkSettings"]["Ports"]["8000/tcp"][0]["HostIp"] == "127.0.0.1"
        assert c.raw.name == c.name
    assert find(None, who) == []


def test_files_copied_in_are_a_tar_the_engine_unpacks(as_learner) -> None:
    as_learner("ana")
    with Lab("files") as lab:
        c = lab.run(name="box", command=["sleep", "60"], memory="16m")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("hello.txt")
            info.size = 5
            tar.addfile(info, io.BytesIO(b"hello"))
        c.put_archive("/tmp", buf.getvalue())
        assert c.exec("cat /tmp/hello.txt").output == "hello"
        assert json.loads(json.dumps(c.limits()))["memory"] == 16 * 2**20


def test_a_work_folder_reaches_the_lab_as_a_read_only_copy(as_learner, tmp_path) -> None:
    """Module 4 mounts a work folder; through the broker no folder of the server can be mounted: a copy is."""
    as_learner("ana")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "msg.hl7").write_text("MSH|^~\\&|\r")
    with Lab("copies", workdir=tmp_path) as lab:
        c = lab.run(name="reader", command=["sleep", "60"], memory="16m", binds={tmp_path / "inbox": "/inbox"})
        assert c.exec("cat /inbox/msg.hl7").output.startswith("MSH")
        assert not c.exec("touch /inbox/new", check=False).ok, "the copy is mounted read-only"
        assert [r.kind for r in lab.resources()].count("container") == 1, "the container that filled it is gone"
        with pytest.raises(PolicyViolation, match="outside the lab's work folder"):
            lab.run(name="escape", command=["true"], binds={tmp_path.parent: "/up"})


def test_a_lab_without_a_network_through_the_broker(as_learner) -> None:
    """Lab(name, network=False) (a CI job's lab): no network is made and its containers have none, through the
    broker as on a laptop; a port in such a lab is refused with the fix."""
    as_learner("ana")
    with Lab("offline-job", network=False) as lab:
        assert lab.network_name == "none"
        box = lab.run(name="job", command=["sleep", "60"], memory="16m")
        assert box.exec(["ls", "/sys/class/net"]).output.split() == ["lo"]
        assert [r.kind for r in find("offline-job")] == ["container"]
        with pytest.raises(PolicyViolation, match="in a lab without a network"):
            lab.run(name="web", command=["sleep", "60"], ports=[8080])
    assert find("offline-job") == []
