"""Labs through the lab broker, for real: the hub on this engine, two learners, their servers with no socket.

One hub for the session (``careops workshop up`` with its own name, port and image
tags), taken down with its volumes at the end whatever happens. Everything a learner
does runs inside their own server container, as the learner, with the server's hub
token (careops.workshop.probe.in_server), or in their browser:

* ada runs module 0 (the instructor's notebook: her lab cells, the checks and the
  hidden tests) with nbclient in her server, and module 2's build, run and live check;
* bob leaves a lab running; ada then tries to list, stop, exec into and read it, his
  volume and his notebooks, through careops and with raw HTTP: every attempt fails
  with a clear error, and his lab is untouched;
* requests outside the lab API are refused (privileged, host folders, the socket,
  images that are not the course's, over the quota);
* the broker's overhead: ``Lab.run`` in ada's server ÷ the same on this host
  (median of 5), to build/test-output/workshop/broker.json.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from careops import engine
from careops.apps import workshop as app
from conftest import dismiss_lost_server_dialogs
from careops.images import ensure_images
from careops.lab import find, reset
from careops.workshop import hub
from careops.workshop.api import HubAPI
from careops.workshop.probe import (
    broker_overhead,
    in_server,
    run_notebook,
    server_of,
    solved_notebook,
    start_server,
)
from careops.workshop.settings import WorkshopSettings

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "build" / "test-output" / "workshop"
NAME = f"wsbroker{os.getpid() % 100000}"
ROSTER = "username,role,name\nada,learner,Ada Example\nbob,learner,Bob Example\n"
READY_MS = 180_000
SOLUTION = REPO / "grading" / "references" / "containerize"


@dataclass
class Workshop:
    settings: WorkshopSettings
    api: HubAPI
    passwords: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _own_tags(results) -> dict[str, str]:
    """This run's own names for the images just ensured (by id: what this checkout built), so another checkout
    rebuilding careops/hub:latest at the same time cannot swap them."""
    mine = {}
    for r in results:
        mine[r.name] = f"{r.tag.rsplit(':', 1)[0]}:{NAME}"
        engine.client().images.get(r.image_id).tag(mine[r.name])
    return mine


@pytest.fixture(scope="session")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workshop]:
    """The hub as `make workshop` starts it, with ada's and bob's servers running; always taken down."""
    from careops.apps import release

    release.main(assignments=None)
    tags = _own_tags(ensure_images(["learner", "hub"], progress=False))
    folder = tmp_path_factory.mktemp("roster")
    (folder / "class.csv").write_text(ROSTER)
    settings = WorkshopSettings(name=NAME, port=_free_port(), hub_image=tags["hub"], learner_image=tags["learner"])
    settings.save()
    try:
        assert app.up_main(name=NAME, roster_file=str(folder / "class.csv"), build=False) == 0
        passwords = {}
        for handout in settings.handouts_dir.glob("passwords-*.csv"):
            for line in handout.read_text().splitlines()[1:]:
                user, _role, _name, password = line.split(",")[:4]
                passwords[user] = password
        ws = Workshop(settings, HubAPI.for_workshop(settings), passwords)
        for user in ("ada", "bob"):
            start_server(ws.api, user)
        yield ws
    finally:
        print(hub.down(settings, remove_volumes=True))
        for user in ("ada", "bob", "ada-direct"):
            reset(None, user, client=engine.client())
        for tag in tags.values():  # every image ensured (the base too), by this run's own tag only
            try:
                engine.client().images.remove(tag)  # the tag goes; the image stays
            except docker.errors.APIError:
                pass
        shutil.rmtree(settings.state_dir, ignore_errors=True)


def test_module_0_lab_cells_run_through_the_broker_in_the_learners_server_and_pass(workshop: Workshop) -> None:
    started = time.monotonic()
    result = run_notebook(workshop.settings, "ada", solved_notebook("00-orientation"))
    assert result["env"] == {"CAREOPS_BROKER_URL": True, "JUPYTERHUB_API_TOKEN": True, "DOCKER_HOST": False}
    assert result["socket"] is False, "the learner's server has no engine socket"
    assert result["failed"] is None, result["failed"]
    cells = {c["id"]: c for c in result["cells"]}
    assert not any(c["error"] for c in result["cells"])
    assert "all limits hold" in cells["preflight"]["html"] or "all limits hold" in cells["preflight"]["text"], cells["preflight"]
    assert "careops-ada-orientation-triage-probe" in cells["ex2-run"]["html"] + cells["ex2-run"]["text"]
    # what the notebook left: the orientation lab is closed, night-shift was reset; the probe ran as ada's
    assert find("orientation", "ada", client=engine.client()) == [] and find("night-shift", "ada", client=engine.client()) == []
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"module 0 in ada's server through the broker: {time.monotonic() - started:.1f} s")


_BOB_LEAVES_A_LAB = """
import json, os
from careops.lab import Lab
lab = Lab("orientation")
probe = lab.run(name="triage-probe", command=["sleep", "900"], memory="32m", user="0", volumes={"ward-db": "/data"})
probe.exec("echo SYN-BEN-7 > /data/mrn.txt")
web = lab.run(name="web", command=["python3", "-m", "http.server", "8000"], ports=[8000], memory="64m")
print(json.dumps({"probe": probe.name, "web": web.name, "ip": web.ip(), "volume": lab.volume("ward-db"),
                  "network": lab.network_name}))
os._exit(0)  # leave the lab running, as a kernel in the middle of an exercise would
"""

_ADA_TRIES = r"""
import json, os, socket, sys, urllib.error, urllib.request
import docker.errors
from careops.errors import CareOpsError
from careops.lab import Lab, find, reset
from careops.lab.backend import LabRef, ResourceRecord, RunRequest
from careops.lab.broker import BrokerContainer
from careops.lab.connect import lab_backend

bob = json.loads(sys.argv[1])
results = {}

def attempt(what, fn):
    try:
        fn()
        results[what] = ["allowed", ""]
    except (CareOpsError, docker.errors.DockerException) as exc:
        results[what] = [type(exc).__name__, str(exc)]

backend = lab_backend()
attempt("open bob's lab", lambda: Lab("orientation", learner="bob"))
attempt("list bob's labs", lambda: find(learner="bob"))
attempt("reset bob's labs", lambda: reset("orientation", "bob"))
results["own listing"] = sorted({r.learner for r in find()})
theirs = BrokerContainer(backend, {"container": {"Name": "/" + bob["probe"], "Id": bob["probe"]}})
attempt("inspect bob's container", theirs.reload)
attempt("exec into bob's container", lambda: theirs.exec_open(["cat", "/data/mrn.txt"], timeout=5, env={}, user="",
                                                               workdir=None))
attempt("read bob's logs", lambda: theirs.logs(10, True, True))
attempt("read bob's files", lambda: theirs.get_archive("/data/mrn.txt"))
attempt("stop bob's container", lambda: theirs.stop(1))
attempt("remove bob's container", lambda: backend.call("DELETE", "api/v1/containers/" + bob["probe"], what="remove"))
removed, failed = backend.remove([ResourceRecord("volume", bob["volume"], {}, "-"),
                                  ResourceRecord("network", bob["network"], {}, "-"),
                                  ResourceRecord("container", bob["web"], {}, "running")])
results["remove bob's resources"] = [[r.name for r in removed], [why for _, why in failed]]
# his volume and his notebooks' volume, asked for by name: the lab makes them ada's own, empty volumes
mine = Lab("borrow")
c = mine.run(name="reader", command=["sleep", "60"], memory="16m", user="0",
             volumes={bob["volume"]: "/theirs", sys.argv[4]: "/notebooks"})
results["volumes mounted"] = [m["Name"] for m in c.attrs["Mounts"]]
results["what the reader sees"] = c.exec("ls -A /theirs /notebooks", check=False).output
# his lab network is not hers: no route to his web server
s = socket.socket(); s.settimeout(3)
results["connect to bob's web"] = s.connect_ex((bob["ip"], 8000))
mine.close()
# raw HTTP with ada's token and bob's names
base = os.environ["CAREOPS_BROKER_URL"] + "api/v1/"
token = os.environ["JUPYTERHUB_API_TOKEN"]
def raw(method, path, body=None, token=token):
    req = urllib.request.Request(base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "token " + token, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return [r.status, r.read().decode()[:3000]]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()[:3000]]
ref = LabRef("orientation", "bob", "0123456789ab", "x", "1").to_wire()
own = LabRef("refused", "ada", "0123456789ab", socket.gethostname(), str(os.getpid())).to_wire()
results["raw"] = {
    "inspect": raw("GET", "containers/" + bob["probe"]),
    "exec": raw("POST", "containers/" + bob["probe"] + "/exec", {"argv": ["cat", "/data/mrn.txt"]}),
    "archive": raw("GET", "containers/" + bob["probe"] + "/archive?path=/data/mrn.txt"),
    "logs": raw("GET", "containers/" + bob["probe"] + "/logs"),
    "stop": raw("POST", "containers/" + bob["probe"] + "/stop", {}),
    "delete": raw("DELETE", "containers/" + bob["probe"]),
    "open his lab": raw("POST", "labs/open", {"ref": ref, "reclaim": True}),
    "run in his lab": raw("POST", "labs/run", {"ref": ref, "request": RunRequest("x", "careops/lab-runtime:latest").to_wire()}),
    "list his": raw("GET", "resources?learner=bob"),
    "the hub": raw("POST", "containers/" + sys.argv[2] + "/exec", {"argv": ["id"]}),
    "docker api": raw("POST", "../../../v1.43/containers/create", {"Image": "alpine", "HostConfig": {"Privileged": True}}),
    "no token": raw("GET", "whoami", token=""),
}
raw("POST", "labs/open", {"ref": own, "reclaim": True})
keeper = raw("POST", "labs/run", {"ref": own, "request": RunRequest("keeper", "careops/lab-runtime:latest",
                                                                   command=["sleep", "60"]).to_wire()})
def run(**changes):
    return raw("POST", "labs/run", {"ref": own, "request": {**RunRequest("bad", "careops/lab-runtime:latest").to_wire(), **changes}})
results["refused"] = {
    "privileged": run(privileged=True),
    "host folder": run(binds={"/home/jovyan/workspace": "/w"}),
    "socket": run(binds={"/var/run/docker.sock": "/var/run/docker.sock"}),
    "host network": run(network_mode="host"),
    "unknown image": run(image="alpine:latest"),
    "hub image": run(image=sys.argv[3]),
    "quota": run(limits={"memory": 2048 * 2**20}),
}
raw("POST", "resources/remove", {"resources": [{"kind": "container", "name": "careops-ada-refused-keeper"},
                                               {"kind": "network", "name": "careops-ada-refused"}]})
print(json.dumps(results))
"""


def test_a_learner_cannot_list_stop_exec_into_or_read_another_learners_lab(workshop: Workshop) -> None:
    _, out = in_server(workshop.settings, "bob", _BOB_LEAVES_A_LAB)
    bob = json.loads(out.strip().splitlines()[-1])
    assert bob["probe"] == "careops-bob-orientation-triage-probe"
    notebooks = workshop.settings.workspace_volume_template.format(username="bob")
    _, out = in_server(workshop.settings, "ada", _ADA_TRIES, json.dumps(bob), workshop.settings.hub_container,
                       workshop.settings.hub_image, notebooks)
    got = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(got, indent=1))
    for what in ("open bob's lab", "list bob's labs", "reset bob's labs"):
        assert got[what][0] == "PolicyViolation" and "you are learner ada: labs of bob are not yours" in got[what][1], got[what]
    assert got["own listing"] in ([], ["ada"])
    for what in ("inspect bob's container", "exec into bob's container", "read bob's logs", "read bob's files",
                 "stop bob's container", "remove bob's container"):
        assert got[what][0] == "NotFound" and f"no lab container {bob['probe']} of learner ada" in got[what][1], got[what]
    removed, why = got["remove bob's resources"]
    assert removed == [] and len(why) == 3 and all("not one of your lab resources" in w for w in why), why
    assert sorted(got["volumes mounted"]) == sorted([f"careops-ada-borrow-{bob['volume']}",
                                                     f"careops-ada-borrow-{notebooks}"]), got["volumes mounted"]
    assert "mrn.txt" not in got["what the reader sees"] and ".ipynb" not in got["what the reader sees"]
    assert got["connect to bob's web"] != 0, "ada's server has no route to bob's lab network"
    raw = got["raw"]
    for what in ("inspect", "exec", "archive", "logs", "stop", "delete", "the hub"):
        status, body = raw[what]
        assert status == 404 and "no lab container" in body and "of learner ada" in body, (what, raw[what])
    for what in ("open his lab", "run in his lab", "list his"):
        status, body = raw[what]
        assert status == 403 and json.loads(body)["error"] == "policy" and "bob" in body, (what, raw[what])
    assert raw["docker api"][0] == 404 and "never the engine's own API" in raw["docker api"][1]
    assert raw["no token"][0] == 401
    refused = {k: (v[0], json.loads(v[1])) for k, v in got["refused"].items()}
    assert refused["privileged"][0] == 403 and "'privileged' is refused" in refused["privileged"][1]["message"]
    assert refused["host folder"][0] == 403 and "cannot be mounted: on the workshop host" in refused["host folder"][1]["message"]
    assert refused["socket"][0] == 403 and "may never be mounted" in refused["socket"][1]["message"]
    assert refused["host network"][0] == 403 and "'network_mode' is refused" in refused["host network"][1]["message"]
    for what in ("unknown image", "hub image"):
        assert refused[what][0] == 403 and "is not one of the course's images" in refused[what][1]["message"], refused[what]
    assert refused["quota"][0] == 429 and "your share of this workshop host is 2 GiB" in refused["quota"][1]["message"]
    assert all(v[1]["fix"] for v in refused.values())
    # bob's lab is untouched
    cl = engine.client()
    probe = cl.containers.get(bob["probe"])
    assert probe.status == "running" and probe.exec_run(["cat", "/data/mrn.txt"]).output == b"SYN-BEN-7\n"
    # ... and his notebooks are refused at the hub as before (phase 1), with ada's own server token
    _, out = in_server(workshop.settings, "ada", (
        "import os, urllib.request, urllib.error\n"
        f"url = 'http://{workshop.settings.server_prefix}-bob:8888/user/bob/api/contents'\n"
        "req = urllib.request.Request(url, headers={'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN']})\n"
        "try:\n    print(urllib.request.urlopen(req, timeout=10).status)\n"
        "except urllib.error.HTTPError as e:\n    print(e.code)\n"))
    assert out.strip() == "403"
    reset("orientation", "bob", client=cl)


_MODULE_2 = r"""
import base64, json, sys
from careops.checks import containerize as check
from careops.containerize.live import http_json, run_service
from careops.hl7 import MllpClient, build_adt
from careops.lab import Lab

dockerfile, ignore = (base64.b64decode(a).decode() for a in sys.argv[1:3])
image = check.build(dockerfile, ignore, progress=False)
result = {"tag": image.tag, "ok": image.ok}
with Lab("containerize") as lab:
    adt = run_service(lab, image.tag)
    adt.wait_until("healthy", timeout=60)
    port = adt.port(2575)
    with MllpClient("127.0.0.1", port) as desk:
        ack = desk.send(build_adt("A01", control_id="DESK-1", mrn="SYN-0201", family="Testperson", given="Robin",
                                  birth_date="19900101", sex="U"))
    result.update(ack=ack.code, port=port, health=http_json(adt, "/health"), published=adt.attrs["NetworkSettings"]["Ports"])
report = check.live.report(dockerfile, ignore)
result["live"] = [[c.passed, c.message + " " + c.found()] for c in report.criteria]
image.remove()
print(json.dumps(result))
"""


def test_module_2_builds_runs_and_checks_the_learners_image_through_the_broker(workshop: Workshop) -> None:
    started = time.monotonic()
    args = [base64.b64encode((SOLUTION / name).read_bytes()).decode() for name in ("Dockerfile", ".dockerignore")]
    _, out = in_server(workshop.settings, "ada", _MODULE_2, *args)
    got = json.loads(out.strip().splitlines()[-1])
    assert got["ok"] and got["tag"].startswith("careops-learner/adt:ada-"), got
    assert got["ack"] == "AA" and got["health"][0] == 200, got
    assert not any(got["published"].values()), "nothing is published on the host: the server reaches the lab network"
    failed = [text for passed, text in got["live"] if not passed]
    assert not failed and len(got["live"]) >= 10, failed
    with pytest.raises(docker.errors.ImageNotFound):
        engine.client().images.get(got["tag"])
    print(f"module 2 build, run and live check in ada's server: {time.monotonic() - started:.1f} s")


@pytest.mark.parametrize("module, through", [("04-synthetic-data-testing", None),
                                              ("03-safe-deployments", "test_blue_green")],
                         ids=["04-synthetic-data-testing", "03-safe-deployments"])
def test_modules_3_and_4_run_their_labs_through_the_broker(workshop: Workshop, module: str,
                                                          through: str | None) -> None:
    """Module 4's lab (a work folder copied in, MLLP over the relay) and module 3's rollouts under traffic: its
    router, the naive replace and the blue/green rollout with its check, then its clean-up. Module 3's later drills
    (canary, rollback, rolling update) make the same lab calls through the broker -- run, exec (the router's
    reloads), logs, archives, remove -- and run whole in tests/test_notebooks.py and tests/test_grade_modules.py."""
    started = time.monotonic()
    result = run_notebook(workshop.settings, "bob", solved_notebook(module, through=through), timeout=900)
    assert result["failed"] is None, result["failed"]
    print(f"{module} in bob's server through the broker: {time.monotonic() - started:.1f} s")


def test_a_learner_runs_a_lab_cell_in_the_browser(workshop: Workshop, chromium: Any) -> None:
    """In JupyterLab, as a learner would: a new notebook, one cell that opens a lab and runs a container in it."""
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        dismiss_lost_server_dialogs(page)
        page.goto(workshop.settings.url + "hub/login?next=" + urllib.parse.quote("/user/bob/lab"))
        page.fill("#username_input", "bob")
        page.fill("#password_input", workshop.passwords["bob"])
        page.click("#login_submit")
        page.wait_for_url("**/user/bob/lab**", timeout=READY_MS)
        for _attempt in range(3):
            # Chromium drops requests in flight when this host's interfaces change (ERR_NETWORK_CHANGED), and
            # the engine adds one for every container anyone starts: a learner elsewhere never sees it; the
            # test reloads, as a learner would (see test_workshop_hub.py).
            page.locator("#jp-main-dock-panel").wait_for(timeout=READY_MS)
            page.locator(".jp-DirListing-content .jp-DirListing-item").first.wait_for(timeout=READY_MS)
            page.wait_for_timeout(1000)
            if not page.locator("dialog.jp-Dialog").count():
                break
            page.reload()
        page.locator("[data-command='launcher:create']").first.click(timeout=READY_MS)  # the file browser's +
        page.locator(".jp-Launcher:visible .jp-LauncherCard[data-category='Notebook']").first.click(timeout=READY_MS)
        expect(page.locator(".jp-StatusBar-TextItem", has_text="Idle").first).to_be_visible(timeout=READY_MS)
        cell = page.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").first
        cell.click(timeout=READY_MS)
        page.keyboard.insert_text("from careops.lab import Lab\nlab = Lab('browser')\n"
                                  "c = lab.run(name='probe', command=['sleep', '60'], memory='32m')\n"
                                  "print('RESULT', c.name, c.status, c.exec(['id', '-u']).output.strip())\n"
                                  "lab.close()")
        output = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").first
        OUT.mkdir(parents=True, exist_ok=True)
        try:
            # a run request the kernel never got (its websocket dropped with the host's network change) leaves the
            # prompt at [ ]: the learner presses run again; a cell at [*] is running and is left to finish
            prompt = page.locator(".jp-NotebookPanel:visible .jp-Cell .jp-InputPrompt").first
            pressed = 0.0
            deadline = time.monotonic() + READY_MS / 1000
            while time.monotonic() < deadline and not output.count():
                if prompt.inner_text().strip() in ("[ ]:", "[\u00a0]:") and time.monotonic() - pressed > 20:
                    cell.click(timeout=READY_MS)
                    page.keyboard.press("Control+Enter")
                    pressed = time.monotonic()
                page.wait_for_timeout(1000)
            expect(output).to_contain_text("RESULT careops-bob-browser-probe running 1000", timeout=READY_MS)
            # the line is printed before the cell's last statement, lab.close(): wait for the cell to finish
            expect(prompt).to_have_text(re.compile(r"\[\d+\]:"), timeout=READY_MS)
        finally:
            page.screenshot(path=str(OUT / "broker-lab-cell.png"))
    finally:
        context.close()
    assert find("browser", "bob", client=engine.client()) == []


def test_broker_overhead_of_lab_run(workshop: Workshop) -> None:
    figures = broker_overhead(workshop.settings, "ada", repeat=5)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "broker.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures, indent=1))
    assert figures["ratio"] > 0  # a benchmark, not a timed test: `make bench` reports it against the 1.3x goal
    assert server_of(workshop.settings, "ada").status == "running"


def test_down_removes_the_lab_containers_the_broker_started_and_keeps_their_volumes(workshop: Workshop) -> None:
    in_server(workshop.settings, "ada", "import os\nfrom careops.lab import Lab\nlab = Lab('left-open')\n"
                                       "lab.run(name='pump', command=['sleep', '600'], memory='16m', volumes={'db': '/d'})\n"
                                       "os._exit(0)\n")
    cl = engine.client()
    left = {(r.kind, r.name) for r in find("left-open", "ada", client=cl)}
    assert left == {("container", "careops-ada-left-open-pump"), ("network", "careops-ada-left-open"),
                    ("volume", "careops-ada-left-open-db")}
    report = hub.down(workshop.settings)
    assert {"lab container careops-ada-left-open-pump", "lab network careops-ada-left-open"} <= set(report.removed)
    assert "careops-ada-left-open-db" in report.kept and not report.failed, str(report)
    assert {(r.kind, r.name) for r in find("left-open", "ada", client=cl)} == {("volume", "careops-ada-left-open-db")}
