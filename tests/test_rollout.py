"""careops.rollout: the Argo-Rollouts-shaped spec is validated with line/key errors, and the controller's
blue/green switch under >= 100 requests/s plus MLLP traffic fails nothing and loses or duplicates no message --
while the naive stop-and-replace, measured the same way, does fail requests (so the good path's test can fail)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from careops import engine
from careops.audit import AuditLog
from careops.errors import LabError, RolloutError
from careops.images import ensure_images
from careops.images.build import existing_image
from careops.lab import Lab
from careops.rollout import Analysis, BlueGreen, Canary, RollingUpdate, RolloutController, parse_rollout
from careops.rollout.analysis import analyze
from careops.router import ROUTER_IMAGE, Router, RouterConfig
from careops.traffic import TrafficPlan, reconcile, start_traffic, stored_control_ids

BLUE_GREEN = """\
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: legacy-adt
  annotations: {careops.io/change-id: CHG-1042, careops.io/approved-by: cab-chair}
spec:
  selector: {matchLabels: {app: legacy-adt}}
  progressDeadlineSeconds: 30
  template:
    metadata: {labels: {app: legacy-adt}}
    spec:
      containers:
        - name: adt
          image: careops/legacy-adt:v2
          readinessProbe: {httpGet: {path: /health, port: 8081}, periodSeconds: 1, successThreshold: 2}
  strategy:
    blueGreen:
      activeService: router
      previewService: adt-green
      scaleDownDelaySeconds: 3
"""
CANARY = BLUE_GREEN.replace("""    blueGreen:
      activeService: router
      previewService: adt-green
      scaleDownDelaySeconds: 3
""", """    canary:
      stableService: adt-blue
      canaryService: adt-green
      trafficRouting: {nginx: {stableIngress: router}}
      steps:
        - setWeight: 5
        - pause: {duration: 10s}
        - analysis:
            templates: [{templateName: careops-canary}]
            args:
              - {name: window-seconds, value: "10"}
              - {name: min-sample, value: "200"}
              - {name: max-error-rate, value: "0.01"}
              - {name: max-p95-latency-ratio, value: "1.5"}
        - setWeight: 25
        - pause: {duration: 1}
        - setWeight: 100
""")


# -- the spec (no engine) -------------------------------------------------------------

def test_blue_green_spec_parses() -> None:
    spec = parse_rollout(BLUE_GREEN)
    assert spec.image == "careops/legacy-adt:v2" and spec.kind == "blueGreen"
    assert isinstance(spec.strategy, BlueGreen)
    assert spec.strategy.preview_service == "adt-green" and spec.strategy.scale_down_delay_seconds == 3
    assert spec.strategy.health_check.successes == 2 and spec.strategy.health_check.interval_seconds == 1
    assert spec.strategy.health_check.timeout_seconds == 30  # spec.progressDeadlineSeconds
    assert (spec.change_id, spec.approved_by, spec.rollback.on_failure) == ("CHG-1042", "cab-chair", "abort")


def test_canary_spec_parses_steps_in_order() -> None:
    spec = parse_rollout(CANARY)
    assert isinstance(spec.strategy, Canary)
    assert [s.describe() for s in spec.strategy.steps] == ["setWeight 5", "pause 10 s", "analysis", "setWeight 25",
                                                           "pause 1 s", "setWeight 100"]
    assert (spec.strategy.active_service, spec.strategy.canary_service) == ("router", "adt-green")
    assert spec.rollback.on_failure == "rollback"  # Argo's abort of a canary: all traffic back to stable
    assert spec.strategy.steps[2].analysis.min_sample == 200
    assert "setWeight 5" in spec._repr_html_()


@pytest.mark.parametrize("old, new, where, words", [
    ("kind: Rollout", "kind: Deployment", "kind (line 2)", "expected kind: Rollout"),
    ("image: careops/legacy-adt:v2", "image: nginx:latest", "spec.template.spec.containers[0].image (line 14)",
     "careops/legacy-adt"),
    ("scaleDownDelaySeconds: 3", "scaleDownDelaySeconds: soon", "scaleDownDelaySeconds (line 20)", "whole number"),
    ("successThreshold: 2", "successThreshold: two", "readinessProbe.successThreshold (line 15)", "whole number"),
    ("activeService: router", "activeServce: router", "blueGreen.activeServce (line 18)", "unknown key"),
    ("  strategy:\n", "  rollback: {onFailure: abort}\n  strategy:\n", "spec.rollback (line 16)", "unknown key"),
    ("  strategy:\n", "  strategy:\n    canary: {steps: [{setWeight: 100}]}\n", "spec.strategy (line 16)",
     "exactly one of blueGreen, canary"),
    ("periodSeconds: 1", "periodSeconds: 0.5", "readinessProbe.periodSeconds (line 15)", "whole number"),
    ("{app: legacy-adt}}\n  progress", "{app: adt}}\n  progress", "spec.template.metadata.labels", "do not match"),
    ("careops.io/approved-by: cab-chair}", "careops.io/approved-by: cab-chair, careops.io/on-failure: later}",
     "careops.io/on-failure (line 5)", "rollback or abort"),
    ("      scaleDownDelaySeconds: 3\n", "      scaleDownDelaySeconds: 3\n      antiAffinity: {}\n",
     "blueGreen.antiAffinity (line 21)", "careops cannot run it"),
])
def test_bad_blue_green_spec_names_key_line_and_fix(old: str, new: str, where: str, words: str) -> None:
    assert old in BLUE_GREEN
    with pytest.raises(RolloutError) as info:
        parse_rollout(BLUE_GREEN.replace(old, new, 1))
    assert where in info.value.message and words in info.value.message, info.value.message
    assert info.value.fix


@pytest.mark.parametrize("old, new, words", [
    ("        - setWeight: 100\n", "", "last setWeight must be 100"),
    ("        - setWeight: 25\n", "        - setWeight: 2\n", "must not go down"),
    ("pause: {duration: 10s}", "pause: {}", "without a duration"),
    ('value: "200"', 'value: "-1"', "number 1..1000000"),
    ('value: "0.01"', 'value: "5"', "0..1"),
    ('value: "0.01"', "value: 0.01", "expected a string"),
    ("templateName: careops-canary", "templateName: error-rate", "one analysis template careops runs"),
    ("{name: window-seconds", "{name: window", "unknown argument"),
    ("pause: {duration: 10s}", "pause: {duration: 10 minutes}", "duration such as"),
    ("        - setWeight: 5\n", "        - {setWeight: 5, pause: {duration: 1}}\n", "exactly one of"),
    ("      trafficRouting: {nginx: {stableIngress: router}}\n", "", "trafficRouting.nginx.stableIngress"),
    ("stableService: adt-blue", "stableService: adt-green", "both 'adt-green'"),
])
def test_bad_canary_steps_are_refused(old: str, new: str, words: str) -> None:
    assert old in CANARY
    with pytest.raises(RolloutError, match=words):
        parse_rollout(CANARY.replace(old, new, 1))


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(RolloutError, match="not valid YAML at line 2"):
        parse_rollout("kind: Rollout\n  spec: [\n")
    with pytest.raises(RolloutError, match="expected a mapping"):
        parse_rollout("- a list\n")


# -- under real traffic ---------------------------------------------------------------

def _have_router_image() -> None:
    """Build the router image only when it is missing: ensure_images waits for the machine-wide build lock,
    which another build may hold for minutes (test_router.py checks that the image is up to date)."""
    if existing_image(engine.client(), ROUTER_IMAGE) is None:
        ensure_images(["router"], progress=False)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Lab, Router, RolloutController]]:
    """v1 (blue) behind the router on the shared volume, healthy, with a deployment audit log."""
    _have_router_image()
    # the learner of this process (each xdist worker is one): this file's tests may run in two workers at once
    with Lab("rollout-test") as lab:
        controller = RolloutController.start(lab, "careops/legacy-adt:v1", actor="pytest",
                                             audit=AuditLog(tmp_path / "changes.jsonl", key=b"k" * 32))
        assert lab.container("adt-blue").exec(["id", "-u"]).output.strip() == "10001"
        yield lab, controller.router, controller


@pytest.mark.docker
@pytest.mark.slow
def test_blue_green_under_load_fails_nothing_and_loses_no_message(stack, tmp_path: Path) -> None:
    lab, router, controller = stack
    plan = TrafficPlan(duration=16, http_rate=110, mllp_rate=10)  # >= 100 achieved even on a busy machine
    traffic = start_traffic(lab, plan)
    time.sleep(4)
    result = controller.run(BLUE_GREEN)
    record = traffic.wait(progress=False)
    assert result.outcome == "promoted", result.reason
    assert [e for e, _ in result.events] == ["start", "healthy", "switch", "scale-down", "end"]
    s = record.summary()
    assert s["http_requests"] == 1760 and s["http_rate"] >= 100
    assert s["http_failed"] == 0, (result.events, record.http[~record.http["ok"]][
        ["t_send", "status", "upstream", "latency_ms"]].to_string(), router.container.logs(20))
    report = reconcile(record.frame, stored_control_ids(lab, "adt-data", plan.prefix))
    assert report.ok and report.sent == 160, str(report)
    # both releases served, MLLP included: both wrote to the one shared database (SQLite WAL, two containers)
    mllp_versions = set(record.mllp[record.mllp["ok"]]["version"])
    assert mllp_versions == {"v1", "v2"}, mllp_versions
    after = record.frame[(record.frame["t_send"] > result.at("switch") + 0.5) & (record.frame["kind"] == "http")]
    assert set(after["version"]) == {"v2"}
    with pytest.raises(LabError):
        lab.container("adt-blue")  # drained and removed
    entry = list(controller.audit.entries())[-1]
    assert (entry.action, entry.outcome, entry.details["change_id"], entry.details["approved_by"]) == \
        ("deploy.blueGreen", "promoted", "CHG-1042", "cab-chair")
    assert controller.audit.verify()


@pytest.mark.docker
@pytest.mark.slow
def test_naive_stop_and_replace_fails_requests(stack) -> None:
    lab, router, controller = stack
    plan = TrafficPlan(duration=12, http_rate=100, mllp_rate=10)
    traffic = start_traffic(lab, plan)
    time.sleep(3)
    result = controller.naive_replace("careops/legacy-adt:v2")
    record = traffic.wait(progress=False)
    assert result.outcome == "replaced"
    failed = record.http[~record.http["ok"]]
    in_gap = failed[(failed["t_send"] >= result.at("start")) & (failed["t_send"] <= result.at("end") + 6)]
    assert len(in_gap) >= 5, record.summary()  # the outage the naive way causes, measured (~1 s here)
    report = reconcile(record.frame, stored_control_ids(lab, "adt-data", plan.prefix))
    assert report.lost == [] and report.duplicated == [], str(report)  # MLLP resends cover the gap ...
    assert record.summary()["mllp_resends"] > 0  # ... but only because the sender resent


@pytest.mark.docker
def test_a_target_that_never_becomes_healthy_aborts_the_switch(stack) -> None:
    lab, router, controller = stack
    spec = BLUE_GREEN.replace("path: /health", "path: /ready").replace("progressDeadlineSeconds: 30",
                                                                          "progressDeadlineSeconds: 3")
    generation = router.generation
    result = controller.run(spec)
    assert result.outcome == "aborted"
    assert "never became healthy" in result.reason and "answered 404, expected 200" in result.reason
    assert router.generation == generation and router.serving_generation() == generation
    assert router.who_answers(5) == {"v1": 5}
    with pytest.raises(LabError):
        lab.container("adt-green")  # removed again
    assert list(controller.audit.entries())[-1].outcome == "aborted"


# -- canary -----------------------------------------------------------------------------

def _traffic(rows: list[tuple[str, bool, float, float]]) -> pd.DataFrame:
    """(version, ok, latency_ms, t_send) rows of HTTP traffic."""
    return pd.DataFrame([{"kind": "http", "version": v if ok else "", "ok": ok, "latency_ms": ms, "t_send": t,
                          "upstream": "192.0.2.9:8081" if v == "v2" else "192.0.2.8:8081"} for v, ok, ms, t in rows])


def test_analysis_pass_fail_inconclusive_and_latency() -> None:
    rule = Analysis(window_seconds=10, min_sample=20, max_error_rate=0.05, max_p95_latency_ratio=1.5)
    base = [("v1", True, 10.0, 100.01 + i * 0.1) for i in range(80)]
    good = [("v2", True, 11.0, 100.01 + i * 0.3) for i in range(30)]
    verdict = analyze(_traffic(base + good), canary="v2", baseline="v1", analysis=rule, now=110,
                      canary_upstreams={"192.0.2.9:8081"})
    assert verdict.passed is True and verdict.canary_requests == 30
    few = analyze(_traffic(base + good[:19]), canary="v2", baseline="v1", analysis=rule, now=110)
    assert few.passed is None and "need 20" in few.reason
    # two failed requests to the canary's address: 2 of 30 = 6.7 % > 5 %, though failures name no release
    bad = analyze(_traffic(base + good[:28] + [("v2", False, 5.0, 105), ("v2", False, 5.0, 106)]), canary="v2",
                  baseline="v1", analysis=rule, now=110, canary_upstreams={"192.0.2.9:8081"})
    assert bad.passed is False and "error rate" in bad.reason and bad.canary_requests == 30
    borderline = analyze(_traffic(base + good[:19] + [("v2", False, 5.0, 105)]), canary="v2", baseline="v1",
                         analysis=rule, now=110, canary_upstreams={"192.0.2.9:8081"})
    assert borderline.passed is True, borderline  # exactly the minimum sample, exactly 5 %: within the rule
    slow = analyze(_traffic(base + [("v2", True, 40.0, 100.01 + i * 0.3) for i in range(30)]), canary="v2",
                   baseline="v1", analysis=rule, now=110)
    assert slow.passed is False and "p95" in slow.reason
    old = analyze(_traffic(base + good), canary="v2", baseline="v1", analysis=rule, now=200)
    assert old.passed is None  # nothing in the window


@pytest.mark.docker
@pytest.mark.slow
def test_canary_of_the_faulty_release_is_rolled_back_automatically(stack) -> None:
    lab, router, controller = stack
    spec = CANARY.replace("careops/legacy-adt:v2", "careops/legacy-adt:v2-faulty").replace(
        "careops.io/approved-by: cab-chair}", 'careops.io/approved-by: cab-chair, careops.io/max-failed-requests: "60"}'
    ).replace("""        - setWeight: 5
        - pause: {duration: 10s}
""", """        - setWeight: 25
        - pause: {duration: 4s}
""").replace('value: "10"}', 'value: "4"}').replace('value: "200"', 'value: "50"').replace(
        '{name: max-error-rate, value: "0.01"}', '{name: max-error-rate, value: "0.02"}').replace(
        'value: "1.5"', 'value: "3"')
    plan = TrafficPlan(duration=20, http_rate=100, mllp_rate=10)
    traffic = start_traffic(lab, plan)
    time.sleep(2)
    result = controller.run(spec, traffic=traffic)
    record = traffic.wait(progress=False)
    assert result.outcome == "rolled-back" and result.rolled_back, (result.outcome, result.verdicts, result.events)
    assert result.at("rollback") - result.at("setWeight 25") < 12  # bounded: one pause plus one window, and slack
    assert router.config == RouterConfig.single("adt-blue") and router.who_answers(5) == {"v1": 5}
    failed = record.http[~record.http["ok"]]
    assert 0 < len(failed) and failed["t_send"].max() < result.at("rollback") + 1
    report = reconcile(record.frame, stored_control_ids(lab, "adt-data", plan.prefix))
    assert report.lost == [] and report.duplicated == [] and report.stored_unacked == [], str(report)
    entry = list(controller.audit.entries())[-1]
    assert (entry.action, entry.outcome, entry.details["rollback"]) == ("deploy.canary", "rolled-back", True)


# -- rolling update ---------------------------------------------------------------------

ROLLING = BLUE_GREEN.replace("spec:\n  selector:", "spec:\n  replicas: 3\n  selector:").replace(
    "successThreshold: 2}\n", "successThreshold: 2}\n          lifecycle: {preStop: {sleep: {seconds: 2}}}\n").replace(
    """    blueGreen:
      activeService: router
      previewService: adt-green
      scaleDownDelaySeconds: 3
""", """    canary:
      maxSurge: 1
      maxUnavailable: 0
""")


def test_rolling_update_spec_parses_and_bad_ones_name_the_key() -> None:
    spec = parse_rollout(ROLLING)
    assert spec.kind == "rollingUpdate" and spec.replicas == 3
    assert isinstance(spec.strategy, RollingUpdate)
    assert (spec.strategy.max_surge, spec.strategy.max_unavailable, spec.strategy.drain_seconds) == (1, 0, 2.0)
    assert "maxUnavailable 0" in spec._repr_html_()
    percent = parse_rollout(ROLLING.replace("maxSurge: 1", 'maxSurge: "25%"').replace("maxUnavailable: 0",
                                                                                    'maxUnavailable: "25%"'))
    assert (percent.strategy.max_surge, percent.strategy.max_unavailable) == (1, 0)  # rounded as Kubernetes does
    for old, new, words in [("maxSurge: 1", "maxSurge: 0", "both 0"),
                            ("maxSurge: 1", "maxSurge: 4", "0..3"),
                            ("replicas: 3", "replicas: 9", "spec.replicas"),
                            ("sleep: {seconds: 2}", "exec: {command: [sleep, '2']}", "careops cannot run it")]:
        with pytest.raises(RolloutError, match=words):
            parse_rollout(ROLLING.replace(old, new).replace("maxUnavailable: 0", "maxUnavailable: 0"
                                                            if "Surge: 0" not in new else "maxUnavailable: 0"))
    with pytest.raises(RolloutError, match="runs one copy per colour"):
        parse_rollout(BLUE_GREEN.replace("spec:\n  selector:", "spec:\n  replicas: 2\n  selector:"))


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Lab, RolloutController]]:
    """Three copies of v1 (adt-1..3) behind the router on the shared volume, healthy."""
    _have_router_image()
    with Lab("rolling-test") as lab:  # the learner of this process, as above
        controller = RolloutController.start(lab, "careops/legacy-adt:v1", replicas=3, actor="pytest",
                                             audit=AuditLog(tmp_path / "changes.jsonl", key=b"k" * 32))
        yield lab, controller


@pytest.mark.docker
@pytest.mark.slow
def test_rolling_update_under_load_replaces_copies_one_by_one_without_failures(replicas) -> None:
    lab, controller = replicas
    assert controller.serving() == ["adt-1", "adt-2", "adt-3"]
    plan = TrafficPlan(duration=22, http_rate=110, mllp_rate=10)
    traffic = start_traffic(lab, plan)
    time.sleep(3)
    result = controller.run(ROLLING, traffic=traffic)
    record = traffic.wait(progress=False)
    assert result.outcome == "promoted", (result.reason, result.events)
    assert result.to_backend == "adt-4, adt-5, adt-6" and controller.serving() == ["adt-4", "adt-5", "adt-6"]
    assert (result.most_running, result.fewest_serving) == (4, 3)  # maxSurge 1, maxUnavailable 0
    assert [label for label, _ in result.events if label.endswith("healthy")] == [
        "round 1: adt-4 healthy", "round 2: adt-5 healthy", "round 3: adt-6 healthy"]
    s = record.summary()
    assert s["http_failed"] == 0 and s["http_rate"] >= 100, record.http[~record.http["ok"]].to_string()
    report = reconcile(record.frame, stored_control_ids(lab, "adt-data", plan.prefix))
    assert report.ok, str(report)
    # old and new answered side by side for a while: the mixed phase a rolling update has
    mid = record.http[(record.http["t_send"] > result.at("round 1: adt-4 in, adt-1 out"))
                      & (record.http["t_send"] < result.at("round 3: adt-6 healthy"))]
    assert {"v1", "v2"} <= set(mid["version"])
    assert controller.router.who_answers(6) == {"v2": 6}
    for gone in ("adt-1", "adt-2", "adt-3"):
        with pytest.raises(LabError):
            lab.container(gone)
    entry = list(controller.audit.entries())[-1]
    assert (entry.action, entry.outcome) == ("deploy.rollingUpdate", "promoted")


@pytest.mark.docker
def test_rolling_update_with_an_unhealthy_copy_rolls_back_to_full_strength(replicas) -> None:
    lab, controller = replicas
    spec = ROLLING.replace("maxUnavailable: 0", "maxUnavailable: 1").replace("path: /health", "path: /ready") \
        .replace("progressDeadlineSeconds: 30", "progressDeadlineSeconds: 3")
    result = controller.run(spec)
    assert result.outcome == "rolled-back" and "never became healthy" in result.reason, result.reason
    assert "answered 404" in result.reason and "rolled back to careops/legacy-adt:v1" in result.reason
    serving = controller.serving()
    assert len(serving) == 3 and "adt-1" not in serving  # adt-1 was taken out (maxUnavailable 1), then refilled
    assert controller.router.who_answers(6) == {"v1": 6}
    assert result.fewest_serving == 2
    aborted = controller.run(spec.replace("careops.io/approved-by: cab-chair}",
                                          "careops.io/approved-by: cab-chair, careops.io/on-failure: abort}"))
    assert aborted.outcome == "aborted" and len(controller.serving()) == 2  # abort leaves what serves
