"""Run Python inside a learner's server, as the learner, and time the lab broker against the engine itself.

What an instructor (or a test) uses to see the workshop as a learner does: the
code runs in the learner's own careops/learner container, as uid 1000, with
the server's environment (its hub token, CAREOPS_BROKER_URL), so every lab call
goes through the lab broker exactly as a notebook cell's would.

``broker_overhead`` is the figure of ``careops bench``: ``Lab.run`` (start a lab
container and wait until it runs) in a learner's server through the broker,
divided by the same calls on this host straight to the engine.
"""
from __future__ import annotations

import base64
import http.cookiejar
import json
import re
import statistics
import time
import urllib.error
import urllib.parse
import urllib.request

import docker

from careops import engine
from careops.paths import repo_root
from careops.workshop.api import HubAPI
from careops.workshop.hub import server_containers
from careops.workshop.labels import LABEL_HUB_USER
from careops.workshop.settings import WorkshopError, WorkshopSettings

#: uid:gid of the learner inside careops/learner
AS_LEARNER = "1000:1000"


def start_server(api: HubAPI, user: str, *, timeout: float = 180.0) -> None:
    """Ask the hub to start ``user``'s server (as an instructor's Start does) and wait until it is ready."""
    api.post(f"/users/{user}/server")
    deadline = time.monotonic() + timeout
    while not ((api.get(f"/users/{user}").get("servers") or {}).get("") or {}).get("ready"):
        if time.monotonic() > deadline:
            raise WorkshopError(f"{user}'s server was not ready within {timeout:.0f} s",
                                fix="read the hub's log (docker logs <workshop>-hub); spawns can be slow on a busy host")
        time.sleep(0.5)


def server_of(settings: WorkshopSettings, user: str, cl: docker.DockerClient | None = None):
    """The running server container of hub user ``user``."""
    found = [c for c in server_containers(settings, cl) if c.labels.get(LABEL_HUB_USER) == user and c.status == "running"]
    if not found:
        raise WorkshopError(f"{user} has no running server in workshop {settings.name}",
                            fix=f"start it: log in as {user}, or POST /hub/api/users/{user}/server")
    return found[0]


def in_server(settings: WorkshopSettings, user: str, script: str, *args: str, check: bool = True) -> tuple[int, str]:
    """Run ``python -c script args...`` in ``user``'s server as the learner; (exit code, output)."""
    result = server_of(settings, user).exec_run(["python", "-c", script, *args], user=AS_LEARNER, demux=False)
    output = result.output.decode("utf-8", "replace")
    if check and result.exit_code != 0:
        raise WorkshopError(f"the script in {user}'s server exited {result.exit_code}: {output[-3000:]}",
                            fix="read its output above")
    return result.exit_code, output


def solved_notebook(module: str, *, through: str | None = None) -> str:
    """The module's source notebook with its answers and without its hidden tests: what a learner who solved it
    runs (the hidden tests need the grader's references, which a learner's server never holds).

    ``through``: the grade id of a cell to stop after; the notebook's last cell (its lab clean-up) still runs, so a
    learner who stops there leaves nothing behind."""
    nb = json.loads((repo_root() / "notebooks" / module / f"{module.split('-', 1)[1]}.ipynb").read_text("utf-8"))
    if through is not None:
        ids = [(c.get("metadata") or {}).get("nbgrader", {}).get("grade_id") for c in nb["cells"]]
        if through not in ids:
            raise ValueError(f"{module} has no cell with grade id {through!r}; its ids: {[i for i in ids if i]}")
        nb["cells"] = nb["cells"][: ids.index(through) + 1] + nb["cells"][-1:]
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if "### BEGIN HIDDEN TESTS" in text:
            text = re.sub(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", "", text, flags=re.DOTALL)
            cell["source"] = text.splitlines(keepends=True)
    return json.dumps(nb)


_RUN_NOTEBOOK = """
import base64, json, os, sys, tempfile
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

nb = nbformat.reads(base64.b64decode(sys.argv[1]).decode(), as_version=4)
if sys.argv[3:]:
    os.environ["JPY_SESSION_NAME"] = sys.argv[3]  # the kernel's notebook, as the server tells its kernels
folder = tempfile.mkdtemp(prefix="careops-nb-")
client = NotebookClient(nb, timeout=int(sys.argv[2]), kernel_name="python3", resources={"metadata": {"path": folder}})
try:
    client.execute()
    failed = None
except CellExecutionError as exc:
    failed = str(exc)[:1500] + " ... " + str(exc)[-1500:]
outputs = []
for cell in nb.cells:
    if cell.cell_type == "code":
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        html = "".join(o.get("data", {}).get("text/html", "") for o in cell.get("outputs", []) if "data" in o)
        outputs.append({"id": cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id"), "text": text[-2000:],
                        "html": html[:30000], "error": any(o.get("output_type") == "error" for o in cell.get("outputs", []))})
print(json.dumps({"failed": failed, "cells": outputs, "env": {k: bool(os.environ.get(k)) for k in
      ("CAREOPS_BROKER_URL", "JUPYTERHUB_API_TOKEN", "DOCKER_HOST")}, "socket": os.path.exists("/var/run/docker.sock")}))
"""


def run_notebook(settings: WorkshopSettings, user: str, text: str, timeout: int = 600, *,
                 path: str | None = None) -> dict:
    """Run the notebook ``text`` with nbclient in ``user``'s server, as the learner (its lab cells through the
    broker): {"failed": None or the error, "cells": [{id, text, html, error}], "env": {...}, "socket": bool}.
    ``path``: the notebook's path in the server, so its checks report under its assignment on the dashboard."""
    _, out = in_server(settings, user, _RUN_NOTEBOOK, base64.b64encode(text.encode()).decode(), str(timeout),
                       *([path] if path else []))
    return json.loads(out.strip().splitlines()[-1])


def memory_mib(container) -> float:
    """A container's memory as `docker stats` shows it: usage minus the page cache (cgroup v1 and v2)."""
    stats = container.stats(stream=False)["memory_stats"]
    detail = stats.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", detail.get("cache", 0)))
    return (stats["usage"] - cache) / 2**20


def login_to_ready(settings: WorkshopSettings, user: str, password: str, *, timeout: float = 180.0) -> float:
    """Seconds from posting the hub's login form as ``user`` (a fresh session, their server stopped) until their
    JupyterLab answers: the lab page and its contents API listing the workspace, as a browser's first load asks."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(settings.url + "hub/login", timeout=30).read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    data = urllib.parse.urlencode({"username": user, "password": password, "_xsrf": xsrf}).encode()
    started = time.monotonic()
    landed = opener.open(settings.url + "hub/login", data=data, timeout=timeout)  # follows /hub/spawn-pending...
    landed.read()
    lab = settings.url + f"user/{user}/lab"
    while True:
        try:
            with opener.open(lab, timeout=30) as page:
                if page.status == 200 and page.url.startswith(lab) and b"jupyter-config-data" in page.read():
                    xsrf = next((c.value for c in jar if c.name == "_xsrf" and c.path.startswith(f"/user/{user}")),
                                "")
                    req = urllib.request.Request(settings.url + f"user/{user}/api/contents",
                                                 headers={"X-XSRFToken": xsrf})
                    with opener.open(req, timeout=30) as listing:
                        if listing.status == 200 and json.loads(listing.read()).get("content"):
                            return time.monotonic() - started
        except urllib.error.HTTPError as exc:
            if exc.code not in (404, 424, 502, 503):
                raise WorkshopError(f"{user}'s JupyterLab answered {exc.code} after login",
                                    fix="read the hub's log (docker logs <workshop>-hub)") from exc
        if time.monotonic() - started > timeout:
            raise WorkshopError(f"{user}'s JupyterLab was not ready {timeout:.0f} s after login",
                                fix="read the hub's log (docker logs <workshop>-hub); spawns can be slow on a busy host")
        time.sleep(0.25)


def lab_run_seconds(repeat: int = 5, *, lab: str = "broker-bench", learner: str | None = None) -> list[float]:
    """Seconds of each of ``repeat`` ``Lab.run`` calls (the lab image, sleep 60, 32 MiB), in one lab."""
    from careops.images.catalog import LAB_IMAGE
    from careops.lab import Lab

    seconds = []
    with Lab(lab, learner=learner) as opened:
        opened.run(LAB_IMAGE, name="warm-up", command=["sleep", "60"], memory="32m").remove()
        for n in range(repeat):
            started = time.perf_counter()
            opened.run(LAB_IMAGE, name=f"c{n}", command=["sleep", "60"], memory="32m")
            seconds.append(time.perf_counter() - started)
    return seconds


_IN_SERVER = """
import json, re, sys
from careops.lab.connect import lab_backend
from careops.workshop.probe import lab_run_seconds

backend, work = lab_backend(), []
plain_call = backend.call

def call(method, path, **kwargs):  # the broker's own time for each start (its Server-Timing header)
    response = plain_call(method, path, **kwargs)
    if path.endswith("labs/run"):
        work.append(float(re.search(r"work;dur=([0-9.]+)", response.headers.get("Server-Timing", "")).group(1)) / 1000)
    return response

backend.call = call
print(json.dumps({"runs": lab_run_seconds(int(sys.argv[1])), "work": work[1:]}))
"""


def broker_overhead(settings: WorkshopSettings, user: str, repeat: int = 5) -> dict[str, object]:
    """``Lab.run`` ``repeat`` times through the broker (in ``user``'s server) and direct (here): medians and ratio.

    ``added_ms``: what the broker itself adds to one start (the time in the server minus the broker's own work on
    the engine, which its Server-Timing header reports): HTTP, the hub's word on the token, the policy's checks.
    """
    engine.client()  # this host's engine answers before anything is timed
    _, out = in_server(settings, user, _IN_SERVER, str(repeat))
    measured = json.loads(out.strip().splitlines()[-1])
    broker, work = measured["runs"], measured["work"]
    direct = lab_run_seconds(repeat, learner=f"{user}-direct")
    b, d = statistics.median(broker), statistics.median(direct)
    added = statistics.median(run - w for run, w in zip(broker, work)) * 1000
    return {"broker_median_s": round(b, 3), "direct_median_s": round(d, 3), "ratio": round(b / d, 2),
            "added_ms": round(added, 1), "broker_runs": [round(x, 3) for x in broker],
            "direct_runs": [round(x, 3) for x in direct]}
