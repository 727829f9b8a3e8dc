"""Canary: shift traffic to the new release step by step (setWeight / pause / analysis), judged on live traffic."""
from __future__ import annotations

import time

from careops import legacy_adt as adt
from careops.errors import RolloutError, RouterConfigError
from careops.rollout.analysis import analyze
from careops.rollout.spec import Canary, RolloutSpec
from careops.rollout.stack import ReleaseStack, RolloutResult, other_colour
from careops.router import RouterConfig
from careops.traffic.run import TrafficRun


def deploy_canary(stack: ReleaseStack, spec: RolloutSpec, *, traffic: TrafficRun | None = None) -> RolloutResult:
    """Shift traffic to the new release step by step (setWeight / pause / analysis). A failed analysis, or
    more failed requests than the ``careops.io/max-failed-requests`` annotation, returns all traffic to the
    stable release (Argo's abort of a canary; careops calls it rollback) or, with ``careops.io/on-failure:
    abort``, stops where it is."""
    strategy = spec.strategy
    assert isinstance(strategy, Canary)
    stack.check_router(strategy.active_service)
    needs_traffic = any(s.analysis for s in strategy.steps) or spec.rollback.max_failed_requests is not None
    if needs_traffic and traffic is None:
        raise RolloutError("this canary has an analysis step or a failure budget, which judge live traffic, "
                           "but no traffic run was given", fix="run(spec, traffic=start_traffic(lab, plan))")
    stable = stack.active_backend()
    new = strategy.canary_service or other_colour(stable)
    if new == stable:
        raise RolloutError(f"canaryService {new!r} is the release serving now", fix="name the canary differently")
    result = RolloutResult(spec.name, "canary", spec.image, stable, new)
    result.mark("start")
    http_port, mllp_port = stack.router.config.http[0].port, stack.router.config.mllp[0].port
    try:
        if not stack.bring_up(spec, result, new, strategy.health_check):
            return result
        versions = {stable: _version_of(stack, stable), new: _version_of(stack, new)}
        upstream = {f"{stack.lab.container(new).ip()}:{http_port}"}
        for step in strategy.steps:
            if step.set_weight is not None:
                w = step.set_weight
                config = (RouterConfig.single(new, http_port=http_port, mllp_port=mllp_port) if w == 100 else
                          RouterConfig.weighted({stable: 100 - w, new: w}, http_port=http_port,
                                                mllp_port=mllp_port))
                result.reload_seconds.append(stack.router.apply(config).seconds)
                result.mark(f"setWeight {w}")
                if not stack.watch(spec, result, traffic, 0):
                    return _fail(stack, spec, result, f"{result.failed_requests} failed requests exceed the "
                                                      f"budget of {spec.rollback.max_failed_requests}")
            elif step.pause_seconds is not None:
                if not stack.watch(spec, result, traffic, step.pause_seconds):
                    return _fail(stack, spec, result, f"{result.failed_requests} failed requests exceed the "
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
                    if not stack.watch(spec, result, traffic, step.analysis.window_seconds):
                        return _fail(stack, spec, result, f"{result.failed_requests} failed requests exceed the "
                                                          f"budget of {spec.rollback.max_failed_requests}")
                assert verdict is not None
                result.verdicts.append(verdict)
                result.mark("analysis")
                if not verdict.passed:
                    return _fail(stack, spec, result, f"analysis failed: {verdict.reason}")
        stack.stop(stable)
        result.outcome = "promoted"
        result.mark("end")
        stack.record(spec, result)
        return result
    except RouterConfigError as exc:
        return _fail(stack, spec, result, f"the router refused a step: {exc.message}")


def _version_of(stack: ReleaseStack, host: str, port: int = adt.HTTP_PORT) -> str:
    """The release a backend says it is (/health's version; v1 says "v1" there too)."""
    probe = ("import json, sys, urllib.request\n"
             "print(json.load(urllib.request.urlopen(sys.argv[1], timeout=2)).get('version', 'v1'))")
    res = stack.router.container.exec(["python3", "-c", probe, f"http://{host}:{port}{adt.HEALTH_PATH}"], check=False,
                                      timeout=10)
    return res.output.strip().splitlines()[-1] if res.ok and res.output.strip() else "unknown"


def _fail(stack: ReleaseStack, spec: RolloutSpec, result: RolloutResult, reason: str) -> RolloutResult:
    """The rollback policy: all traffic back to the stable release and the canary removed, or (abort) stop
    here and leave the routing as it is for a human to decide."""
    if spec.rollback.on_failure == "rollback":
        stable = result.from_backend
        current = stack.router.config
        stack.router.apply(RouterConfig.single(stable, http_port=current.http[0].port,
                                               mllp_port=current.mllp[0].port))
        result.mark("rollback")
        stack.stop(result.to_backend)
        result.rolled_back = True
        result.outcome, result.reason = "rolled-back", reason + f"; all traffic back on {stable}"
    else:
        result.outcome, result.reason = "aborted", reason + "; routing left as it was (careops.io/on-failure: abort)"
    result.mark("end")
    stack.record(spec, result)
    return result
