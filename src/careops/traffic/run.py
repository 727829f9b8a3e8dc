"""Run the traffic generator from a container on the lab network and read back what it recorded.

Why a container: the router and the services are only reachable on the lab's
own network, and the traffic must cross the router the way a ward system's
would. The driver (``careops.traffic.driver``, standard library only) and its
plan are copied into a lab-runtime container; its JSON-lines record comes back
as a pandas DataFrame, one row per attempt.
"""
from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from careops import legacy_adt
from careops.errors import LabError
from careops.hl7 import build_adt
from careops.images.catalog import LAB_IMAGE
from careops.lab import Lab
from careops.lab.container import LabContainer
from careops.progress import Progress
from careops.report import theme

DRIVER_DIR = "/tmp/careops-traffic"
#: while this file exists in the traffic container, its MLLP channel holds its messages (TrafficRun.hold)
HOLD_FILE = f"{DRIVER_DIR}/hold"
#: once this file exists, the MLLP channel sends nothing new (TrafficRun.stop)
STOP_FILE = f"{DRIVER_DIR}/stop"
DRIVER_UID = 1000
COLUMNS = ["kind", "seq", "id", "attempt", "t_sched", "t_send", "latency_ms", "status", "ok", "version", "upstream",
           "error"]
GIVEN = ("Alex", "Sam", "Robin", "Kim", "Jo", "Chris", "Noa", "Lee")


@dataclass
class TrafficPlan:
    """What to send: HTTP GETs per second, MLLP ADT messages per second, for how long, through which host.

    HTTP is open loop with ``http_workers`` connections at most: a request that
    waited longer than the client timeout (5 s) for a free connection is
    recorded as failed ("timeout") without being sent, as a real client would
    have given up.

    ``target`` is a lab container's short name (normally the router). Control
    ids are ``<prefix>-<n>`` so a run's messages can be found in the database.
    """

    duration: float = 20.0
    http_rate: float = 100.0
    mllp_rate: float = 10.0
    target: str = "router"
    http_port: int = 8080
    mllp_port: int = 2575
    http_workers: int = 32
    prefix: str = field(default_factory=lambda: "TR-" + secrets.token_hex(3).upper())
    #: seconds after ``duration`` the MLLP sender keeps resending an unacknowledged message
    grace: float = 20.0
    #: MSH-7 of each message is its scheduled time (when the ward created it), as a sending system stamps it
    stamp_created: bool = False

    def messages(self) -> list[tuple[str, str]]:
        """(control id, ADT^A01 text) for every message of the run: synthetic patients only."""
        out = []
        for i in range(int(self.mllp_rate * self.duration)):
            control_id = f"{self.prefix}-{i:05d}"
            mrn = f"SYN-{self.prefix[3:]}{i:05d}"
            out.append((control_id, build_adt("A01", control_id=control_id, mrn=mrn, family="Testperson",
                                              given=GIVEN[i % len(GIVEN)], birth_date="19800101", sex="F")))
        return out

    def paths(self) -> list[str]:
        """Half health checks, half patient look-ups (of patients this run admits; early ones are 404s), in a
        shuffled order: a strict alternation would line up with the router's round robin and send a 25 %
        canary only health checks."""
        mrns = [f"SYN-{self.prefix[3:]}{i:05d}" for i in range(max(1, int(self.mllp_rate * self.duration)))]
        paths = [p for i in range(100) for p in (legacy_adt.HEALTH_PATH, f"/patients/{mrns[(i * 7) % len(mrns)]}")]
        random.Random(self.prefix).shuffle(paths)
        return paths

    def driver_plan(self) -> dict[str, Any]:
        return {
            "out": f"{DRIVER_DIR}/traffic.jsonl",
            "duration": self.duration,
            "http": {"host": self.target, "port": self.http_port, "rate": self.http_rate, "paths": self.paths(),
                     "workers": self.http_workers},
            "mllp": {"host": self.target, "port": self.mllp_port, "rate": self.mllp_rate,
                     "messages": self.messages(), "grace": self.grace, "stamp": self.stamp_created,
                     "hold_file": HOLD_FILE, "stop_file": STOP_FILE},
        }


def read_frame(lines: str | bytes | Path) -> pd.DataFrame:
    """The driver's JSON lines as a DataFrame (one row per attempt), sorted by send time; ``t`` is seconds
    since the first scheduled request."""
    if isinstance(lines, Path):
        lines = lines.read_text()
    text = lines.decode() if isinstance(lines, bytes) else lines
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    frame = pd.DataFrame(rows, columns=COLUMNS) if rows else pd.DataFrame(columns=COLUMNS)
    if len(frame):
        frame = frame.sort_values("t_send", kind="stable").reset_index(drop=True)
        frame["t"] = frame["t_send"] - frame["t_sched"].min()
        frame["ok"] = frame["ok"].astype(bool)
        for column in ("version", "upstream", "error"):
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    else:
        frame["t"] = pd.Series(dtype=float)
    return frame


@dataclass
class TrafficResult:
    """Everything a traffic run recorded, with the numbers a deployment is judged by."""

    frame: pd.DataFrame
    plan: TrafficPlan
    t0: float

    @property
    def http(self) -> pd.DataFrame:
        return self.frame[self.frame["kind"] == "http"]

    @property
    def mllp(self) -> pd.DataFrame:
        return self.frame[self.frame["kind"] == "mllp"]

    def summary(self) -> dict[str, Any]:
        """Requests sent and failed, rates achieved, MLLP messages acknowledged, retried and NAKed."""
        http, mllp = self.http, self.mllp
        span = (http["t_send"].max() - http["t_sched"].min()) if len(http) else 0.0
        final = mllp.groupby("id").tail(1) if len(mllp) else mllp
        return {
            "http_requests": int(len(http)),
            "http_failed": int((~http["ok"]).sum()),
            "http_rate": round(float(len(http) / span), 1) if span else 0.0,
            "http_p95_ms": round(float(http["latency_ms"].quantile(0.95)), 1) if len(http) else 0.0,
            "mllp_messages": int(mllp["id"].nunique()),
            "mllp_acked": int(mllp[mllp["ok"]]["id"].nunique()),
            "mllp_resends": int((mllp["attempt"] > 1).sum()),
            "mllp_nak": int(final["status"].isin(["AE", "AR", "CE", "CR"]).sum()),
            "mllp_unanswered": int((final["status"] == "error").sum()),
            "versions": {str(k): int(v) for k, v in self.frame[self.frame["ok"]]["version"].value_counts().items()},
        }

    def _repr_html_(self) -> str:
        return theme.card(f"Traffic run {self.plan.prefix}", theme.fields(self.summary()))


class TrafficRun:
    """A traffic run in progress; ``wait()`` returns its TrafficResult."""

    def __init__(self, lab: Lab, container: LabContainer, plan: TrafficPlan, started: float) -> None:
        self.lab, self.container, self.plan, self.started = lab, container, plan, started

    def hold(self, held: bool = True) -> None:
        """Hold the MLLP channel (messages wait at the sender, as in a stuck interface channel) or release it
        (the backlog goes out at once)."""
        if held:
            self.container.put_files(DRIVER_DIR, {"hold": b""}, mode=0o644, uid=DRIVER_UID, gid=DRIVER_UID)
        else:
            self.container.exec(["rm", "-f", HOLD_FILE], user=str(DRIVER_UID), timeout=10)

    def stop(self) -> None:
        """End the MLLP channel early: nothing new is sent, what is in flight finishes (``wait()`` then returns)."""
        self.container.put_files(DRIVER_DIR, {"stop": b""}, mode=0o644, uid=DRIVER_UID, gid=DRIVER_UID)

    def snapshot(self) -> pd.DataFrame:
        """What the driver has recorded so far (while it runs): for live analysis during a rollout."""
        try:
            data = self.container.get_file(f"{DRIVER_DIR}/traffic.jsonl")
        except Exception:  # noqa: BLE001 - not started yet, or already collected: nothing to show
            return read_frame("")
        complete = data[: data.rfind(b"\n") + 1]  # the last line may be half written
        return read_frame(complete)

    def wait(self, *, progress: bool = True) -> TrafficResult:
        """Block until the driver finished (showing progress), then read its record."""
        total = self.plan.duration
        limit = self.plan.duration + self.plan.grace + 30
        with Progress(f"traffic {self.plan.prefix}", total=round(total), unit="second", enabled=progress, every=5.0,
                      leave=False) as shown:
            while True:
                status = self.container.status
                done = min(round(total), round(time.time() - self.started))
                if done > shown.n:
                    shown.advance(done - shown.n)
                if status in ("exited", "dead"):
                    break
                if time.time() - self.started > limit:
                    self.container.remove()
                    raise LabError(f"the traffic generator did not finish within {limit:g} s",
                                   fix="check that the router answers (router.check_alive()) and run it again")
                time.sleep(0.25)
        code = self.container.state(reload=False).exit_code
        logs = self.container.logs(50)
        if code != 0:
            raise LabError(f"the traffic generator failed (exit {code}); its last lines:\n{logs}",
                           fix="read the lines above; a lab that was reset mid-run must be set up again")
        try:
            data = self.container.get_file(f"{DRIVER_DIR}/traffic.jsonl")
        except Exception as exc:  # noqa: BLE001 - the engine's error, reported with context
            raise LabError(f"could not read the traffic record from {self.container.name}: {exc}",
                           fix="run the traffic again") from None
        t0 = json.loads(logs.strip().splitlines()[-1]).get("t0", self.started)
        self.container.remove()
        return TrafficResult(read_frame(data), self.plan, float(t0))


def start_traffic(lab: Lab, plan: TrafficPlan | None = None, *, name: str = "traffic") -> TrafficRun:
    """Start the driver in a lab-runtime container on the lab network; returns at once (traffic runs meanwhile)."""
    plan = plan or TrafficPlan()
    waiter = f"while [ ! -f {DRIVER_DIR}/go ]; do sleep 0.05; done; exec python3 {DRIVER_DIR}/driver.py {DRIVER_DIR}/plan.json"
    # a thread per HTTP worker (plus the scheduler, the MLLP sender and the shell): pids above the pool's size
    container = lab.run(LAB_IMAGE, name=name, command=["sh", "-c", waiter], memory="256m", cpus=1.0,
                        pids=max(128, plan.http_workers + 32))
    files = {"careops-traffic/driver.py": Path(__file__).with_name("driver.py").read_bytes(),
             "careops-traffic/plan.json": json.dumps(plan.driver_plan()).encode(),
             "careops-traffic/go": b""}  # "go" last: the waiter starts the driver once it appears
    container.put_files("/tmp", files, mode=0o644, uid=DRIVER_UID, gid=DRIVER_UID)
    return TrafficRun(lab, container, plan, time.time())


def run_traffic(lab: Lab, plan: TrafficPlan | None = None, *, progress: bool = True) -> TrafficResult:
    """Start traffic and wait for it (for runs with nothing to do meanwhile)."""
    return start_traffic(lab, plan).wait(progress=progress)
