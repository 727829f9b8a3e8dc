"""careops' rollout controller: executes a RolloutSpec against the router and the service under traffic.

The same code runs in the learner's lab and in the grader, so grading never
runs learner code with the engine: the learner writes the spec (data), this
module does the deploying. Every deployment, promoted or aborted, leaves an
entry in the hash-chained audit log (who, what version, approval, start/end,
outcome, rollback).

One file per strategy, as Argo Rollouts has: ``bluegreen``, ``canary``,
``rolling`` (and ``naive``, the stop-and-replace it is measured against), each
standing on ``stack.ReleaseStack`` (releases, health, routing, change record).
The controller picks the strategy the spec names.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from careops.audit import AuditLog
from careops.rollout.bluegreen import deploy_blue_green, promote_blue_green
from careops.rollout.canary import deploy_canary
from careops.rollout.naive import naive_replace
from careops.rollout.rolling import deploy_rolling_update
from careops.rollout.spec import BlueGreen, RollingUpdate, RolloutSpec, parse_rollout
from careops.rollout.stack import (
    COLOURS,
    REPLICA_PREFIX,
    SERVICE_VOLUME,
    ReleaseStack,
    RolloutResult,
    replica_number,
)
from careops.traffic.run import TrafficRun


class RolloutController(ReleaseStack):
    """Deploys releases of the ADT service behind a Router in a Lab; all colours share one data volume
    (see ReleaseStack). ``run(spec)`` executes the strategy the spec names."""

    def run(self, spec: str | dict[str, Any] | RolloutSpec, *, traffic: TrafficRun | None = None) -> RolloutResult:
        """Execute a rollout spec (YAML text, dict or parsed); a canary's analysis and failure budget read
        the live record of ``traffic``."""
        parsed = spec if isinstance(spec, RolloutSpec) else parse_rollout(spec)
        if isinstance(parsed.strategy, BlueGreen):
            return self.blue_green(parsed)
        if isinstance(parsed.strategy, RollingUpdate):
            return self.rolling_update(parsed, traffic=traffic)
        return self.canary(parsed, traffic=traffic)

    def blue_green(self, spec: RolloutSpec) -> RolloutResult:
        """Blue/green (careops.rollout.bluegreen): the new colour healthy, then all traffic at once."""
        return deploy_blue_green(self, spec)

    def promote(self, spec: RolloutSpec, result: RolloutResult) -> RolloutResult:
        """Finish a paused blue/green rollout (autoPromotionEnabled: false) after a human looked at the preview."""
        return promote_blue_green(self, spec, result)

    def canary(self, spec: RolloutSpec, *, traffic: TrafficRun | None = None) -> RolloutResult:
        """Canary (careops.rollout.canary): traffic shifted step by step, judged on ``traffic``."""
        return deploy_canary(self, spec, traffic=traffic)

    def rolling_update(self, spec: RolloutSpec, *, traffic: TrafficRun | None = None) -> RolloutResult:
        """Rolling update (careops.rollout.rolling): the copies replaced a few at a time."""
        return deploy_rolling_update(self, spec, traffic=traffic)

    def naive_replace(self, image: str, *, name: str = "naive-replace") -> RolloutResult:
        """The anti-pattern lesson 1 measures (careops.rollout.naive): stop, start the new one, re-point."""
        return naive_replace(self, image, name=name)


def audit_log(path: str | Path) -> AuditLog:
    """The change record deployments append to (the hash-chained audit log of module 1)."""
    return AuditLog(path)


__all__ = ["COLOURS", "REPLICA_PREFIX", "SERVICE_VOLUME", "RolloutController", "RolloutResult", "audit_log",
           "replica_number"]
