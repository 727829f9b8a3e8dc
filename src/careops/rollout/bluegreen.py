"""Blue/green: bring up the other colour beside the serving one, check its health, switch all traffic at once."""
from __future__ import annotations

import time

from careops.errors import RolloutError, RouterConfigError
from careops.rollout.spec import BlueGreen, RolloutSpec
from careops.rollout.stack import ReleaseStack, RolloutResult, other_colour
from careops.router import RouterConfig


def deploy_blue_green(stack: ReleaseStack, spec: RolloutSpec) -> RolloutResult:
    """Bring up the new colour, check its health, switch the router (validate + graceful reload), drain
    and stop the old colour after scaleDownDelaySeconds. A target that never becomes healthy, or a router
    config nginx rejects, aborts: the old colour keeps all traffic and the new one is removed."""
    strategy = spec.strategy
    assert isinstance(strategy, BlueGreen)
    stack.check_router(strategy.active_service)
    old = stack.active_backend()
    new = strategy.preview_service or other_colour(old)
    if new == old:
        raise RolloutError(f"previewService {new!r} is the release serving now; blue/green needs a second one",
                           fix=f"name the new colour differently, e.g. previewService: {other_colour(old)}")
    result = RolloutResult(spec.name, "blueGreen", spec.image, old, new)
    result.mark("start")
    try:
        if not stack.bring_up(spec, result, new, strategy.health_check):
            return result
        if not strategy.auto_promotion:
            result.outcome, result.reason = "paused", "healthy; waiting for promote() (autoPromotionEnabled: false)"
            stack.record(spec, result)
            return result
        return _switch(stack, spec, result)
    except RouterConfigError as exc:
        return stack.abort(spec, result, new, f"the router refused the switch: {exc.message}")


def promote_blue_green(stack: ReleaseStack, spec: RolloutSpec, result: RolloutResult) -> RolloutResult:
    """Finish a paused blue/green rollout (autoPromotionEnabled: false) after a human looked at the preview."""
    if result.outcome != "paused":
        raise RolloutError(f"rollout {result.name} is {result.outcome}, not paused", fix="promote only a paused one")
    return _switch(stack, spec, result)


def _switch(stack: ReleaseStack, spec: RolloutSpec, result: RolloutResult) -> RolloutResult:
    """All traffic to the new colour in one reload; the old one stops after scaleDownDelaySeconds."""
    strategy = spec.strategy
    assert isinstance(strategy, BlueGreen)
    current = stack.router.config
    port_http = current.http[0].port
    port_mllp = current.mllp[0].port
    reload = stack.router.apply(RouterConfig.single(result.to_backend, http_port=port_http, mllp_port=port_mllp))
    result.reload_seconds.append(reload.seconds)
    result.mark("switch")
    time.sleep(strategy.scale_down_delay_seconds)
    result.mark("scale-down")
    stack.stop(result.from_backend)
    result.outcome = "promoted"
    result.mark("end")
    stack.record(spec, result)
    return result
