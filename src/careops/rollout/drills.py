"""Module 3's deployment drills: the ward's stack in a lab, one deployment under traffic, what it did.

Each drill starts from a fresh stack (v1 behind a router started from the
learner's router config, or three copies of v1 for the rolling update), sends
HTTP (110 requests/s) and MLLP (10 messages/s) traffic through the router,
runs one deployment meanwhile -- a naive stop-and-replace, or a learner's
rollout spec executed by careops' :class:`~careops.rollout.RolloutController`
-- and reconciles every message with the database. The same drills run in the
learner's notebook and, for the live checks, in the grader.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from careops.errors import CareOpsError, LabError, RolloutError
from careops.lab import Lab
from careops.lab import labels as L
from careops.report import theme
from careops.rollout import (
    COLOURS,
    SERVICE_VOLUME,
    HealthCheck,
    RolloutController,
    RolloutResult,
    RolloutSpec,
    parse_rollout,
)
from careops.images.catalog import ADT_V1, ADT_V2, ADT_V2_FAULTY
from careops.legacy_adt import HTTP_PORT, MLLP_PORT, VOLUME_INIT
from careops.rollout.controller import replica_number
from careops.rollout.health import StackStatus, stack_status
from careops.router import Router, RouterConfig
from careops.router.config import parse_router_config
from careops.traffic import (
    ReconcileReport,
    TrafficPlan,
    TrafficResult,
    reconcile,
    start_traffic,
    stored_control_ids,
)

#: the three releases of the case-study service the exercises deploy
V1, V2, V2_FAULTY = ADT_V1, ADT_V2, ADT_V2_FAULTY
#: the load every graded deployment runs under (>= 100 requests/s is the course's bar; 110 leaves slack)
HTTP_RATE, MLLP_RATE = 110.0, 10.0
LAB_NAME = "safe-deployments"
#: copies behind the router in the rolling update (exercise 5a); the ward needs all of them serving throughout
ROLLING_REPLICAS = 3


# -- the lab -------------------------------------------------------------------------

def open_lab(name: str = LAB_NAME) -> Lab:
    """The notebook's lab (leftovers of an earlier kernel with the same name are removed first)."""
    return Lab(name)


def _starting_backend(config: RouterConfig) -> str:
    """The one backend the learner's starting router config sends everything to (adt-blue)."""
    for proto in ("http", "mllp"):
        active = sorted({b.host for b in config.backends(proto) if b.weight > 0})
        if active != [COLOURS[0]]:
            raise RolloutError(f"the starting router config must send all {proto.upper()} traffic to {COLOURS[0]} "
                               f"(v1, the release in production), got {active}",
                               fix=f"one backend per protocol: host {COLOURS[0]}, weight 100 (http port {HTTP_PORT}, "
                                   f"mllp port {MLLP_PORT})")
    return COLOURS[0]


def _remove_leftovers(lab: Lab) -> None:
    """Remove what an earlier exercise (or a crashed cell) left: releases, copies, router, traffic, helpers."""
    names = (*COLOURS, "router", "traffic", "db-reader", VOLUME_INIT)
    for c in lab.containers():
        if c.labels.get(L.ROLE, "") in names or replica_number(c) is not None:
            try:
                c.remove()
            except LabError:
                pass


def fresh_stack(lab: Lab, router_config: str, *, audit: Any = None, actor: str | None = None) -> RolloutController:
    """v1 as adt-blue behind a router started from the learner's router config: the starting point of every
    deployment exercise. Anything a previous exercise left in the lab (releases, router, traffic) is removed."""
    config = parse_router_config(router_config)
    backend = _starting_backend(config)
    _remove_leftovers(lab)
    controller = RolloutController(lab, audit=audit, actor=actor)
    controller.start_service(V1, backend)
    controller.router = Router.start(lab, config)
    ok, why = controller.wait_healthy(backend, HealthCheck(successes=1, interval_seconds=0.3, timeout_seconds=30))
    if not ok:
        raise RolloutError(f"v1 did not become healthy behind your router: {why}",
                           fix=f"check the ports in your router config (http {HTTP_PORT}, mllp {MLLP_PORT}) "
                               "and run the cell again")
    return controller


def fresh_replicas(lab: Lab, *, replicas: int = ROLLING_REPLICAS, audit: Any = None,
                   actor: str | None = None) -> RolloutController:
    """The rolling update's start: ``replicas`` copies of v1 (adt-1 ..) behind the router, traffic shared evenly.
    Anything a previous exercise left in the lab is removed first."""
    _remove_leftovers(lab)
    return RolloutController.start(lab, V1, replicas=replicas, audit=audit, actor=actor)


# -- one deployment under traffic ----------------------------------------------------------

@dataclass
class DeploymentRun:
    """One deployment under traffic: the spec, what the controller did, what the traffic saw, the database."""

    label: str
    result: RolloutResult
    traffic: TrafficResult
    reconcile: ReconcileReport
    spec: RolloutSpec | None = None
    router_after: RouterConfig | None = None
    answers_after: dict[str, int] = field(default_factory=dict)
    #: the lab's containers when the run ended: a router or release that died mid-run is named here
    stack: StackStatus | None = None

    def failed(self) -> int:
        """Failed HTTP requests plus MLLP messages whose final answer was not an ACK."""
        s = self.traffic.summary()
        return s["http_failed"] + s["mllp_nak"] + s["mllp_unanswered"]

    def summary(self) -> dict[str, Any]:
        s = self.traffic.summary()
        return {"deployment": self.label, "outcome": self.result.outcome,
                "seconds": round(self.result.seconds, 1), "http_rate": s["http_rate"],
                "http_failed": s["http_failed"], "mllp_failed": s["mllp_nak"] + s["mllp_unanswered"],
                "mllp_resends": s["mllp_resends"], "lost": len(self.reconcile.lost),
                "duplicated": len(self.reconcile.duplicated), "p95_ms": s["http_p95_ms"]}

    def plot(self):
        from careops.traffic import plot_rollout

        return plot_rollout(self.traffic.frame, self.result.events, t0=self.traffic.t0,
                            title=f"{self.label}: {self.result.outcome}")

    def _repr_html_(self) -> str:
        down = self.stack._repr_html_() if self.stack is not None and not self.stack.ok else ""
        body = down + self.result._repr_html_() + theme.fields(self.summary()) + self.reconcile._repr_html_()
        # a deployment that completed but failed requests or messages is not a good one: the point of the module
        return theme.card(f"Deployment: {self.label}", body, status=theme.state(self.result.outcome),
                          ok=self.result.ok and self.reconcile.ok and self.failed() == 0)


def deploy_under_traffic(lab: Lab, controller: RolloutController, label: str,
                         deploy: Callable[[Any], RolloutResult], *, seconds: float, lead: float = 3.0,
                         spec: RolloutSpec | None = None, progress: bool = True) -> DeploymentRun:
    """Start HTTP (110/s) and MLLP (10/s) traffic through the router, run ``deploy(traffic)`` after ``lead``
    seconds, wait for the traffic to finish and reconcile every message with the database."""
    plan = TrafficPlan(duration=seconds, http_rate=HTTP_RATE, mllp_rate=MLLP_RATE)
    traffic = start_traffic(lab, plan)
    try:
        time.sleep(lead)
        result = deploy(traffic)
    except BaseException as exc:
        try:
            traffic.wait(progress=False)
        except CareOpsError:
            pass
        stack = stack_status(lab)
        if isinstance(exc, CareOpsError) and not stack.ok:  # say what died, not only what failed next
            raise LabError(f"{exc.message}; the lab is damaged: {' '.join(stack.problems)}",
                           fix=f"careops labs reset {lab.name} --yes, then run the notebook from \"Set up\"") from exc
        raise
    record = traffic.wait(progress=progress)
    router = controller.router
    stack = stack_status(lab, expected=("router", *router.config.share("http")))
    stack.raise_if_down()
    report = reconcile(record.frame, stored_control_ids(lab, SERVICE_VOLUME, plan.prefix))
    answers = dict(router.who_answers(10))
    return DeploymentRun(label, result, record, report, spec, router.config, answers, stack)


# -- the exercises' deployments ------------------------------------------------------------

def run_naive_replace(lab: Lab, router_config: str, *, progress: bool = True) -> DeploymentRun:
    """Exercise 1: stop v1, start v2 under the same name, re-point the router -- under traffic."""
    controller = fresh_stack(lab, router_config)
    return deploy_under_traffic(lab, controller, "stop-and-replace", lambda t: controller.naive_replace(V2),
                                seconds=12, progress=progress)


def run_rollout(lab: Lab, router_config: str, rollout: str, *, label: str, seconds: float,
                audit: Any = None, actor: str | None = None, progress: bool = True) -> DeploymentRun:
    """A learner's rollout spec, executed by careops' controller under traffic from a fresh v1 stack."""
    spec = parse_rollout(rollout)
    controller = fresh_stack(lab, router_config, audit=audit, actor=actor)
    return deploy_under_traffic(lab, controller, label, lambda t: controller.run(spec, traffic=t),
                                seconds=seconds, spec=spec, progress=progress)


def run_blue_green(lab: Lab, router_config: str, rollout: str, **kw: Any) -> DeploymentRun:
    """Exercise 2: the learner's blue/green spec, 16 s of traffic."""
    return run_rollout(lab, router_config, rollout, label="blue/green", seconds=16, **kw)


def run_canary(lab: Lab, router_config: str, rollout: str, **kw: Any) -> DeploymentRun:
    """Exercise 3: the learner's canary spec (v2), 24 s of traffic."""
    return run_rollout(lab, router_config, rollout, label="canary", seconds=24, **kw)


def run_faulty_canary(lab: Lab, router_config: str, rollout: str, **kw: Any) -> DeploymentRun:
    """Exercise 4: the learner's canary of v2-faulty with its rollback policy, 22 s of traffic."""
    return run_rollout(lab, router_config, rollout, label="canary of v2-faulty", seconds=22, **kw)


def run_rolling_update(lab: Lab, rollout: str, *, audit: Any = None, actor: str | None = None,
                       progress: bool = True) -> DeploymentRun:
    """Exercise 5a: the learner's rolling update of three copies, 28 s of traffic."""
    spec = parse_rollout(rollout)
    controller = fresh_replicas(lab, audit=audit, actor=actor)
    return deploy_under_traffic(lab, controller, "rolling update", lambda t: controller.run(spec, traffic=t),
                                seconds=28, spec=spec, progress=progress)


# -- reading the runs ----------------------------------------------------------------------

def upstream_of(frame: pd.DataFrame, version: str) -> str:
    """The address the router reached ``version`` at, read from a traffic record (for replaying an analysis)."""
    answered = frame[(frame["kind"] == "http") & (frame["version"] == version) & (frame["upstream"] != "")]
    if not len(answered):
        raise RolloutError(f"no HTTP request in this record was answered by {version}",
                           fix="run the canary again; its record must include traffic to the new release")
    return str(answered["upstream"].mode().iloc[0])


def comparison_table(row_fn: Callable[..., Any], *runs: DeploymentRun | None) -> pd.DataFrame:
    """The change board's table, one row per deployment you ran (None: skipped), computed by your ``deployment_row``."""
    table = {}
    for run in runs:
        if run is None:
            continue
        new = run.result.image.rsplit(":", 1)[-1]
        table[run.label] = dict(row_fn(run.traffic.frame, start=run.result.events[0][1],
                                       end=run.result.events[-1][1], old="v1", new=new))
    return pd.DataFrame(table).T


__all__ = [
    "HTTP_RATE",
    "LAB_NAME",
    "MLLP_RATE",
    "ROLLING_REPLICAS",
    "V1",
    "V2",
    "V2_FAULTY",
    "DeploymentRun",
    "comparison_table",
    "deploy_under_traffic",
    "fresh_replicas",
    "fresh_stack",
    "open_lab",
    "run_blue_green",
    "run_canary",
    "run_faulty_canary",
    "run_naive_replace",
    "run_rolling_update",
    "run_rollout",
    "upstream_of",
]
