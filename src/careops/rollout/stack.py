"""What every deployment strategy stands on: the ADT service's releases behind a router in a lab.

``ReleaseStack`` starts and stops releases on the one shared data volume, waits until a release is
healthy as the router sees it, says what the router serves, watches a traffic run's failure budget, and
appends each deployment to the change record. The strategies (``bluegreen``, ``canary``, ``rolling``,
``naive``) use only this; ``RolloutController`` (``careops.rollout.controller``) picks one by the spec.
"""
from __future__ import annotations

import getpass
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Self

from careops import legacy_adt as adt
from careops.audit import AuditLog
from careops.errors import LabError, RolloutError
from careops.images.catalog import ADT_V1, ADT_V2
from careops.lab import Lab
from careops.lab import labels as L
from careops.lab.container import LabContainer
from careops.rollout.analysis import Verdict, failed_since
from careops.rollout.spec import HealthCheck, RolloutSpec
from careops.router import Router, RouterConfig
from careops.traffic.run import TrafficRun
from careops.report import theme

#: the ADT service's names in a lab, as the controller uses them (careops.legacy_adt)
SERVICE_VOLUME = adt.VOLUME
COLOURS = adt.COLOURS
REPLICA_PREFIX = adt.REPLICA_PREFIX


def replica_number(container: LabContainer) -> int | None:
    """The copy number of a rolling update's container (adt-4 -> 4); None for any other container."""
    role = container.labels.get(L.ROLE, "")
    number = role[len(REPLICA_PREFIX):]
    return int(number) if role.startswith(REPLICA_PREFIX) and number.isdigit() else None


def other_colour(serving: str) -> str:
    """The colour a blue/green or canary release goes to when the spec names none: the one not serving."""
    return COLOURS[1] if serving == COLOURS[0] else COLOURS[0]


_V1_COMMAND = ["python3", "/opt/legacy-adt/adt_service.py", "--config", "/etc/legacy-adt/adt.ini",
               "--db", "/data/adt.db", "--log", "/tmp/adt.log"]
_PROBE = ("import sys, urllib.request, urllib.error\n"
          "try:\n    code = urllib.request.urlopen(sys.argv[1], timeout=2).status\n"
          "except urllib.error.HTTPError as e:\n    code = e.code\n"
          "except Exception as e:\n    print('no answer:', type(e).__name__, e); sys.exit(2)\n"
          "print(code); sys.exit(0)\n")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class RolloutResult:
    """What a deployment did: outcome, the timed events (for plots), and why it stopped if it did."""

    name: str
    strategy: str
    image: str
    from_backend: str
    to_backend: str
    outcome: str = "running"  # promoted | aborted | rolled-back | replaced | paused
    #: rolling update: the most copies that ran at once, and the fewest that were serving at once
    most_running: int = 0
    fewest_serving: int = 0
    reason: str = ""
    events: list[tuple[str, float]] = field(default_factory=list)
    reload_seconds: list[float] = field(default_factory=list)
    rolled_back: bool = False
    audit_seq: int | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    failed_requests: int = 0

    @property
    def ok(self) -> bool:
        return self.outcome in ("promoted", "replaced")

    def mark(self, label: str) -> float:
        now = time.time()
        self.events.append((label, now))
        return now

    def at(self, label: str) -> float | None:
        return next((t for name, t in self.events if name == label), None)

    @property
    def seconds(self) -> float:
        return self.events[-1][1] - self.events[0][1] if len(self.events) > 1 else 0.0

    def _repr_html_(self) -> str:
        start = self.events[0][1] if self.events else 0.0
        rows = ([theme.num(t - start, "s", "+{:.2f}"), label] for label, t in self.events)
        body = theme.para(theme.esc(self.reason)) if self.reason else ""
        body += theme.table(rows, header=["time", "event"]) if self.events else ""
        title = f"{self.name} ({self.strategy}) {self.from_backend} \u2192 {self.to_backend}"
        return theme.card(title, body, status=theme.state(self.outcome), ok=self.ok)


class ReleaseStack:
    """Releases of the ADT service behind a Router in a Lab; all releases share one data volume.

    Why one shared volume: "no message lost or stored twice" must hold across
    the cutover. A message blue stored and green receives again (a resend after
    a lost ACK) is recognised as a duplicate only when both read the same
    database; SQLite in WAL mode on a named volume works from two containers
    on one host (same kernel: locks and the shared-memory index are shared).
    """

    def __init__(self, lab: Lab, router: Router | None = None, *, volume: str = SERVICE_VOLUME,
                 audit: AuditLog | None = None, actor: str | None = None) -> None:
        self.lab = lab
        self._router = router
        self.volume = volume
        self.audit = audit
        self.actor = actor or getpass.getuser()
        self._volume_ready = False
        self._last_replica = 0

    @property
    def router(self) -> Router:
        if self._router is None:
            raise RolloutError("this controller has no router yet",
                               fix="use RolloutController.start(lab, ...) or set controller.router = Router.start(...)")
        return self._router

    @router.setter
    def router(self, router: Router) -> None:
        self._router = router

    @classmethod
    def start(cls, lab: Lab, image: str = ADT_V1, *, backend: str = COLOURS[0],
              replicas: int = 1, audit: AuditLog | None = None, actor: str | None = None,
              timeout: float = 30) -> Self:
        """The starting point of every deployment exercise: ``image`` running as ``backend`` on the shared
        volume, the router sending it all HTTP and MLLP traffic, healthy. With ``replicas`` > 1 (a rolling
        update's start) the copies are adt-1 .. adt-N and the router shares traffic evenly between them."""
        controller = cls(lab, audit=audit, actor=actor)
        backends = [backend] if replicas == 1 else [f"{REPLICA_PREFIX}{i}" for i in range(1, replicas + 1)]
        for name in backends:
            controller.start_service(image, name)
        controller.router = Router.start(lab, RouterConfig.single(backend) if replicas == 1 else
                                         RouterConfig.weighted({b: 100 for b in backends}))
        for name in backends:
            ok, why = controller.wait_healthy(name, HealthCheck(successes=1, interval_seconds=0.3,
                                                                timeout_seconds=timeout))
            if not ok:
                raise RolloutError(f"the starting release {image} is not healthy: {why}",
                                   fix=f"read lab.container({name!r}).logs(); 'careops labs reset {lab.name}' "
                                       "and run the setup again")
        return controller

    # -- releases ----------------------------------------------------------------------
    def prepare_volume(self) -> None:
        """Create the shared volume owned by the service user (uid 10001) with the database in WAL mode,
        before any release (v1 included) touches it."""
        if self._volume_ready:
            return
        init = self.lab.run(ADT_V2, name=adt.VOLUME_INIT, volumes={self.volume: "/data"},
                            command=["python3", "-c", ("import sqlite3; sqlite3.connect('/data/adt.db')"
                                                       ".execute('PRAGMA journal_mode=WAL')")], wait=False, memory="64m")
        try:
            code = init.wait(timeout=60)
            if code != 0:
                raise LabError(f"could not prepare the data volume {self.volume} (exit {code}): {init.logs(10)}",
                               fix=f"careops labs reset {self.lab.name}, then run the lab's cells again")
        finally:
            init.remove()
        self._volume_ready = True

    def start_service(self, image: str, name: str) -> LabContainer:
        """Start one release of the ADT service on the shared volume (v1 told where the volume is)."""
        self.prepare_volume()
        legacy = image.endswith(":v1")
        return self.lab.run(image, name=name, volumes={self.volume: "/data"}, memory="256m", cpus=1.0, pids=128,
                            command=_V1_COMMAND if legacy else None, user="10001" if legacy else None)

    def bring_up(self, spec: RolloutSpec, result: RolloutResult, new: str, check: HealthCheck) -> bool:
        """Start the spec's release as ``new`` beside the serving one and wait until it is healthy; False when it
        never is (it is removed and the deployment aborted: ``result`` says why, and the serving one stays)."""
        self.start_service(spec.image, new)
        healthy, why = self.wait_healthy(new, check)
        if not healthy:
            self.abort(spec, result, new, f"{new} never became healthy: {why}")
            return False
        result.mark("healthy")
        return True

    def wait_healthy(self, host: str, check: HealthCheck) -> tuple[bool, str]:
        """Poll ``check`` from inside the router (what the router would see) until N consecutive expected
        answers, the container stops, or the timeout; returns (healthy, why not)."""
        deadline = time.monotonic() + check.timeout_seconds
        good, last = 0, "no answer yet"
        url = f"http://{host}:{check.port}{check.path}"
        while time.monotonic() < deadline:
            try:
                status = self.lab.container(host).status
            except LabError:
                status = "removed"
            if status != "running":
                return False, f"{host} is {status}: {self._tail(host)}"
            res = self.router.container.exec(["python3", "-c", _PROBE, url], check=False, timeout=10)
            answer = res.output.strip().splitlines()[-1] if res.output.strip() else ""
            if res.ok and answer == str(check.expect_status):
                good += 1
                if good >= check.successes:
                    return True, ""
            else:
                good, last = 0, (f"GET {check.path} answered {answer}, expected {check.expect_status}" if res.ok
                                 else f"GET {check.path}: {answer or 'no answer'}")
            time.sleep(check.interval_seconds)
        return False, f"not healthy within {check.timeout_seconds:g} s ({last})"

    def _tail(self, host: str) -> str:
        try:
            return " | ".join(self.lab.container(host).logs(5).strip().splitlines()[-3:])
        except LabError:
            return "(no logs)"

    def stop(self, host: str) -> None:
        """Graceful stop (SIGTERM: v2 finishes the message it holds), then remove."""
        try:
            c = self.lab.container(host)
        except LabError:
            return
        try:
            c.stop(timeout=15)
        finally:
            c.remove()

    def stop_all(self, hosts: list[str]) -> None:
        for host in hosts:
            self.stop(host)

    def next_replica_names(self, count: int) -> list[str]:
        """The next ``count`` replica names, never reused in a lab (adt-4, adt-5, ... after adt-1..3), so a
        name always means one copy of one release in the plots and the change record."""
        numbers = [n for n in map(replica_number, self.lab.containers()) if n is not None]
        self._last_replica = max([self._last_replica, *numbers])
        first = self._last_replica + 1
        self._last_replica += count
        return [f"{REPLICA_PREFIX}{i}" for i in range(first, first + count)]

    def image_of(self, host: str) -> str:
        """The image name the copy was started from (careops/legacy-adt:v1), not one of its other tags."""
        return self.lab.container(host).image_name

    # -- the router ----------------------------------------------------------------------
    def check_router(self, active_service: str) -> None:
        """The spec's activeService must name this lab's router, and the router must be running."""
        if active_service != self.router.name:
            raise RolloutError(f"the spec's activeService is {active_service!r}, but this lab's router is "
                               f"{self.router.name!r}", fix=f"write activeService: {self.router.name}")
        self.router.check_alive()

    def active_backend(self) -> str:
        """The backend the router sends all HTTP traffic to (blue/green needs exactly one)."""
        active = [b.host for b in self.router.config.http if b.weight > 0]
        if len(active) != 1:
            raise RolloutError(f"the router splits traffic between {active}; blue/green starts from one active release",
                               fix="apply a router config with one backend first (e.g. after finishing a canary)")
        return active[0]

    def serving(self) -> list[str]:
        """The backends the router sends HTTP traffic to now."""
        return [b.host for b in self.router.config.http if b.weight > 0]

    # -- the failure budget ---------------------------------------------------------------
    def watch(self, spec: RolloutSpec, result: RolloutResult, traffic: TrafficRun | None, seconds: float) -> bool:
        """Wait ``seconds`` while checking the failure budget once a second; False when it is exceeded."""
        deadline = time.monotonic() + seconds
        budget = spec.rollback.max_failed_requests
        while True:
            if traffic is not None and budget is not None:
                result.failed_requests = failed_since(traffic.snapshot(), result.events[0][1])
                if result.failed_requests > budget:
                    return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(1.0, left))

    # -- outcomes and the change record ----------------------------------------------------
    def abort(self, spec: RolloutSpec, result: RolloutResult, new: str, reason: str) -> RolloutResult:
        """The new release never got traffic: remove it; the old one keeps all traffic."""
        self.stop(new)
        result.outcome, result.reason = "aborted", reason + f"; {result.from_backend} keeps all traffic"
        result.mark("end")
        self.record(spec, result)
        return result

    def record(self, spec: RolloutSpec, result: RolloutResult) -> None:
        """Append the deployment to the change record (the hash-chained audit log), if there is one."""
        if self.audit is None:
            return
        entry = self.audit.append(
            actor=self.actor, role="deployer", action=f"deploy.{result.strategy}", resource=f"rollout/{spec.name}",
            outcome=result.outcome, purpose="change", source="careops.rollout",
            details={"image": spec.image, "from": result.from_backend, "to": result.to_backend,
                     "approved_by": spec.approved_by, "change_id": spec.change_id,
                     "started": _iso(result.events[0][1]), "ended": _iso(result.events[-1][1]),
                     "rollback": result.rolled_back, "reason": result.reason,
                     "reload_seconds": [round(s, 3) for s in result.reload_seconds]})
        result.audit_seq = entry.seq
