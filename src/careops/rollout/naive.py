"""Stop and replace: the anti-pattern lesson 1 measures (no strategy at all), for comparison."""
from __future__ import annotations

from careops.rollout.spec import HealthCheck
from careops.rollout.stack import ReleaseStack, RolloutResult


def naive_replace(stack: ReleaseStack, image: str, *, name: str = "naive-replace") -> RolloutResult:
    """Stop the running release, start the new one under the same name, point the router at it again.
    Everything sent in between fails."""
    old = stack.active_backend()
    result = RolloutResult(name, "stop-and-replace", image, old, old)
    result.mark("start")
    stack.stop(old)
    result.mark("stopped")
    stack.start_service(image, old)
    healthy, why = stack.wait_healthy(old, HealthCheck(successes=1, interval_seconds=0.2))
    result.mark("started")
    reload = stack.router.apply(stack.router.config)  # nginx resolved the old container's address: look again
    result.reload_seconds.append(reload.seconds)
    result.mark("switch")
    result.outcome = "replaced" if healthy else "aborted"
    result.reason = "" if healthy else why
    result.mark("end")
    return result
