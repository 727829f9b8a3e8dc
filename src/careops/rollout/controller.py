"""careops' rollout controller: executes a RolloutSpec against the router and the service under traffic.

The same code runs in the learner's lab and in the grader, so grading never
runs learner code with the engine: the learner writes the spec (data), this
module does the deploying. Every deployment, promoted or aborted, leaves an
entry in the hash-chained audit log (who, what version, approval, start/end,
outcome, rollback).
"""
from __future__ import annotations

import getpass
import html
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from careops.audit import AuditLog
from careops.errors import LabError, RolloutError, RouterConfigError
from careops.lab import Lab
from careops.lab import labels as L
from careops.lab.container import LabContainer
from careops.router import Router, RouterConfig
from careops.rollout.analysis import Verdict, analyze
from careops.rollout.spec import BlueGreen, Canary, HealthCheck, RollingUpdate, RolloutSpec, parse_rollout
from careops.traffic.run import TrafficRun

SERVICE_VOLUME = "adt-data"
COLOURS = ("adt-blue", "adt-green")
#: copies of a rolling update are numbered: adt-1, adt-2, ... (a new copy takes the next free number)
REPLICA_PREFIX = "adt-"


def replica_number(container: LabContainer) -> int | None:
    """The copy number of a rolling update's container (adt-4 -> 4); None for any other container."""
    role = container.labels.get(L.ROLE, "")
    number = role[len(REPLICA_PREFIX):]
    return int(number) if role.startswith(REPLICA_PREFIX) and number.isdigit() else None
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
        colour = "#1b7f3b" if self.ok else "#b00020"
        start = self.events[0][1] if self.events else 0.0
        rows = "".join(f"<tr><td>+{t - start:.2f} s</td><td>{html.escape(label)}</td></tr>" for label, t in self.events)
        why = f"<div>{html.escape(self.reason)}</div>" if self.reason else ""
        return (f"<div><b>{html.escape(self.name)}</b> ({self.strategy}) {html.escape(self.from_backend)} &rarr; "
                f"{html.escape(self.to_backend)}: <b style='color:{colour}'>{self.outcome}</b></div>{why}"
                f"<table>{rows}</table>")


class RolloutController:
    """Deploys releases of the ADT service behind a Router in a Lab; all colours share one data volume.

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
    def start(cls, lab: Lab, image: str = "careops/legacy-adt:v1", *, backend: str = COLOURS[0],
              replicas: int = 1, audit: AuditLog | None = None, actor: str | None = None,
              timeout: float = 30) -> "RolloutController":
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

    # -- services ----------------------------------------------------------------
    def prepare_volume(self) -> None:
        """Create the shared volume owned by the service user (uid 10001) with the database in WAL mode,
        before any release (v1 included) touches it."""
        if self._volume_ready:
            return
        init = self.lab.run("careops/legacy-adt:v2", name="adt-data-init", volumes={self.volume: "/data"},
                            command=["python3", "-c", "import sqlite3; sqlite3.connect('/data/adt.db')"
                                     ".execute('PRAGMA journal_mode=WAL')"], wait=False, memory="64m")
        try:
            code = init.raw.wait(timeout=60).get("StatusCode")
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

    def _check_router(self, active_service: str) -> None:
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

    def _stop(self, host: str) -> None:
        """Graceful stop (SIGTERM: v2 finishes the message it holds), then remove."""
        try:
            c = self.lab.container(host)
        except LabError:
            return
        try:
            c.stop(timeout=15)
        finally:
            c.remove()

    # -- strategies -------------------------------------------------------------------
    def run(self, spec: str | dict[str, Any] | RolloutSpec, *, traffic: TrafficRun | None = None) -> RolloutResult:
        """Execute a rollout spec (YAML text, dict or parsed); a canary's analysis and failure budget read
        the live record of ``traffic``."""
        parsed = spec if isinstance(spec, RolloutSpec) else parse_rollout(spec)
        if isinstance(parsed.strategy, BlueGreen):
            return self.blue_green(parsed)
        if isinstance(parsed.strategy, RollingUpdate):
            return self.rolling_update(parsed, traffic=traffic)
        return self.canary(parsed, traffic=traffic)

    # -- canary ----------------------------------------------------------------------
    def _version_of(self, host: str, port: int = 8081) -> str:
        """The release a backend says it is (/health's version; v1 says "v1" there too)."""
        probe = ("import json, sys, urllib.request\n"
                 "print(json.load(urllib.request.urlopen(sys.argv[1], timeout=2)).get('version', 'v1'))")
        res = self.router.container.exec(["python3", "-c", probe, f"http://{host}:{port}/health"], check=False,
                                         timeout=10)
        return res.output.strip().splitlines()[-1] if res.ok and res.output.strip() else "unknown"

    def _failed_since(self, frame: Any, since: float) -> int:
        recent = frame[frame["t_send"] >= since] if len(frame) else frame
        if not len(recent):
            return 0
        http_failed = int(((recent["kind"] == "http") & ~recent["ok"]).sum())
        mllp_failed = int(((recent["kind"] == "mllp") & ~recent["ok"]).sum())
        return http_failed + mllp_failed

    def _watch(self, spec: RolloutSpec, result: RolloutResult, traffic: TrafficRun | None, seconds: float) -> bool:
        """Wait ``seconds`` while checking the failure budget once a second; False when it is exceeded."""
        deadline = time.monotonic() + seconds
        budget = spec.rollback.max_failed_requests
        while True:
            if traffic is not None and budget is not None:
                result.failed_requests = self._failed_since(traffic.snapshot(), result.events[0][1])
                if result.failed_requests > budget:
                    return False
            left = deadline - time.monotonic()
            if left <= 0:
                return True
            time.sleep(min(1.0, left))

    def canary(self, spec: RolloutSpec, *, traffic: TrafficRun | None = None) -> RolloutResult:
        """Shift traffic to the new release step by step (setWeight / pause / analysis). A failed analysis, or
        more failed requests than ``rollback.maxFailedRequests``, returns all traffic to the stable release
        (``onFailure: rollback``) or stops where it is (``abort``)."""
        strategy = spec.strategy
        assert isinstance(strategy, Canary)
        self._check_router(strategy.active_service)
        needs_traffic = any(s.analysis for s in strategy.steps) or spec.rollback.max_failed_requests is not None
        if needs_traffic and traffic is None:
            raise RolloutError("this canary has an analysis step or a failure budget, which judge live traffic, "
                               "but no traffic run was given", fix="run(spec, traffic=start_traffic(lab, plan))")
        stable = self.active_backend()
        new = strategy.canary_service or (COLOURS[1] if stable == COLOURS[0] else COLOURS[0])
        if new == stable:
            raise RolloutError(f"canaryService {new!r} is the release serving now", fix="name the canary differently")
        result = RolloutResult(spec.name, "canary", spec.image, stable, new)
        result.mark("start")
        http_port, mllp_port = self.router.config.http[0].port, self.router.config.mllp[0].port
        try:
            self.start_service(spec.image, new)
            healthy, why = self.wait_healthy(new, strategy.health_check)
            if not healthy:
                return self._abort(spec, result, new, f"{new} never became healthy: {why}")
            result.mark("healthy")
            versions = {stable: self._version_of(stable), new: self._version_of(new)}
            upstream = {f"{self.lab.container(new).ip()}:{http_port}"}
            for step in strategy.steps:
                if step.set_weight is not None:
                    w = step.set_weight
                    config = (RouterConfig.single(new, http_port=http_port, mllp_port=mllp_port) if w == 100 else
                              RouterConfig.weighted({stable: 100 - w, new: w}, http_port=http_port,
                                                    mllp_port=mllp_port))
                    result.reload_seconds.append(self.router.apply(config).seconds)
                    result.mark(f"setWeight {w}")
                    if not self._watch(spec, result, traffic, 0):
                        return self._fail(spec, result, f"{result.failed_requests} failed requests exceed the "
                                                        f"budget of {spec.rollback.max_failed_requests}")
                elif step.pause_seconds is not None:
                    if not self._watch(spec, result, traffic, step.pause_seconds):
                        return self._fail(spec, result, f"{result.failed_requests} failed requests exceed the "
                                                        f"budget of {spec.rollback.max_failed_requests}")
                    result.mark(f"pause {step.pause_seconds:g} s")
                else:
                    assert step.analysis is not None and traffic is not None
                    verdict = None
                    for _ in range(3):  # inconclusive (too few requests): wait one more window, twice at most
                        verdict = analyze(traffic.snapshot(), canary=versions[new], baseline=versions[stable],
                                          analysis=step.analysis, now=time.time(), canary_upstreams=upstream)
                        if verdict.passed is not None:
                            break
                        if not self._watch(spec, result, traffic, step.analysis.window_seconds):
                            return self._fail(spec, result, f"{result.failed_requests} failed requests exceed the "
                                                            f"budget of {spec.rollback.max_failed_requests}")
                    assert verdict is not None
                    result.verdicts.append(verdict)
                    result.mark("analysis")
                    if not verdict.passed:
                        return self._fail(spec, result, f"analysis failed: {verdict.reason}")
            self._stop(stable)
            result.outcome = "promoted"
            result.mark("end")
            self._audit(spec, result)
            return result
        except RouterConfigError as exc:
            return self._fail(spec, result, f"the router refused a step: {exc.message}")

    def _fail(self, spec: RolloutSpec, result: RolloutResult, reason: str) -> RolloutResult:
        """The rollback policy: all traffic back to the stable release and the canary removed, or (abort) stop
        here and leave the routing as it is for a human to decide."""
        if spec.rollback.on_failure == "rollback":
            stable = result.from_backend
            current = self.router.config
            self.router.apply(RouterConfig.single(stable, http_port=current.http[0].port,
                                                  mllp_port=current.mllp[0].port))
            result.mark("rollback")
            self._stop(result.to_backend)
            result.rolled_back = True
            result.outcome, result.reason = "rolled-back", reason + f"; all traffic back on {stable}"
        else:
            result.outcome, result.reason = "aborted", reason + "; routing left as it was (onFailure: abort)"
        result.mark("end")
        self._audit(spec, result)
        return result

    def blue_green(self, spec: RolloutSpec) -> RolloutResult:
        """Bring up the new colour, check its health, switch the router (validate + graceful reload), drain
        and stop the old colour after scaleDownDelaySeconds. A target that never becomes healthy, or a router
        config nginx rejects, aborts: the old colour keeps all traffic and the new one is removed."""
        strategy = spec.strategy
        assert isinstance(strategy, BlueGreen)
        self._check_router(strategy.active_service)
        old = self.active_backend()
        new = strategy.preview_service or (COLOURS[1] if old == COLOURS[0] else COLOURS[0])
        if new == old:
            raise RolloutError(f"previewService {new!r} is the release serving now; blue/green needs a second one",
                               fix=f"name the new colour differently, e.g. previewService: "
                                   f"{COLOURS[1] if old == COLOURS[0] else COLOURS[0]}")
        result = RolloutResult(spec.name, "blueGreen", spec.image, old, new)
        result.mark("start")
        try:
            self.start_service(spec.image, new)
            healthy, why = self.wait_healthy(new, strategy.health_check)
            if not healthy:
                return self._abort(spec, result, new, f"{new} never became healthy: {why}")
            result.mark("healthy")
            if not strategy.auto_promotion:
                result.outcome, result.reason = "paused", "healthy; waiting for promote() (autoPromotionEnabled: false)"
                self._audit(spec, result)
                return result
            return self._promote(spec, result)
        except RouterConfigError as exc:
            return self._abort(spec, result, new, f"the router refused the switch: {exc.message}")

    def promote(self, spec: RolloutSpec, result: RolloutResult) -> RolloutResult:
        """Finish a paused blue/green rollout (autoPromotionEnabled: false) after a human looked at the preview."""
        if result.outcome != "paused":
            raise RolloutError(f"rollout {result.name} is {result.outcome}, not paused", fix="promote only a paused one")
        return self._promote(spec, result)

    def _promote(self, spec: RolloutSpec, result: RolloutResult) -> RolloutResult:
        strategy = spec.strategy
        assert isinstance(strategy, BlueGreen)
        current = self.router.config
        port_http = current.http[0].port
        port_mllp = current.mllp[0].port
        reload = self.router.apply(RouterConfig.single(result.to_backend, http_port=port_http, mllp_port=port_mllp))
        result.reload_seconds.append(reload.seconds)
        result.mark("switch")
        time.sleep(strategy.scale_down_delay_seconds)
        result.mark("scale-down")
        self._stop(result.from_backend)
        result.outcome = "promoted"
        result.mark("end")
        self._audit(spec, result)
        return result

    def _abort(self, spec: RolloutSpec, result: RolloutResult, new: str, reason: str) -> RolloutResult:
        self._stop(new)
        result.outcome, result.reason = "aborted", reason + f"; {result.from_backend} keeps all traffic"
        result.mark("end")
        self._audit(spec, result)
        return result

    # -- rolling update ------------------------------------------------------------------
    def serving(self) -> list[str]:
        """The backends the router sends HTTP traffic to now."""
        return [b.host for b in self.router.config.http if b.weight > 0]

    def _route(self, hosts: list[str], result: RolloutResult, label: str) -> None:
        """Share traffic evenly between ``hosts`` (one graceful, validated reload)."""
        current = self.router.config
        config = RouterConfig.weighted({h: 100 for h in hosts}, http_port=current.http[0].port,
                                       mllp_port=current.mllp[0].port)
        result.reload_seconds.append(self.router.apply(config).seconds)
        result.fewest_serving = min(result.fewest_serving, len(hosts))
        result.mark(label)

    def _free_names(self, count: int) -> list[str]:
        """The next ``count`` replica names, never reused in a lab (adt-4, adt-5, ... after adt-1..3), so a
        name always means one copy of one release in the plots and the change record."""
        numbers = [n for n in map(replica_number, self.lab.containers()) if n is not None]
        self._last_replica = max([self._last_replica, *numbers])
        first = self._last_replica + 1
        self._last_replica += count
        return [f"{REPLICA_PREFIX}{i}" for i in range(first, first + count)]

    def _image_of(self, host: str) -> str:
        """The image name the copy was started from (careops/legacy-adt:v1), not one of its other tags."""
        c = self.lab.container(host).raw
        return c.attrs.get("Config", {}).get("Image") or (c.image.tags or [""])[0]

    def rolling_update(self, spec: RolloutSpec, *, traffic: TrafficRun | None = None) -> RolloutResult:
        """Replace the copies behind the router a few at a time, the way a Kubernetes Deployment does.

        Each round takes up to ``maxUnavailable`` old copies out of the router (drained, then stopped), starts
        up to ``maxSurge`` more new copies than that, waits until every new one is healthy, routes traffic to
        them and then retires as many further old copies. So no more than replicas + maxSurge copies run at
        once, and no fewer than replicas - maxUnavailable serve. A new copy that never becomes healthy, or
        more failed requests than the budget, stops the update: ``onFailure: rollback`` rolls the copies back
        to the old release the same way; ``abort`` leaves the healthy copies serving, old and new mixed.
        """
        strategy = spec.strategy
        assert isinstance(strategy, RollingUpdate)
        self._check_router(strategy.active_service)
        old = self.serving()
        if len(old) != spec.replicas:
            raise RolloutError(f"spec.replicas is {spec.replicas}, but the router serves {len(old)} copies {old}",
                               fix=f"write replicas: {len(old)}, or start the lab with that many copies")
        stable_image = self._image_of(old[0])
        result = RolloutResult(spec.name, "rollingUpdate", spec.image, ", ".join(old), "")
        result.most_running = result.fewest_serving = len(old)
        result.mark("start")
        new, why = self._roll(spec, strategy, result, traffic, old, spec.image, strategy.health_check)
        result.to_backend = ", ".join(new)
        if why is None:
            result.outcome = "promoted"
            result.mark("end")
            self._audit(spec, result)
            return result
        if spec.rollback.on_failure == "abort":
            result.outcome, result.reason = "aborted", why + f"; serving as it is: {', '.join(self.serving())}"
        else:
            current = self.serving()
            back = [h for h in current if h in old]
            to_replace = [h for h in current if h not in old]
            known_good = HealthCheck(successes=1, interval_seconds=0.3)  # the stable release served until now
            restored, again = self._roll(spec, strategy, result, None, to_replace, stable_image, known_good,
                                         keep=back, label="back")
            missing = spec.replicas - len(back) - len(restored)
            if again is None and missing > 0:  # copies taken out before the failure: start them again
                again = self._refill(result, back + restored, stable_image, missing, known_good)
            result.rolled_back = True
            result.outcome = "rolled-back"
            result.reason = why + (f"; rolled back to {stable_image}" if again is None
                                   else f"; the rollback stopped too: {again}")
        result.mark("end")
        self._audit(spec, result)
        return result

    def _roll(self, spec: RolloutSpec, strategy: RollingUpdate, result: RolloutResult,
              traffic: TrafficRun | None, old: list[str], image: str, check: HealthCheck, *,
              keep: list[str] | None = None,
              label: str = "") -> tuple[list[str], str | None]:
        """Replace ``old`` copies with copies of ``image`` round by round; returns (new copies, why it
        stopped or None). ``keep`` are copies that serve throughout (a rollback keeps the old ones it has)."""
        old, kept, new = list(old), list(keep or []), []
        budget = f"the failure budget of {spec.rollback.max_failed_requests} requests is exceeded"
        round_no = 0
        while old:
            round_no += 1
            tag = f"{label} round {round_no}".strip()
            down = old[:min(strategy.max_unavailable, len(old))]
            count = min(strategy.max_surge + len(down), len(old))
            if down:
                old = old[len(down):]
                self._route(kept + new + old, result, f"{tag}: {', '.join(down)} out")
                self._drain_and_stop(down, strategy.drain_seconds)
            names = self._free_names(count)
            for name in names:
                self.start_service(image, name)
            result.most_running = max(result.most_running, len(kept + new + old + names))
            for name in names:
                healthy, why = self.wait_healthy(name, check)
                if not healthy:  # it never got traffic: remove this round's new copies, the rest serves on
                    self._stop_all(names)
                    result.mark(f"{tag}: {name} unhealthy")
                    return new, f"{name} ({image}) never became healthy: {why}"
            result.mark(f"{tag}: {', '.join(names)} healthy")
            new += names
            retire = old[:count - len(down)]
            old = old[len(retire):]
            self._route(kept + new + old, result, f"{tag}: {', '.join(names)} in"
                        + (f", {', '.join(retire)} out" if retire else ""))
            if not self._watch(spec, result, traffic, strategy.drain_seconds if retire else 0):
                self._stop_all(retire)
                return new, f"{result.failed_requests} failed requests: {budget}"
            self._stop_all(retire)
        return new, None

    def _refill(self, result: RolloutResult, serving: list[str], image: str, count: int,
                check: HealthCheck) -> str | None:
        """Start ``count`` copies of ``image`` and add them to the router once healthy (after a rollback)."""
        names = self._free_names(count)
        for name in names:
            self.start_service(image, name)
        for name in names:
            healthy, why = self.wait_healthy(name, check)
            if not healthy:
                self._stop_all(names)
                return f"{name} ({image}) never became healthy: {why}"
        self._route(serving + names, result, f"back: {', '.join(names)} in")
        return None

    def _drain_and_stop(self, hosts: list[str], seconds: float) -> None:
        time.sleep(seconds)
        self._stop_all(hosts)

    def _stop_all(self, hosts: list[str]) -> None:
        for host in hosts:
            self._stop(host)

    def naive_replace(self, image: str, *, name: str = "naive-replace") -> RolloutResult:
        """The anti-pattern lesson 1 measures: stop the running release, start the new one under the same
        name, point the router at it again. Everything sent in between fails."""
        old = self.active_backend()
        result = RolloutResult(name, "stop-and-replace", image, old, old)
        result.mark("start")
        self._stop(old)
        result.mark("stopped")
        self.start_service(image, old)
        healthy, why = self.wait_healthy(old, HealthCheck(successes=1, interval_seconds=0.2))
        result.mark("started")
        reload = self.router.apply(self.router.config)  # nginx resolved the old container's address: look again
        result.reload_seconds.append(reload.seconds)
        result.mark("switch")
        result.outcome = "replaced" if healthy else "aborted"
        result.reason = "" if healthy else why
        result.mark("end")
        return result

    # -- change record ------------------------------------------------------------------
    def _audit(self, spec: RolloutSpec, result: RolloutResult) -> None:
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


def audit_log(path: str | Path) -> AuditLog:
    """The change record deployments append to (the hash-chained audit log of module 1)."""
    return AuditLog(path)
