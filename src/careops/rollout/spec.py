"""The rollout spec learners write: an Argo Rollouts ``Rollout``, checked against Argo's schema, run by careops.

What learners write is a valid ``Rollout`` (``argoproj.io/v1alpha1``) that would
apply on a real cluster: it is checked against the CRD's openAPIV3Schema of
Argo Rollouts v1.9.1, vendored offline (:mod:`careops.rollout.argo`), strictly
(an unknown key is an error with its line, as ``kubectl apply --validate=strict``).
careops then executes it itself (``careops.rollout.controller``), the same code
in the lab and in the grader, mapping Argo's fields onto what its strategies run:

    apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata:
      name: legacy-adt
      annotations:                         # careops-only settings live here (Argo ignores annotations)
        careops.io/change-id: CHG-1042
        careops.io/approved-by: cab-chair
    spec:
      selector: {matchLabels: {app: legacy-adt}}
      progressDeadlineSeconds: 30          # not healthy within 30 s: the rollout fails (careops default 30)
      template:
        metadata: {labels: {app: legacy-adt}}
        spec:
          containers:
            - name: adt
              image: careops/legacy-adt:v2
              readinessProbe:              # "healthy": N answers in a row, every periodSeconds
                httpGet: {path: /health, port: 8081}
                periodSeconds: 1
                successThreshold: 3
      strategy:
        blueGreen:
          activeService: router            # the router that carries live traffic
          previewService: adt-green        # the new release's container
          autoPromotionEnabled: true
          scaleDownDelaySeconds: 3         # blue drains this long after the switch (Argo's default: 30)

The canary shifts traffic through careops' nginx router, as Argo's NGINX
traffic routing does, and its analysis steps name careops' built-in analysis
template with the thresholds as arguments (Argo passes ``args`` to an
``AnalysisTemplate``; the one careops runs is :data:`ANALYSIS_TEMPLATE`)::

      strategy:
        canary:
          stableService: <the serving release's container>
          canaryService: <the new release's container>
          trafficRouting: {nginx: {stableIngress: router}}
          steps:
            - setWeight: <percent>
            - pause: {duration: <seconds>s}
            - analysis:
                templates: [{templateName: careops-canary}]
                args:
                  - {name: window-seconds, value: "<seconds>"}
                  - {name: min-sample, value: "<requests>"}
                  - {name: max-error-rate, value: "<fraction>"}
                  - {name: max-p95-latency-ratio, value: "<ratio>"}
            - setWeight: 100

A canary **without steps** is Argo's rolling update (a Deployment's): ``spec.replicas``
copies are replaced ``maxSurge``/``maxUnavailable`` at a time (numbers or
percentages, rounded as Kubernetes does); each new copy is ready (its
``readinessProbe``) before it gets traffic, and an old one, out of the router,
finishes what it holds for its ``lifecycle.preStop.sleep.seconds`` (the drain)
before it stops.

careops-only settings are **annotations** (strings, as Kubernetes requires):
``careops.io/change-id`` and ``careops.io/approved-by`` for the change record,
``careops.io/max-failed-requests`` (roll back once more requests than this
failed, even between analyses) and ``careops.io/on-failure`` (``rollback``,
Argo's behaviour for a canary: all traffic back to the stable release; or
``abort``: stop where it is). A failed blue/green never switches.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from careops import legacy_adt as adt
from careops.errors import RolloutError
from careops.images.catalog import ADT_REPOSITORY, ADT_V2
from careops.router.yamlpos import Located, load_located
from careops.report import theme

API_VERSION = "argoproj.io/v1alpha1"
APPROVED_BY = "careops.io/approved-by"
CHANGE_ID = "careops.io/change-id"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
MAX_REPLICAS = 5


@dataclass(frozen=True)
class HealthCheck:
    """What "healthy" means before any traffic is switched: N consecutive expected answers on an HTTP path."""

    path: str = adt.HEALTH_PATH
    port: int = adt.HTTP_PORT
    expect_status: int = 200
    successes: int = 3
    interval_seconds: float = 1.0
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class BlueGreen:
    active_service: str = "router"
    preview_service: str | None = None
    auto_promotion: bool = True
    health_check: HealthCheck = HealthCheck()
    scale_down_delay_seconds: float = 5.0


@dataclass(frozen=True)
class Analysis:
    """Compare canary with baseline over the last ``window_seconds`` of traffic; too few requests = no verdict."""

    window_seconds: float = 10.0
    min_sample: int = 100
    max_error_rate: float = 0.01
    max_p95_latency_ratio: float = 1.5


@dataclass(frozen=True)
class Step:
    """One canary step: exactly one of set_weight, pause_seconds, analysis."""

    set_weight: int | None = None
    pause_seconds: float | None = None
    analysis: Analysis | None = None

    def describe(self) -> str:
        if self.set_weight is not None:
            return f"setWeight {self.set_weight}"
        if self.pause_seconds is not None:
            return f"pause {self.pause_seconds:g} s"
        return "analysis"


@dataclass(frozen=True)
class Canary:
    active_service: str = "router"
    canary_service: str | None = None
    health_check: HealthCheck = HealthCheck()
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class RollingUpdate:
    """Replace ``replicas`` copies a few at a time: never more than replicas + max_surge running, never fewer
    than replicas - max_unavailable serving."""

    active_service: str = "router"
    max_surge: int = 1
    max_unavailable: int = 0
    health_check: HealthCheck = HealthCheck()
    drain_seconds: float = 2.0


@dataclass(frozen=True)
class RollbackPolicy:
    #: "rollback": return all traffic to the stable release; "abort": stop where it is (blue/green: keep blue)
    on_failure: str = "rollback"
    #: failed requests a deployment may cause before it is rolled back (None: no budget)
    max_failed_requests: int | None = None


@dataclass(frozen=True)
class RolloutSpec:
    name: str
    image: str
    strategy: BlueGreen | Canary | RollingUpdate
    rollback: RollbackPolicy = RollbackPolicy()
    #: copies of the release behind the router (rollingUpdate; blue/green and canary run one per colour)
    replicas: int = 1
    approved_by: str = ""
    change_id: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        if isinstance(self.strategy, BlueGreen):
            return "blueGreen"
        return "canary" if isinstance(self.strategy, Canary) else "rollingUpdate"

    def _repr_html_(self) -> str:
        rows: dict[str, Any] = {"name": self.name, "image": self.image, "strategy": self.kind,
                                "approved by": self.approved_by or "-", "change": self.change_id or "-"}
        if isinstance(self.strategy, Canary):
            rows["steps"] = ", ".join(s.describe() for s in self.strategy.steps)
        if isinstance(self.strategy, RollingUpdate):
            rows["replicas"] = (f"{self.replicas} (maxSurge {self.strategy.max_surge}, "
                                f"maxUnavailable {self.strategy.max_unavailable})")
        return theme.card(f"Rollout {self.name}", theme.fields(rows))


# -- parsing ---------------------------------------------------------------------

#: the one analysis template careops runs: canary against baseline on live traffic (careops.rollout.analysis)
ANALYSIS_TEMPLATE = "careops-canary"
#: its arguments: name -> (Analysis field, what it is)
ANALYSIS_ARGS = {
    "window-seconds": ("window_seconds", "seconds of recent traffic compared"),
    "min-sample": ("min_sample", "fewest canary requests for a verdict"),
    "max-error-rate": ("max_error_rate", "highest canary error rate, 0..1"),
    "max-p95-latency-ratio": ("max_p95_latency_ratio", "highest canary p95 / baseline p95"),
}
#: keys of careops' earlier rollout shape, and where their meaning lives in a real Rollout
MOVED = {
    "rollback": f"careops' rollback policy is in metadata.annotations ({'careops.io/max-failed-requests'}, "
                f"{'careops.io/on-failure'}): Argo Rollouts has no spec.rollback",
    "healthCheck": "health is the container's readinessProbe (httpGet, periodSeconds, successThreshold)",
    "rollingUpdate": "a rolling update is a canary without steps (maxSurge, maxUnavailable)",
    "drainSeconds": "the drain is the container's lifecycle.preStop.sleep.seconds",
    "activeService": "a canary names stableService and canaryService, and the router in trafficRouting.nginx",
}
MAX_FAILED_REQUESTS = "careops.io/max-failed-requests"
ON_FAILURE = "careops.io/on-failure"
#: careops' default and upper bound for spec.progressDeadlineSeconds in a lab (Argo's default, 600 s, is for clusters)
DEFAULT_PROGRESS_DEADLINE = 30
MAX_PROGRESS_DEADLINE = 300
#: Kubernetes' probe defaults
PROBE_PERIOD, PROBE_SUCCESS = 10, 1
#: Argo Rollouts' default for blueGreen.scaleDownDelaySeconds
ARGO_SCALE_DOWN_DELAY = 30
_ARGO_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h)?\s*$")


def _int(doc: Located, value: Any, path: tuple[Any, ...], lo: int, hi: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise doc.fail(path, f"expected a whole number {lo}..{hi}, got {value!r}", fix=fix)
    return value


def _number_text(doc: Located, value: Any, path: tuple[Any, ...], lo: float, hi: float, fix: str) -> float:
    """An analysis argument: Argo passes args as strings ("0.01"); the number in it must be within lo..hi."""
    try:
        number = float(value) if isinstance(value, str) else float("nan")
    except ValueError:
        number = float("nan")
    if not lo <= number <= hi:
        bounds = "..".join(str(int(b)) if float(b).is_integer() else f"{b:g}" for b in (lo, hi))
        raise doc.fail(path, f"expected a number {bounds} written as a string, got {value!r}", fix=fix)
    return number


def _name(doc: Located, value: Any, path: tuple[Any, ...], what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise doc.fail(path, f"expected {what} (lower-case letters, digits, '-'), got {value!r}",
                       fix="e.g. router, adt-green")
    return value


def _only(doc: Located, value: dict[str, Any], path: tuple[Any, ...], runs: dict[str, str]) -> dict[str, Any]:
    """Keys Argo allows (the schema said so) that careops cannot execute are refused, by name."""
    for key in value:
        if key not in runs:
            raise doc.fail(path + (key,), f"{key!r} is valid in Argo Rollouts, but careops cannot run it in this lab",
                           fix="remove it; careops runs: " + "; ".join(f"{k} ({v})" for k, v in runs.items()))
    return value


def _duration(doc: Located, value: Any, path: tuple[Any, ...]) -> float:
    """Argo's pause duration: whole seconds, or a string such as 10s, 2m, 1h."""
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    m = _ARGO_DURATION.match(str(value))
    if not m:
        raise doc.fail(path, f"expected a duration such as 10, 10s, 2m or 1h, got {value!r}",
                       fix="Argo Rollouts takes whole seconds or a number with s, m or h")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def _annotation(doc: Located, annotations: dict[str, Any], key: str) -> str | None:
    value = annotations.get(key)
    if value is not None and not isinstance(value, str):
        raise doc.fail(("metadata", "annotations", key), f"expected a string, got {value!r}: Kubernetes annotations "
                       "are strings", fix=f'write it in quotes, e.g. {key}: "{value}"')
    return value


def _container(doc: Located, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    cpath = ("spec", "template", "spec", "containers")
    pod = _only(doc, (spec.get("template") or {}).get("spec") or {}, ("spec", "template", "spec"),
                {"containers": "one container: the ADT service"})
    containers = pod.get("containers")
    if not isinstance(containers, list) or len(containers) != 1:
        raise doc.fail(cpath, f"expected exactly one container, got {containers!r}",
                       fix=f"- name: {adt.CONTAINER}\n  image: {ADT_V2}")
    container = _only(doc, containers[0], cpath + (0,), {
        "name": "container name", "image": "the release", "readinessProbe": "httpGet, periodSeconds, successThreshold",
        "lifecycle": "preStop.sleep.seconds: the drain", "ports": "the service's ports (documentation)"})
    image = container.get("image")
    if not isinstance(image, str) or ":" not in image or not image.startswith(f"{ADT_REPOSITORY}:"):
        raise doc.fail(cpath + (0, "image"), f"expected a release of the ADT service ({ADT_REPOSITORY}:<tag>), "
                       f"got {image!r}", fix=f"e.g. image: {ADT_V2}")
    return image, container


def _health(doc: Located, container: dict[str, Any], spec: dict[str, Any]) -> HealthCheck:
    """The container's readinessProbe (Kubernetes' meaning and defaults) and the rollout's progress deadline."""
    where = ("spec", "template", "spec", "containers", 0, "readinessProbe")
    deadline = _int(doc, spec.get("progressDeadlineSeconds", DEFAULT_PROGRESS_DEADLINE),
                    ("spec", "progressDeadlineSeconds"), 1, MAX_PROGRESS_DEADLINE,
                    f"1..{MAX_PROGRESS_DEADLINE} seconds in this lab, e.g. 30")
    probe = container.get("readinessProbe")
    if probe is None:  # Kubernetes: ready once it runs; careops still waits for one answer on /health
        return HealthCheck(successes=1, interval_seconds=1.0, timeout_seconds=float(deadline))
    _only(doc, probe, where, {"httpGet": "path and port", "periodSeconds": "seconds between checks",
                              "successThreshold": "answers in a row that mean ready",
                              "failureThreshold": "misses before not ready (kept for Kubernetes)",
                              "timeoutSeconds": "seconds one check may take", "initialDelaySeconds": "wait first"})
    get = probe.get("httpGet")
    if not isinstance(get, dict):
        raise doc.fail(where, "the readinessProbe needs httpGet: careops asks the service over HTTP",
                       fix=f"httpGet: {{path: {adt.HEALTH_PATH}, port: {adt.HTTP_PORT}}}")
    _only(doc, get, where + ("httpGet",), {"path": f"e.g. {adt.HEALTH_PATH}", "port": f"{adt.HTTP_PORT}"})
    path = get.get("path", "/")
    if not isinstance(path, str) or not path.startswith("/"):
        raise doc.fail(where + ("httpGet", "path"), f"expected a path starting with '/', got {path!r}",
                       fix=f"e.g. path: {adt.HEALTH_PATH}")
    return HealthCheck(
        path=path,
        port=_int(doc, get.get("port"), where + ("httpGet", "port"), 1, 65535,
                  f"the service's HTTP port as a number: {adt.HTTP_PORT}"),
        expect_status=200,
        successes=_int(doc, probe.get("successThreshold", PROBE_SUCCESS), where + ("successThreshold",), 1, 100,
                       "e.g. 3 (Kubernetes' default is 1)"),
        interval_seconds=float(_int(doc, probe.get("periodSeconds", PROBE_PERIOD), where + ("periodSeconds",), 1, 60,
                                    "whole seconds, at least 1 (Kubernetes' default is 10)")),
        timeout_seconds=float(deadline),
    )


def _drain(doc: Located, container: dict[str, Any]) -> float:
    """``lifecycle.preStop.sleep.seconds``: how long a copy out of the router keeps serving what it holds."""
    where = ("spec", "template", "spec", "containers", 0, "lifecycle")
    life = container.get("lifecycle")
    if life is None:
        return 0.0
    _only(doc, life, where, {"preStop": "sleep: {seconds: N}: the drain"})
    pre = _only(doc, life.get("preStop") or {}, where + ("preStop",), {"sleep": "{seconds: N}"})
    if "sleep" not in pre:
        raise doc.fail(where + ("preStop",), "careops runs a preStop hook that sleeps (the drain), nothing else",
                       fix="preStop: {sleep: {seconds: 2}}")
    return float(_int(doc, pre["sleep"].get("seconds"), where + ("preStop", "sleep", "seconds"), 0, 60,
                      "e.g. 2: the copy finishes its requests and messages, then stops"))


def _blue_green(doc: Located, value: dict[str, Any], path: tuple[Any, ...], health: HealthCheck) -> BlueGreen:
    m = _only(doc, value, path, {
        "activeService": "the router carrying live traffic", "previewService": "the new release's container name",
        "autoPromotionEnabled": "switch as soon as it is ready (true) or wait for promote()",
        "scaleDownDelaySeconds": "seconds the old release keeps running after the switch (drain)"})
    return BlueGreen(
        active_service=_name(doc, m["activeService"], path + ("activeService",), "the router's name"),
        preview_service=(_name(doc, m["previewService"], path + ("previewService",), "a container name")
                         if m.get("previewService") is not None else None),
        auto_promotion=bool(m.get("autoPromotionEnabled", True)),
        health_check=health,
        scale_down_delay_seconds=float(_int(doc, m.get("scaleDownDelaySeconds", ARGO_SCALE_DOWN_DELAY),
                                            path + ("scaleDownDelaySeconds",), 0, 600,
                                            f"whole seconds, e.g. 3 (Argo's default is {ARGO_SCALE_DOWN_DELAY})")),
    )


def _analysis(doc: Located, value: dict[str, Any], path: tuple[Any, ...]) -> Analysis:
    _only(doc, value, path, {"templates": f"[{{templateName: {ANALYSIS_TEMPLATE}}}]", "args": "its thresholds"})
    names = [t.get("templateName") for t in value.get("templates") or []]
    if names != [ANALYSIS_TEMPLATE]:
        raise doc.fail(path + ("templates",), f"expected the one analysis template careops runs, "
                       f"{ANALYSIS_TEMPLATE}, got {names}", fix=f"templates: [{{templateName: {ANALYSIS_TEMPLATE}}}]")
    given: dict[str, Any] = {}
    for i, arg in enumerate(value.get("args") or []):
        name = arg.get("name")
        if name not in ANALYSIS_ARGS:
            raise doc.fail(path + ("args", i, "name"), f"unknown argument {name!r} of {ANALYSIS_TEMPLATE}",
                           fix="use: " + "; ".join(f"{k} ({v[1]})" for k, v in ANALYSIS_ARGS.items()))
        if "value" not in arg:
            raise doc.fail(path + ("args", i), f"argument {name} has no value", fix=f'{{name: {name}, value: "10"}}')
        given[name] = (i, arg["value"])
    missing = [k for k in ANALYSIS_ARGS if k not in given]
    if missing:
        raise doc.fail(path + ("args",), f"missing argument(s) {', '.join(missing)}: careops compares nothing "
                       "without its thresholds", fix="give all four: " + ", ".join(ANALYSIS_ARGS))

    def arg(name: str, lo: float, hi: float, fix: str) -> float:
        i, raw = given[name]
        return _number_text(doc, raw, path + ("args", i, "value"), lo, hi, fix)

    min_sample = arg("min-sample", 1, 1_000_000, 'a whole number of requests, e.g. "100"')
    if min_sample != int(min_sample):
        raise doc.fail(path + ("args", given["min-sample"][0], "value"), f"expected a whole number, got "
                       f"{given['min-sample'][1]!r}", fix='e.g. "100"')
    return Analysis(
        window_seconds=arg("window-seconds", 1, 600, 'seconds, e.g. "10"'),
        min_sample=int(min_sample),
        max_error_rate=arg("max-error-rate", 0, 1, 'a fraction: "0.01" means 1 %'),
        max_p95_latency_ratio=arg("max-p95-latency-ratio", 1, 100, '"1.5": the canary may be at most 50 % slower'),
    )


def _steps(doc: Located, raw_steps: list[Any], path: tuple[Any, ...]) -> tuple[Step, ...]:
    steps = []
    for i, raw in enumerate(raw_steps):
        sp = path + (i,)
        item = _only(doc, raw, sp, {"setWeight": "percent of traffic to the canary (0..100)",
                                    "pause": "{duration: 10s}", "analysis": f"{ANALYSIS_TEMPLATE} and its args"})
        if len(item) != 1:
            raise doc.fail(sp, f"a step has exactly one of setWeight, pause, analysis; got {sorted(item)}",
                           fix="split it into one step per line")
        key = next(iter(item))
        if key == "setWeight":
            steps.append(Step(set_weight=_int(doc, item[key], sp + (key,), 0, 100, "a percentage, e.g. 5, 25, 100")))
        elif key == "pause":
            if "duration" not in (item[key] or {}):
                raise doc.fail(sp + (key,), "pause without a duration (an endless pause needs a human; not here)",
                               fix="write pause: {duration: 10s}")
            steps.append(Step(pause_seconds=_duration(doc, item[key]["duration"], sp + (key, "duration"))))
        else:
            steps.append(Step(analysis=_analysis(doc, item[key], sp + (key,))))
    weights = [s.set_weight for s in steps if s.set_weight is not None]
    if not weights or weights[-1] != 100:
        raise doc.fail(path, f"the last setWeight must be 100 (full promotion), got {weights[-1:] or 'none'}",
                       fix="end the steps with - setWeight: 100")
    if any(b < a for a, b in zip(weights, weights[1:])):
        raise doc.fail(path, f"setWeight must not go down between steps, got {weights}",
                       fix="order the weights, e.g. 5, 25, 100 (rollback is the policy's job)")
    return tuple(steps)


def _canary(doc: Located, value: dict[str, Any], path: tuple[Any, ...], health: HealthCheck) -> Canary:
    m = _only(doc, value, path, {
        "stableService": "the release serving now (adt-blue)", "canaryService": "the new release's container name",
        "trafficRouting": "{nginx: {stableIngress: router}}: the router that shifts the weights",
        "steps": "setWeight / pause / analysis steps, in order"})
    routing = m.get("trafficRouting")
    if not isinstance(routing, dict) or not isinstance((routing.get("nginx") or {}).get("stableIngress"), str):
        raise doc.fail(path + ("trafficRouting",), "a canary with steps shifts its weights through the router: "
                       "trafficRouting.nginx.stableIngress names it",
                       fix="trafficRouting: {nginx: {stableIngress: router}}")
    _only(doc, routing, path + ("trafficRouting",), {"nginx": "{stableIngress: router}"})
    _only(doc, routing["nginx"], path + ("trafficRouting", "nginx"), {"stableIngress": "the router's name"})
    for key in ("stableService", "canaryService"):
        if key not in m:
            raise doc.fail(path, f"no {key}: Argo Rollouts needs both services with trafficRouting",
                           fix="stableService: adt-blue, canaryService: adt-green")
    stable = _name(doc, m["stableService"], path + ("stableService",), "a container name")
    canary = _name(doc, m["canaryService"], path + ("canaryService",), "a container name")
    if stable == canary:
        raise doc.fail(path + ("canaryService",), f"canaryService and stableService are both {canary!r}",
                       fix="two names: stableService: adt-blue, canaryService: adt-green")
    return Canary(
        active_service=_name(doc, routing["nginx"]["stableIngress"],
                             path + ("trafficRouting", "nginx", "stableIngress"), "the router's name"),
        canary_service=canary, health_check=health, steps=_steps(doc, m["steps"], path + ("steps",)))


def _surge(doc: Located, value: Any, path: tuple[Any, ...], replicas: int, *, up: bool) -> int:
    """maxSurge / maxUnavailable: a number, or a percentage of replicas rounded as Kubernetes does."""
    if isinstance(value, str) and re.fullmatch(r"\d+%", value.strip()):
        share = replicas * int(value.strip()[:-1]) / 100
        value = -int(-share // 1) if up else int(share)
    return _int(doc, value, path, 0, replicas, f"0..{replicas}, or a percentage such as 25%")


def _rolling(doc: Located, value: dict[str, Any], path: tuple[Any, ...], replicas: int, health: HealthCheck,
             drain: float) -> RollingUpdate:
    m = _only(doc, value, path, {"maxSurge": "new copies started beyond spec.replicas at a time",
                                 "maxUnavailable": "copies that may be out of service at a time",
                                 "steps": "none: a canary without steps is a rolling update"})
    surge = _surge(doc, m.get("maxSurge", "25%"), path + ("maxSurge",), replicas, up=True)
    unavailable = _surge(doc, m.get("maxUnavailable", "25%"), path + ("maxUnavailable",), replicas, up=False)
    if surge == 0 and unavailable == 0:
        raise doc.fail(path, "maxSurge and maxUnavailable are both 0: no copy could ever be replaced",
                       fix="maxSurge: 1, maxUnavailable: 0 (one extra copy at a time, full capacity throughout)")
    return RollingUpdate(active_service="router", max_surge=surge, max_unavailable=unavailable, health_check=health,
                         drain_seconds=drain)


def _selector(doc: Located, spec: dict[str, Any]) -> None:
    """Argo's controller needs a selector that matches the pod template's labels."""
    want = (spec.get("selector") or {}).get("matchLabels")
    have = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not want:
        raise doc.fail(("spec",), "no selector.matchLabels: Argo Rollouts finds the rollout's pods by them",
                       fix="selector: {matchLabels: {app: legacy-adt}} and the same labels in template.metadata")
    wrong = {k: v for k, v in want.items() if have.get(k) != v}
    if wrong:
        raise doc.fail(("spec", "template", "metadata", "labels"), f"the pod template's labels {have} do not match "
                       f"the selector {want}", fix="give template.metadata.labels the selector's labels")


def parse_rollout(source: str | dict[str, Any]) -> RolloutSpec:
    """Parse and validate a Rollout (Argo's schema, then what careops runs); every problem names its key and line."""
    from careops.rollout.argo import schema_problems

    doc = load_located(source, what="the rollout spec", error=RolloutError)
    top = doc.data
    if not isinstance(top, dict):
        raise doc.fail((), f"expected a mapping (key: value lines), got {type(top).__name__} {top!r}",
                       fix="start with apiVersion, kind, metadata and spec")
    if top.get("kind") != "Rollout":
        raise doc.fail(("kind",), f"expected kind: Rollout, got {top.get('kind')!r}", fix="write kind: Rollout")
    if top.get("apiVersion") != API_VERSION:
        raise doc.fail(("apiVersion",), f"expected {API_VERSION}, got {top.get('apiVersion')!r}",
                       fix=f"write apiVersion: {API_VERSION}")
    problems = schema_problems(top)
    if problems:
        first = problems[0]
        moved = MOVED.get(str(first.path[-1])) if first.path and "unknown key" in first.message else None
        raise doc.fail(first.path, first.message, fix=f"{moved}; {first.fix}" if moved else first.fix)
    meta = _only(doc, top.get("metadata") or {}, ("metadata",), {"name": "the rollout's name",
                                                                 "annotations": "change id, approver, careops settings",
                                                                 "labels": "labels"})
    name = _name(doc, meta.get("name"), ("metadata", "name"), "a name")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise doc.fail(("metadata", "annotations"), f"expected a mapping, got {annotations!r}",
                       fix=f"e.g. annotations: {{{CHANGE_ID}: CHG-1042, {APPROVED_BY}: cab-chair}}")
    for key in annotations:
        _annotation(doc, annotations, key)
    spec = _only(doc, top["spec"], ("spec",), {
        "selector": "matchLabels of the pods", "template": "the pod: one container, its readinessProbe",
        "strategy": "blueGreen or canary", "replicas": "copies (a canary without steps: the rolling update)",
        "progressDeadlineSeconds": "not ready within this: the rollout fails"})
    _selector(doc, spec)
    image, container = _container(doc, spec)
    health = _health(doc, container, spec)
    strategy = spec.get("strategy") or {}
    if len(strategy) != 1:
        raise doc.fail(("spec", "strategy"), f"expected exactly one of blueGreen, canary; got {sorted(strategy)}",
                       fix="keep one strategy")
    kind = next(iter(strategy))
    where = ("spec", "strategy", kind)
    rolling = kind == "canary" and not strategy[kind].get("steps")
    replicas = _int(doc, spec.get("replicas", 3 if rolling else 1), ("spec", "replicas"), 1,
                    MAX_REPLICAS, f"1..{MAX_REPLICAS} copies (a lab on a laptop)")
    if not rolling and replicas != 1:
        raise doc.fail(("spec", "replicas"), f"{kind} runs one copy per colour here, got replicas: {replicas}",
                       fix="remove replicas, or use a canary without steps (a rolling update) to run several copies")
    drain = _drain(doc, container)
    parsed: BlueGreen | Canary | RollingUpdate = (
        _blue_green(doc, strategy[kind], where, health) if kind == "blueGreen"
        else _rolling(doc, strategy[kind], where, replicas, health, drain) if rolling
        else _canary(doc, strategy[kind], where, health))
    on_failure = _annotation(doc, annotations, ON_FAILURE) or ("abort" if kind == "blueGreen" else "rollback")
    if on_failure not in ("rollback", "abort"):
        raise doc.fail(("metadata", "annotations", ON_FAILURE), f"expected rollback or abort, got {on_failure!r}",
                       fix=f'{ON_FAILURE}: "rollback"')
    budget = _annotation(doc, annotations, MAX_FAILED_REQUESTS)
    if budget is not None and not re.fullmatch(r"\d{1,7}", budget.strip()):
        raise doc.fail(("metadata", "annotations", MAX_FAILED_REQUESTS), f"expected a whole number, got {budget!r}",
                       fix=f'e.g. {MAX_FAILED_REQUESTS}: "50"')
    return RolloutSpec(
        name=name, image=image, strategy=parsed, replicas=replicas,
        rollback=RollbackPolicy(on_failure, None if budget is None else int(budget)),
        approved_by=str(annotations.get(APPROVED_BY, "")), change_id=str(annotations.get(CHANGE_ID, "")),
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
