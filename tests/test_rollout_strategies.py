"""careops.rollout's strategies, one file each: the controller picks the one the spec names, and the rolling
update's rounds keep the copies' counts (the engine-backed runs of every strategy are in test_rollout.py;
here a stand-in stack replays the rounds in milliseconds)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from careops import rollout
from careops.images.catalog import ADT_V1, ADT_V2
from careops.rollout import API_VERSION, RolloutController, RolloutResult, parse_rollout
from careops.rollout import controller as controller_module
from careops.rollout.rolling import deploy_rolling_update
from careops.rollout.stack import ReleaseStack
from careops.router import RouterConfig


def make_rollout(strategy: dict[str, Any], *, replicas: int | None = None, on_failure: str = "abort",
                 readiness: dict[str, Any] | None = None, drain: int = 0) -> dict[str, Any]:
    """An Argo Rollouts Rollout as the dict parse_rollout also takes: the ADT service's v2, one strategy."""
    container: dict[str, Any] = {"name": "adt", "image": ADT_V2}
    if readiness is not None:
        container["readinessProbe"] = readiness
    if drain:
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": drain}}}
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": "adt"}},
                            "template": {"metadata": {"labels": {"app": "adt"}}, "spec": {"containers": [container]}},
                            "strategy": strategy}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": API_VERSION, "kind": "Rollout",
            "metadata": {"name": "legacy-adt", "annotations": {"careops.io/on-failure": on_failure}}, "spec": spec}


def rolling(*, max_unavailable: int = 0, path: str = "/health", on_failure: str = "abort") -> dict[str, Any]:
    """Three copies replaced with one surge copy at a time; no drain wait (the stand-in stack has no traffic)."""
    return make_rollout({"canary": {"maxSurge": 1, "maxUnavailable": max_unavailable}}, replicas=3,
                        on_failure=on_failure,
                        readiness={"httpGet": {"path": path, "port": 8081}, "periodSeconds": 1, "successThreshold": 2})


BLUE_GREEN = make_rollout({"blueGreen": {"activeService": "router"}})
CANARY = make_rollout({"canary": {"stableService": "adt-blue", "canaryService": "adt-green",
                                  "trafficRouting": {"nginx": {"stableIngress": "router"}},
                                  "steps": [{"setWeight": 100}]}})
ROLLING = rolling()


def test_the_controller_keeps_its_public_surface() -> None:
    """Notebooks, checks and the bench call these; the split into one file per strategy keeps them."""
    for name in ("start", "run", "blue_green", "promote", "canary", "rolling_update", "naive_replace",
                 "start_service", "wait_healthy", "prepare_volume", "active_backend", "serving", "router"):
        assert hasattr(RolloutController, name), name
    assert issubclass(RolloutController, ReleaseStack)
    for name in ("RolloutController", "RolloutResult", "audit_log", "replica_number", "COLOURS",
                 "SERVICE_VOLUME", "REPLICA_PREFIX"):
        assert hasattr(controller_module, name), name
    assert {"RolloutController", "RolloutResult", "audit_log", "parse_rollout"} <= set(rollout.__all__)


@pytest.mark.parametrize("spec, chosen", [(BLUE_GREEN, "deploy_blue_green"), (CANARY, "deploy_canary"),
                                          (ROLLING, "deploy_rolling_update")])
def test_run_picks_the_strategy_the_spec_names(monkeypatch: pytest.MonkeyPatch, spec: dict[str, Any],
                                               chosen: str) -> None:
    called: list[tuple[str, Any]] = []
    for name in ("deploy_blue_green", "deploy_canary", "deploy_rolling_update"):
        monkeypatch.setattr(controller_module, name,
                            lambda stack, spec, *, _n=name, **kw: called.append((_n, kw)) or "done")
    ctl = RolloutController(lab=None)  # type: ignore[arg-type] - run() only dispatches here
    traffic = object()
    assert ctl.run(spec, traffic=traffic) == "done"  # the spec is parsed once, then handed on
    assert [n for n, _ in called] == [chosen]
    assert called[0][1] == ({} if chosen == "deploy_blue_green" else {"traffic": traffic})


class StandInStack:
    """Copies are names and the router is the hosts it shares traffic between; ``bad_image``'s copies never
    become healthy. Stands in for ReleaseStack, whose engine-backed behaviour test_rollout.py measures."""

    def __init__(self, hosts: list[str], image: str = ADT_V1, bad_image: str | None = None) -> None:
        self.running = {h: image for h in hosts}
        self.most_running = len(hosts)
        self.last = len(hosts)
        self.bad_image = bad_image
        self.recorded: list[str] = []
        self.router = SimpleNamespace(name="router", config=RouterConfig.weighted({h: 100 for h in hosts}),
                                      apply=self._apply)

    def _apply(self, config: RouterConfig) -> SimpleNamespace:
        assert all(b.host in self.running for b in config.http), "the router never points at a stopped copy"
        self.router.config = config
        return SimpleNamespace(seconds=0.0)

    def check_router(self, active_service: str) -> None:
        assert active_service == "router"

    def serving(self) -> list[str]:
        return [b.host for b in self.router.config.http if b.weight > 0]

    def image_of(self, host: str) -> str:
        return self.running[host]

    def next_replica_names(self, count: int) -> list[str]:
        names = [f"adt-{self.last + i}" for i in range(1, count + 1)]
        self.last += count
        return names

    def start_service(self, image: str, name: str) -> None:
        self.running[name] = image
        self.most_running = max(self.most_running, len(self.running))

    def wait_healthy(self, host: str, check: Any) -> tuple[bool, str]:
        ok = self.running[host] != self.bad_image
        return ok, "" if ok else f"GET {check.path} answered 404, expected 200"

    def stop_all(self, hosts: list[str]) -> None:
        for host in hosts:
            self.running.pop(host, None)

    def watch(self, spec: Any, result: RolloutResult, traffic: Any, seconds: float) -> bool:
        return True

    def record(self, spec: Any, result: RolloutResult) -> None:
        self.recorded.append(result.outcome)


def test_rolling_update_rounds_surge_one_copy_and_never_serve_fewer() -> None:
    stack = StandInStack(["adt-1", "adt-2", "adt-3"])
    result = deploy_rolling_update(stack, parse_rollout(ROLLING))  # type: ignore[arg-type]
    assert result.outcome == "promoted" and stack.recorded == ["promoted"]
    assert result.to_backend == "adt-4, adt-5, adt-6" and stack.serving() == ["adt-4", "adt-5", "adt-6"]
    assert (result.most_running, result.fewest_serving) == (4, 3) == (stack.most_running, 3)
    assert [label for label, _ in result.events if label.endswith("healthy")] == [
        "round 1: adt-4 healthy", "round 2: adt-5 healthy", "round 3: adt-6 healthy"]
    assert result.at("round 1: adt-4 in, adt-1 out") is not None
    assert set(stack.running.values()) == {ADT_V2}


def test_rolling_update_with_an_unhealthy_copy_rolls_back_to_full_strength_or_aborts() -> None:
    stack = StandInStack(["adt-1", "adt-2", "adt-3"], bad_image=ADT_V2)
    result = deploy_rolling_update(stack, parse_rollout(  # type: ignore[arg-type]
        rolling(max_unavailable=1, path="/ready", on_failure="rollback")))
    assert result.outcome == "rolled-back" and result.rolled_back, result.reason
    assert "answered 404" in result.reason and f"rolled back to {ADT_V1}" in result.reason
    serving = stack.serving()
    assert len(serving) == 3 and "adt-1" not in serving  # adt-1 was taken out (maxUnavailable 1), then refilled
    assert result.fewest_serving == 2 and set(stack.running.values()) == {ADT_V1}
    aborted = deploy_rolling_update(stack, parse_rollout(rolling(max_unavailable=1, path="/ready")))  # type: ignore[arg-type]
    assert aborted.outcome == "aborted" and len(stack.serving()) == 2  # abort leaves what serves
