"""Rolling update: replace the copies behind the router a few at a time, the way a Kubernetes Deployment does."""
from __future__ import annotations

import time

from careops.errors import RolloutError
from careops.rollout.spec import HealthCheck, RollingUpdate, RolloutSpec
from careops.rollout.stack import ReleaseStack, RolloutResult
from careops.router import RouterConfig
from careops.traffic.run import TrafficRun


def deploy_rolling_update(stack: ReleaseStack, spec: RolloutSpec, *,
                          traffic: TrafficRun | None = None) -> RolloutResult:
    """Replace the copies behind the router a few at a time, the way a Kubernetes Deployment does.

    Each round takes up to ``maxUnavailable`` old copies out of the router (drained, then stopped), starts
    up to ``maxSurge`` more new copies than that, waits until every new one is healthy, routes traffic to
    them and then retires as many further old copies. So no more than replicas + maxSurge copies run at
    once, and no fewer than replicas - maxUnavailable serve. A new copy that never becomes healthy, or
    more failed requests than the budget, stops the update: by default (as Argo does) the copies are rolled
    back to the old release the same way; ``careops.io/on-failure: abort`` leaves the healthy copies
    serving, old and new mixed.
    """
    strategy = spec.strategy
    assert isinstance(strategy, RollingUpdate)
    stack.check_router(strategy.active_service)
    old = stack.serving()
    if len(old) != spec.replicas:
        raise RolloutError(f"spec.replicas is {spec.replicas}, but the router serves {len(old)} copies {old}",
                           fix=f"write replicas: {len(old)}, or start the lab with that many copies")
    stable_image = stack.image_of(old[0])
    result = RolloutResult(spec.name, "rollingUpdate", spec.image, ", ".join(old), "")
    result.most_running = result.fewest_serving = len(old)
    result.mark("start")
    new, why = _roll(stack, spec, strategy, result, traffic, old, spec.image, strategy.health_check)
    result.to_backend = ", ".join(new)
    if why is None:
        result.outcome = "promoted"
        result.mark("end")
        stack.record(spec, result)
        return result
    if spec.rollback.on_failure == "abort":
        result.outcome, result.reason = "aborted", why + f"; serving as it is: {', '.join(stack.serving())}"
    else:
        current = stack.serving()
        back = [h for h in current if h in old]
        to_replace = [h for h in current if h not in old]
        known_good = HealthCheck(successes=1, interval_seconds=0.3)  # the stable release served until now
        restored, again = _roll(stack, spec, strategy, result, None, to_replace, stable_image, known_good,
                                keep=back, label="back")
        missing = spec.replicas - len(back) - len(restored)
        if again is None and missing > 0:  # copies taken out before the failure: start them again
            again = _refill(stack, result, back + restored, stable_image, missing, known_good)
        result.rolled_back = True
        result.outcome = "rolled-back"
        result.reason = why + (f"; rolled back to {stable_image}" if again is None
                               else f"; the rollback stopped too: {again}")
    result.mark("end")
    stack.record(spec, result)
    return result


def _route(stack: ReleaseStack, hosts: list[str], result: RolloutResult, label: str) -> None:
    """Share traffic evenly between ``hosts`` (one graceful, validated reload)."""
    current = stack.router.config
    config = RouterConfig.weighted({h: 100 for h in hosts}, http_port=current.http[0].port,
                                   mllp_port=current.mllp[0].port)
    result.reload_seconds.append(stack.router.apply(config).seconds)
    result.fewest_serving = min(result.fewest_serving, len(hosts))
    result.mark(label)


def _roll(stack: ReleaseStack, spec: RolloutSpec, strategy: RollingUpdate, result: RolloutResult,
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
            _route(stack, kept + new + old, result, f"{tag}: {', '.join(down)} out")
            time.sleep(strategy.drain_seconds)  # drain: the copy finishes what it holds, then stops
            stack.stop_all(down)
        names = stack.next_replica_names(count)
        for name in names:
            stack.start_service(image, name)
        result.most_running = max(result.most_running, len(kept + new + old + names))
        for name in names:
            healthy, why = stack.wait_healthy(name, check)
            if not healthy:  # it never got traffic: remove this round's new copies, the rest serves on
                stack.stop_all(names)
                result.mark(f"{tag}: {name} unhealthy")
                return new, f"{name} ({image}) never became healthy: {why}"
        result.mark(f"{tag}: {', '.join(names)} healthy")
        new += names
        retire = old[:count - len(down)]
        old = old[len(retire):]
        _route(stack, kept + new + old, result, f"{tag}: {', '.join(names)} in"
               + (f", {', '.join(retire)} out" if retire else ""))
        if not stack.watch(spec, result, traffic, strategy.drain_seconds if retire else 0):
            stack.stop_all(retire)
            return new, f"{result.failed_requests} failed requests: {budget}"
        stack.stop_all(retire)
    return new, None


def _refill(stack: ReleaseStack, result: RolloutResult, serving: list[str], image: str, count: int,
            check: HealthCheck) -> str | None:
    """Start ``count`` copies of ``image`` and add them to the router once healthy (after a rollback)."""
    names = stack.next_replica_names(count)
    for name in names:
        stack.start_service(image, name)
    for name in names:
        healthy, why = stack.wait_healthy(name, check)
        if not healthy:
            stack.stop_all(names)
            return f"{name} ({image}) never became healthy: {why}"
    _route(stack, serving + names, result, f"back: {', '.join(names)} in")
    return None
