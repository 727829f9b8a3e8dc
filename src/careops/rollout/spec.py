"""The rollout spec learners write: the shape of an Argo Rollouts ``Rollout``, checked key by key.

Why Argo's shape: it is what a hospital's platform team would use on
Kubernetes, so what learners write here transfers. careops executes it itself
(``careops.rollout.controller``), the same code in the lab and in the grader.

    apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata:
      name: legacy-adt
      annotations: {careops.io/change-id: CHG-1042, careops.io/approved-by: cab-chair}
    spec:
      template:
        spec:
          containers:
            - name: adt
              image: careops/legacy-adt:v2
      strategy:
        blueGreen:                      # or canary: {steps: [...]}
          activeService: router         # the router that carries live traffic
          previewService: adt-green     # the new release's container (default: the other colour)
          autoPromotionEnabled: true
          prePromotionAnalysis:
            healthCheck: {path: /health, expectStatus: 200, successes: 3, intervalSeconds: 1, timeoutSeconds: 30}
          scaleDownDelaySeconds: 5
      rollback: {onFailure: rollback, maxFailedRequests: 50}

A third strategy, ``rollingUpdate``, takes the shape of a Kubernetes Deployment's
(Argo's canary without steps does the same): ``spec.replicas`` copies serve
behind the router, and they are replaced a few at a time, each new copy healthy
before it gets traffic and each old one drained before it stops::

      replicas: 3
      strategy:
        rollingUpdate:
          activeService: router
          maxSurge: 1              # new copies started beyond `replicas` at a time
          maxUnavailable: 0        # copies that may be out of service at a time
          healthCheck: {path: /health, successes: 2, intervalSeconds: 0.5}
          drainSeconds: 2          # an old copy, out of the router, finishes what it holds
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from careops import legacy_adt as adt
from careops.errors import RolloutError
from careops.images.catalog import ADT_REPOSITORY, ADT_V2
from careops.router.yamlpos import Located, load_located, require_mapping
from careops.report import theme

API_VERSION = "argoproj.io/v1alpha1"
APPROVED_BY = "careops.io/approved-by"
CHANGE_ID = "careops.io/change-id"
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$")
MAX_REPLICAS = 5
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


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

def _seconds(doc: Located, value: Any, path: tuple[Any, ...], *, minimum: float = 0.0) -> float:
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        m = _DURATION_RE.match(str(value)) if value is not None else None
        if not m:
            raise doc.fail(path, f"expected a duration such as 10, 10s, 500ms or 2m, got {value!r}",
                           fix="write a number of seconds, or a number with ms, s or m")
        seconds = float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]
    if seconds < minimum:
        raise doc.fail(path, f"expected at least {minimum:g} s, got {seconds:g} s", fix=f"use {minimum:g} s or more")
    return seconds


def _int(doc: Located, value: Any, path: tuple[Any, ...], lo: int, hi: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise doc.fail(path, f"expected a whole number {lo}..{hi}, got {value!r}", fix=fix)
    return value


def _number(doc: Located, value: Any, path: tuple[Any, ...], lo: float, hi: float, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise doc.fail(path, f"expected a number {lo:g}..{hi:g}, got {value!r}", fix=fix)
    return float(value)


def _name(doc: Located, value: Any, path: tuple[Any, ...], what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise doc.fail(path, f"expected {what} (lower-case letters, digits, '-'), got {value!r}",
                       fix="e.g. router, adt-green")
    return value


def _bool(doc: Located, value: Any, path: tuple[Any, ...]) -> bool:
    if not isinstance(value, bool):
        raise doc.fail(path, f"expected true or false, got {value!r}", fix="write true or false")
    return value


def _health(doc: Located, value: Any, path: tuple[Any, ...]) -> HealthCheck:
    m = require_mapping(doc, value, path, {
        "path": f"HTTP path, e.g. {adt.HEALTH_PATH}", "port": f"the service's HTTP port ({adt.HTTP_PORT})",
        "expectStatus": "the status that means healthy (200)", "successes": "consecutive good answers needed",
        "intervalSeconds": "seconds between checks", "timeoutSeconds": "give up (abort) after this long"})
    p = m.get("path", adt.HEALTH_PATH)
    if not isinstance(p, str) or not p.startswith("/"):
        raise doc.fail(path + ("path",), f"expected a path starting with '/', got {p!r}", fix=f"e.g. path: {adt.HEALTH_PATH}")
    return HealthCheck(
        path=p,
        port=_int(doc, m.get("port", adt.HTTP_PORT), path + ("port",), 1, 65535,
                  f"{adt.HTTP_PORT} is the service's HTTP port"),
        expect_status=_int(doc, m.get("expectStatus", 200), path + ("expectStatus",), 100, 599, "e.g. 200"),
        successes=_int(doc, m.get("successes", 3), path + ("successes",), 1, 100, "e.g. 3"),
        interval_seconds=_seconds(doc, m.get("intervalSeconds", 1), path + ("intervalSeconds",), minimum=0.1),
        timeout_seconds=_seconds(doc, m.get("timeoutSeconds", 30), path + ("timeoutSeconds",), minimum=1),
    )


def _blue_green(doc: Located, value: Any, path: tuple[Any, ...]) -> BlueGreen:
    m = require_mapping(doc, value, path, {
        "activeService": "the router carrying live traffic", "previewService": "the new release's container name",
        "autoPromotionEnabled": "switch as soon as it is healthy (true) or wait for promote()",
        "prePromotionAnalysis": "{healthCheck: {...}}: what must hold before the switch",
        "scaleDownDelaySeconds": "seconds the old release keeps running after the switch (drain)"})
    if "activeService" not in m:
        raise doc.fail(path, "no activeService: which router carries live traffic?", fix="add activeService: router")
    analysis = require_mapping(doc, m.get("prePromotionAnalysis", {}), path + ("prePromotionAnalysis",),
                               {"healthCheck": "path, port, expectStatus, successes, intervalSeconds, timeoutSeconds"})
    return BlueGreen(
        active_service=_name(doc, m["activeService"], path + ("activeService",), "the router's name"),
        preview_service=(_name(doc, m["previewService"], path + ("previewService",), "a container name")
                         if m.get("previewService") is not None else None),
        auto_promotion=_bool(doc, m.get("autoPromotionEnabled", True), path + ("autoPromotionEnabled",)),
        health_check=_health(doc, analysis.get("healthCheck", {}), path + ("prePromotionAnalysis", "healthCheck")),
        scale_down_delay_seconds=_seconds(doc, m.get("scaleDownDelaySeconds", 5), path + ("scaleDownDelaySeconds",)),
    )


def _analysis(doc: Located, value: Any, path: tuple[Any, ...]) -> Analysis:
    m = require_mapping(doc, value, path, {
        "windowSeconds": "how much recent traffic to compare", "minSample": "fewest canary requests for a verdict",
        "maxErrorRate": "highest acceptable canary error rate (0..1)",
        "maxP95LatencyRatio": "highest acceptable canary p95 / baseline p95"})
    return Analysis(
        window_seconds=_seconds(doc, m.get("windowSeconds", 10), path + ("windowSeconds",), minimum=1),
        min_sample=_int(doc, m.get("minSample", 100), path + ("minSample",), 1, 1_000_000, "e.g. 100"),
        max_error_rate=_number(doc, m.get("maxErrorRate", 0.01), path + ("maxErrorRate",), 0, 1,
                               "a fraction: 0.01 means 1 %"),
        max_p95_latency_ratio=_number(doc, m.get("maxP95LatencyRatio", 1.5), path + ("maxP95LatencyRatio",), 1, 100,
                                      "e.g. 1.5: the canary may be at most 50 % slower"),
    )


def _canary(doc: Located, value: Any, path: tuple[Any, ...]) -> Canary:
    m = require_mapping(doc, value, path, {
        "activeService": "the router carrying live traffic", "canaryService": "the new release's container name",
        "healthCheck": "what must hold before any traffic goes to the canary",
        "steps": "setWeight / pause / analysis steps, in order"})
    steps_raw = m.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise doc.fail(path + ("steps",), f"expected a non-empty list of steps, got {steps_raw!r}",
                       fix="e.g. steps: [{setWeight: 5}, {pause: {duration: 10s}}, {analysis: {...}}, {setWeight: 100}]")
    steps = []
    for i, raw in enumerate(steps_raw):
        sp = path + ("steps", i)
        item = require_mapping(doc, raw, sp, {"setWeight": "percent of traffic to the canary (0..100)",
                                              "pause": "{duration: 10s}", "analysis": "thresholds and a minimum sample"})
        if len(item) != 1:
            raise doc.fail(sp, f"a step has exactly one of setWeight, pause, analysis; got {sorted(item)}",
                           fix="split it into one step per line")
        key = next(iter(item))
        if key == "setWeight":
            steps.append(Step(set_weight=_int(doc, item[key], sp + (key,), 0, 100, "a percentage, e.g. 5, 25, 100")))
        elif key == "pause":
            pause = require_mapping(doc, item[key], sp + (key,), {"duration": "how long to wait, e.g. 10s"})
            if "duration" not in pause:
                raise doc.fail(sp + (key,), "pause without a duration (an endless pause needs a human; not here)",
                               fix="write pause: {duration: 10s}")
            steps.append(Step(pause_seconds=_seconds(doc, pause["duration"], sp + (key, "duration"))))
        else:
            steps.append(Step(analysis=_analysis(doc, item[key], sp + (key,))))
    weights = [s.set_weight for s in steps if s.set_weight is not None]
    if not weights or weights[-1] != 100:
        raise doc.fail(path + ("steps",), f"the last setWeight must be 100 (full promotion), got {weights[-1:] or 'none'}",
                       fix="end the steps with - setWeight: 100")
    if any(b < a for a, b in zip(weights, weights[1:])):
        raise doc.fail(path + ("steps",), f"setWeight must not go down between steps, got {weights}",
                       fix="order the weights, e.g. 5, 25, 100 (rollback is the policy's job)")
    return Canary(
        active_service=_name(doc, m.get("activeService", "router"), path + ("activeService",), "the router's name"),
        canary_service=(_name(doc, m["canaryService"], path + ("canaryService",), "a container name")
                        if m.get("canaryService") is not None else None),
        health_check=_health(doc, m.get("healthCheck", {}), path + ("healthCheck",)),
        steps=tuple(steps),
    )


def _rolling(doc: Located, value: Any, path: tuple[Any, ...], replicas: int) -> RollingUpdate:
    m = require_mapping(doc, value, path, {
        "activeService": "the router carrying live traffic",
        "maxSurge": "new copies started beyond spec.replicas at a time (0..replicas)",
        "maxUnavailable": "copies that may be out of service at a time (0..replicas)",
        "healthCheck": "what must hold before a new copy gets traffic",
        "drainSeconds": "seconds an old copy keeps running after it left the router"})
    surge = _int(doc, m.get("maxSurge", 1), path + ("maxSurge",), 0, replicas,
                 f"0..{replicas}: 1 starts one new copy beside the {replicas} old ones")
    unavailable = _int(doc, m.get("maxUnavailable", 0), path + ("maxUnavailable",), 0, replicas,
                       f"0..{replicas}: 0 keeps all {replicas} copies serving throughout")
    if surge == 0 and unavailable == 0:
        raise doc.fail(path, "maxSurge and maxUnavailable are both 0: no copy could ever be replaced",
                       fix="maxSurge: 1, maxUnavailable: 0 (one extra copy at a time, full capacity throughout)")
    return RollingUpdate(
        active_service=_name(doc, m.get("activeService", "router"), path + ("activeService",), "the router's name"),
        max_surge=surge, max_unavailable=unavailable,
        health_check=_health(doc, m.get("healthCheck", {}), path + ("healthCheck",)),
        drain_seconds=_seconds(doc, m.get("drainSeconds", 2), path + ("drainSeconds",)),
    )


def parse_rollout(source: str | dict[str, Any]) -> RolloutSpec:
    """Parse and validate a Rollout; every problem names the key path, its line and the fix."""
    doc = load_located(source, what="the rollout spec", error=RolloutError)
    top = require_mapping(doc, doc.data, (), {"apiVersion": API_VERSION, "kind": "Rollout",
                                              "metadata": "name and annotations", "spec": "template and strategy"})
    if top.get("kind") != "Rollout":
        raise doc.fail(("kind",), f"expected kind: Rollout, got {top.get('kind')!r}", fix="write kind: Rollout")
    if top.get("apiVersion", API_VERSION) != API_VERSION:
        raise doc.fail(("apiVersion",), f"expected {API_VERSION}, got {top.get('apiVersion')!r}",
                       fix=f"write apiVersion: {API_VERSION}")
    meta = require_mapping(doc, top.get("metadata"), ("metadata",), {"name": "the rollout's name",
                                                                     "annotations": "change id and approver"})
    name = _name(doc, meta.get("name"), ("metadata", "name"), "a name")
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise doc.fail(("metadata", "annotations"), f"expected a mapping, got {annotations!r}",
                       fix=f"e.g. annotations: {{{CHANGE_ID}: CHG-1042, {APPROVED_BY}: cab-chair}}")
    spec = require_mapping(doc, top.get("spec"), ("spec",), {
        "template": "spec.containers[0].image: the release to deploy", "strategy": "blueGreen or canary",
        "rollback": "onFailure (rollback | abort), maxFailedRequests",
        "replicas": "copies behind the router (rollingUpdate; blueGreen and canary run one per colour)"})
    tpl = require_mapping(doc, spec.get("template"), ("spec", "template"), {"spec": "containers", "metadata": "labels"})
    pod = require_mapping(doc, tpl.get("spec"), ("spec", "template", "spec"), {"containers": "one container"})
    containers = pod.get("containers")
    cpath = ("spec", "template", "spec", "containers")
    if not isinstance(containers, list) or len(containers) != 1:
        raise doc.fail(cpath, f"expected exactly one container, got {containers!r}",
                       fix=f"- name: {adt.CONTAINER}\n  image: {ADT_V2}")
    container = require_mapping(doc, containers[0], cpath + (0,), {"name": "container name", "image": "the release"})
    image = container.get("image")
    if not isinstance(image, str) or ":" not in image or not image.startswith(f"{ADT_REPOSITORY}:"):
        raise doc.fail(cpath + (0, "image"), f"expected a release of the ADT service ({ADT_REPOSITORY}:<tag>), "
                       f"got {image!r}", fix=f"e.g. image: {ADT_V2}")
    strategy = require_mapping(doc, spec.get("strategy"), ("spec", "strategy"),
                               {"blueGreen": "switch all traffic at once", "canary": "shift traffic in steps",
                                "rollingUpdate": "replace spec.replicas copies a few at a time"})
    if len(strategy) != 1:
        raise doc.fail(("spec", "strategy"), f"expected exactly one of blueGreen, canary, rollingUpdate; "
                       f"got {sorted(strategy)}", fix="keep one strategy")
    kind = next(iter(strategy))
    replicas = _int(doc, spec.get("replicas", 3 if kind == "rollingUpdate" else 1), ("spec", "replicas"), 1,
                    MAX_REPLICAS, f"1..{MAX_REPLICAS} copies (a lab on a laptop)")
    if kind != "rollingUpdate" and replicas != 1:
        raise doc.fail(("spec", "replicas"), f"{kind} runs one copy per colour here, got replicas: {replicas}",
                       fix="remove replicas, or use strategy.rollingUpdate to run several copies")
    where = ("spec", "strategy", kind)
    parsed: BlueGreen | Canary | RollingUpdate = (
        _blue_green(doc, strategy[kind], where) if kind == "blueGreen"
        else _canary(doc, strategy[kind], where) if kind == "canary"
        else _rolling(doc, strategy[kind], where, replicas))
    rb = require_mapping(doc, spec.get("rollback", {}), ("spec", "rollback"), {
        "onFailure": "rollback (all traffic back to the stable release) or abort",
        "maxFailedRequests": "failed requests allowed before rolling back"})
    on_failure = rb.get("onFailure", "rollback")
    if on_failure not in ("rollback", "abort"):
        raise doc.fail(("spec", "rollback", "onFailure"), f"expected rollback or abort, got {on_failure!r}",
                       fix="write onFailure: rollback")
    budget = rb.get("maxFailedRequests")
    return RolloutSpec(
        name=name, image=image, strategy=parsed, replicas=replicas,
        rollback=RollbackPolicy(on_failure, None if budget is None else _int(
            doc, budget, ("spec", "rollback", "maxFailedRequests"), 0, 1_000_000, "e.g. 50")),
        approved_by=str(annotations.get(APPROVED_BY, "")), change_id=str(annotations.get(CHANGE_ID, "")),
        annotations={str(k): str(v) for k, v in annotations.items()},
    )
