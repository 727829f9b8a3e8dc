"""Checks for module 3, "safe deployments" (notebooks/03-safe-deployments).

The learner writes declarative artifacts (a router config and Argo-Rollouts-
shaped rollout specs); careops' own controller executes them under traffic
(the drills in ``careops.rollout.drills``), the same code in the learner's lab and in the grader's
live checks (``setup_blue_green``, ``setup_rollback``). The learner's Python
(the canary analysis, the change record) is plain pandas, graded in the
sandbox on recorded windows and audit logs whose right answers are written
out here, never computed by a reference the learner could call.
"""
from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

import pandas as pd

from careops.checks import CheckReport
from careops.errors import CareOpsError, RolloutError
from careops.lab import Lab
from careops.rollout import COLOURS
from careops.rollout.drills import (  # the notebook still reads the drills through this module
    ROLLING_REPLICAS,
    V2,
    V2_FAULTY,
    DeploymentRun,
    comparison_table,
    open_lab,
    run_blue_green,
    run_canary,
    run_faulty_canary,
    run_naive_replace,
    run_rolling_update,
    upstream_of,
)
from careops.router.config import parse_router_config

#: the course's bar for the load a graded deployment ran under (the drills send 110 requests/s)
MIN_HTTP_RATE = 100.0
#: the failed-request budget of exercise 4 (HTTP errors plus NAKed/unanswered MLLP messages)
FAILED_BUDGET = 100
#: the most a spec may allow before its policy must roll back (exercise 4)
MAX_POLICY_BUDGET = 60
#: seconds from the first traffic on the faulty release until all traffic is back on v1 (exercise 4)
ROLLBACK_SECONDS = 20.0
VERDICTS = ("pass", "fail", "inconclusive")
CHANGE_RECORD_COLUMNS = ["change_id", "deployed_by", "approved_by", "strategy", "image", "started", "ended",
                         "outcome", "rolled_back"]


#: the notebook's artifact cells and the files holding their solutions (labs/safe-deployments/solution/)
SOLUTION_FILES = {"router_config": "router", "blue_green_rollout": "blue-green", "canary_rollout": "canary",
                  "rollback_rollout": "rollback", "rolling_rollout": "rolling"}


def solution_artifact(name: str) -> str:
    """A solution artifact by file name ("router", "blue-green", "canary", "rollback", "rolling"): what the
    benches and tests deploy, kept equal to the notebook's solution cells by a test."""
    from careops.paths import lab_asset

    if name not in SOLUTION_FILES.values():
        raise RolloutError(f"no solution artifact {name!r}", fix=f"one of {sorted(SOLUTION_FILES.values())}")
    return lab_asset(f"safe-deployments/solution/{name}.yaml").read_text()


# -- live checks for the grader (registered in careops.grading.live) -------------------

def setup_blue_green(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 2: the learner's router config and blue/green spec, under traffic."""
    return {"bg_run": run_blue_green(lab, artifacts["router_config"], artifacts["blue_green_rollout"],
                                     actor="careops grader", progress=False)}


def setup_rollback(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 4: the learner's rollback spec against v2-faulty, under traffic."""
    return {"faulty_run": run_faulty_canary(lab, artifacts["router_config"], artifacts["rollback_rollout"],
                                            actor="careops grader", progress=False)}


# -- exercise 2: blue/green --------------------------------------------------------------

def check_router_config(text: str) -> CheckReport:
    """The starting router config: valid, and all HTTP and MLLP traffic on adt-blue's ports."""
    report = CheckReport("Exercise 1a: the router config")
    try:
        config = parse_router_config(text)
    except CareOpsError as exc:
        report.fail(f"the router config is valid: {exc.message}", hint=exc.fix or "")
        return report
    report.check(True, "the router config is valid")
    for proto, port in (("http", 8081), ("mllp", 2575)):
        active = [(b.host, b.port) for b in config.backends(proto) if b.weight > 0]
        report.check(active == [(COLOURS[0], port)], f"all {proto.upper()} traffic goes to {COLOURS[0]}:{port}",
                     expected=[(COLOURS[0], port)], got=active,
                     hint=f"one backend under {proto}: {{host: {COLOURS[0]}, port: {port}, weight: 100}}")
    return report


def _traffic_criteria(report: CheckReport, run: DeploymentRun) -> dict[str, Any]:
    s = run.traffic.summary()
    report.check(s["http_rate"] >= MIN_HTTP_RATE, f"the deployment ran under at least {MIN_HTTP_RATE:g} requests/s",
                 expected=f">= {MIN_HTTP_RATE:g}", got=s["http_rate"],
                 hint="the machine was too busy to keep the rate: close other notebooks and run the cell again")
    return s


def check_blue_green(run: DeploymentRun) -> CheckReport:
    """Exercise 2: blue/green to v2 under load: promoted, zero failed requests, no message lost or duplicated."""
    report = CheckReport("Exercise 2: blue/green under traffic")
    r = run.result
    if not report.check(r.strategy == "blueGreen" and r.image == V2,
                        f"the rollout is a blueGreen deployment of {V2}", expected=("blueGreen", V2),
                        got=(r.strategy, r.image),
                        hint="spec.strategy.blueGreen, and spec.template.spec.containers[0].image: " + V2):
        return report
    report.check(r.outcome == "promoted", "the new release was promoted (healthy, then switched)",
                 expected="promoted", got=r.outcome, hint=r.reason or "read the rollout's events above")
    s = _traffic_criteria(report, run)
    first, last = float(run.traffic.frame["t_send"].min()), float(run.traffic.frame["t_send"].max())
    switch = r.at("switch")
    report.check(switch is not None and first + 1 < switch < last - 1, "the switch happened while traffic flowed",
                 hint="run the cell again; the rollout must finish within the traffic window (keep "
                      "scaleDownDelaySeconds and the health check short: a few seconds)")
    report.check(s["http_failed"] == 0, "zero failed HTTP requests across the cutover", expected=0,
                 got=s["http_failed"], hint="the router must switch only after green is healthy, and blue must keep "
                                            "running (scaleDownDelaySeconds) while it drains")
    report.check(not run.reconcile.lost and not run.reconcile.unanswered, "no MLLP message lost",
                 expected=0, got=len(run.reconcile.lost) + len(run.reconcile.unanswered),
                 hint="every ACKed message must be in the database: drain blue before stopping it")
    report.check(not run.reconcile.duplicated, "no MLLP message stored twice", expected=0,
                 got=len(run.reconcile.duplicated), hint="both colours must use the one shared database")
    after = run.traffic.frame[(run.traffic.frame["kind"] == "http") & run.traffic.frame["ok"]]
    after = after[after["t_send"] > (switch or last) + 0.5]
    report.check(len(after) > 0 and set(after["version"]) == {"v2"}, "after the switch only v2 answers",
                 got=sorted(set(after["version"])), hint="the router must send everything to the new colour")
    return report


# -- exercise 3: canary analysis -----------------------------------------------------------

CANARY_UPSTREAM, BASE_UPSTREAM = "192.0.2.5:8081", "192.0.2.4:8081"
NOW = 1_800_000_000.0


def make_window(*, baseline: tuple[int, int, float] = (300, 0, 10.0), canary: tuple[int, int, float] = (120, 0, 11.0),
                window: float = 10.0, now: float = NOW, noise: bool = True, hidden_failures: bool = True,
                outside: int = 0) -> pd.DataFrame:
    """A recorded traffic window in the shape careops.traffic records: (requests, failed, latency_ms) for the
    baseline and the canary. Failed requests name no release (version "") -- only their upstream says where
    they went. ``noise`` adds MLLP rows and router errors with no upstream; ``outside`` adds that many failed,
    slow canary requests just outside the window (at ``now - window`` and after ``now``)."""
    rows: list[dict[str, Any]] = []

    def add(n: int, failed: int, ms: float, version: str, upstream: str) -> None:
        for i in range(n):
            t = now - window + (i + 1) * window / (n + 1)
            bad = i < failed
            rows.append({"kind": "http", "seq": len(rows), "id": "/health", "attempt": 1, "t_sched": t, "t_send": t,
                         "latency_ms": ms, "status": "503" if bad else "200", "ok": not bad,
                         "version": "" if bad and hidden_failures else version, "upstream": upstream,
                         "error": "service unavailable" if bad else ""})

    add(*baseline, "v1", BASE_UPSTREAM)
    add(*canary, "v2", CANARY_UPSTREAM)
    for i in range(outside):
        for t in (now - window, now + 0.5 + i * 0.01, now - window - 1 - i * 0.01):
            rows.append({"kind": "http", "seq": len(rows), "id": "/health", "attempt": 1, "t_sched": t, "t_send": t,
                         "latency_ms": 900.0, "status": "503", "ok": False, "version": "",
                         "upstream": CANARY_UPSTREAM, "error": "service unavailable"})
    if noise:
        for i in range(20):
            t = now - window + (i + 0.5) * window / 20
            rows.append({"kind": "mllp", "seq": len(rows), "id": f"TR-0-{i}", "attempt": 1, "t_sched": t, "t_send": t,
                         "latency_ms": 3000.0, "status": "error" if i % 2 else "AA", "ok": not i % 2,
                         "version": "", "upstream": CANARY_UPSTREAM if i % 2 else "", "error": ""})
        for i in range(5):
            t = now - window + (i + 0.7) * window / 5
            rows.append({"kind": "http", "seq": len(rows), "id": "/health", "attempt": 1, "t_sched": t, "t_send": t,
                         "latency_ms": 0.5, "status": "error", "ok": False, "version": "", "upstream": "",
                         "error": "ConnectionRefusedError"})
    frame = pd.DataFrame(rows).sort_values("t_send", kind="stable").reset_index(drop=True)
    frame["t"] = frame["t_send"] - frame["t_sched"].min()
    return frame


RULE = {"min_sample": 100, "max_error_rate": 0.02, "max_p95_ratio": 1.5}

#: (what the case is, window arguments, rule changes, the right verdict) -- worked out by hand
PRACTICE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("a healthy canary", {}, {}, "pass"),
    ("a canary failing 5 % of its requests", {"canary": (120, 6, 11.0)}, {}, "fail"),
    ("too few canary requests to judge", {"canary": (50, 0, 11.0)}, {}, "inconclusive"),
    ("a canary twice as slow", {"canary": (120, 0, 20.0)}, {}, "fail"),
]


def check_canary_analysis(fn: Callable[..., Any], cases: list[tuple[str, dict[str, Any], dict[str, Any], str]]
                          | None = None, *, title: str = "Exercise 3: the canary analysis") -> CheckReport:
    """Call the learner's ``canary_analysis`` on recorded windows whose verdicts are known; one line per case."""
    report = CheckReport(title)
    for what, window_args, rule_changes, expected in PRACTICE_CASES if cases is None else cases:
        rule = {**RULE, **rule_changes}
        window = window_args.get("window", 10.0)
        frame = make_window(**window_args)
        try:
            got = fn(frame, canary_upstream=CANARY_UPSTREAM, now=NOW, window_seconds=window, **rule)
        except Exception as exc:  # noqa: BLE001 - the learner's error, reported as a failed criterion
            got = f"raised {type(exc).__name__}: {exc}"
        report.check(got == expected, f"{what}: {expected}", expected=expected, got=got,
                     hint=_canary_hint(expected, got))
    return report


def _canary_hint(expected: str, got: Any) -> str:
    if got not in VERDICTS:
        return "return exactly one of the strings 'pass', 'fail', 'inconclusive'"
    if expected == "inconclusive":
        return "count the canary's requests first: fewer than min_sample means no verdict yet"
    if expected == "fail":
        return ("a failed request has version '' -- find the canary's requests by upstream == canary_upstream; "
                "compare the error rate (failed / all) and the p95 latency (latency_ms.quantile(0.95)) with the "
                "baseline's p95 times max_p95_ratio")
    return ("keep only kind == 'http' rows sent in the window (now - window_seconds < t_send <= now); exactly at a "
            "threshold is still within the rule (fail only when it is exceeded)")


# -- exercise 4: rollback -------------------------------------------------------------------

def check_rollback(run: DeploymentRun) -> CheckReport:
    """Exercise 4: the canary of v2-faulty is rolled back automatically, in bounded time, within the budget."""
    report = CheckReport("Exercise 4: automated rollback of v2-faulty")
    r, spec = run.result, run.spec
    if not report.check(spec is not None and spec.kind == "canary" and spec.image == V2_FAULTY,
                        f"the rollout is a canary of {V2_FAULTY}", expected=("canary", V2_FAULTY),
                        got=(spec.kind, spec.image) if spec else None,
                        hint="spec.strategy.canary with steps, image " + V2_FAULTY):
        return report
    assert spec is not None
    budget = spec.rollback.max_failed_requests
    report.check(spec.rollback.on_failure == "rollback" and budget is not None and budget <= MAX_POLICY_BUDGET,
                 f"the rollback policy returns traffic to v1 after at most {MAX_POLICY_BUDGET} failed requests",
                 expected=f"onFailure: rollback, maxFailedRequests <= {MAX_POLICY_BUDGET}",
                 got=f"onFailure: {spec.rollback.on_failure}, maxFailedRequests: {budget}",
                 hint=f"spec.rollback: {{onFailure: rollback, maxFailedRequests: {MAX_POLICY_BUDGET // 2}}}")
    report.check(any(s.analysis for s in spec.strategy.steps),  # type: ignore[union-attr]
                 "the canary has an analysis step (health checks alone do not see this fault)",
                 hint="add - analysis: {windowSeconds: 4, minSample: 50, maxErrorRate: 0.02, maxP95LatencyRatio: 3}")
    report.check(r.outcome == "rolled-back" and r.rolled_back, "the faulty release was rolled back automatically",
                 expected="rolled-back", got=r.outcome, hint=r.reason or "read the rollout's events above")
    _traffic_criteria(report, run)
    first = next((t for label, t in r.events if label.startswith("setWeight")), None)
    back = r.at("rollback")
    took = (back - first) if first is not None and back is not None else None
    report.check(took is not None and took <= ROLLBACK_SECONDS,
                 f"all traffic was back on v1 within {ROLLBACK_SECONDS:g} s of the canary's first traffic",
                 expected=f"<= {ROLLBACK_SECONDS:g} s", got=None if took is None else round(took, 1),
                 hint="short pauses and an analysis window of a few seconds; a small first setWeight needs a "
                      "longer window to reach minSample")
    failed = run.failed()
    report.check(failed <= FAILED_BUDGET, f"at most {FAILED_BUDGET} failed requests and messages in all",
                 expected=f"<= {FAILED_BUDGET}", got=failed,
                 hint="detect sooner: a shorter pause and window, or a lower maxFailedRequests")
    hosts = sorted(b.host for b in run.router_after.http if b.weight > 0) if run.router_after else []
    report.check(hosts == [COLOURS[0]] and set(run.answers_after) == {"v1"},
                 "afterwards the router sends everything to v1 again", expected=[COLOURS[0]],
                 got={"router": hosts, "answers": run.answers_after}, hint="spec.rollback.onFailure: rollback")
    report.check(not run.reconcile.lost and not run.reconcile.duplicated,
                 "no ACKed MLLP message lost or stored twice", expected=0,
                 got=len(run.reconcile.lost) + len(run.reconcile.duplicated),
                 hint="the controller stops the canary gracefully; run the cell again")
    return report


# -- exercise 5a: rolling update ---------------------------------------------------------------


def setup_rolling_update(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 5a: the learner's rolling-update spec, under traffic."""
    return {"rolling_run": run_rolling_update(lab, artifacts["rolling_rollout"], actor="careops grader",
                                              progress=False)}


def check_rolling_update(run: DeploymentRun) -> CheckReport:
    """Exercise 5a: three copies replaced one at a time under load: full capacity throughout, nothing failed."""
    report = CheckReport("Exercise 5a: rolling update under traffic")
    r, spec = run.result, run.spec
    if not report.check(spec is not None and spec.kind == "rollingUpdate" and spec.image == V2,
                        f"the rollout is a rollingUpdate of {V2}", expected=("rollingUpdate", V2),
                        got=(spec.kind, spec.image) if spec else None,
                        hint="spec.strategy.rollingUpdate, and spec.template.spec.containers[0].image: " + V2):
        return report
    assert spec is not None
    report.check(spec.replicas == ROLLING_REPLICAS, f"{ROLLING_REPLICAS} copies (spec.replicas)",
                 expected=ROLLING_REPLICAS, got=spec.replicas, hint=f"spec.replicas: {ROLLING_REPLICAS}")
    report.check(r.outcome == "promoted", "every copy was replaced (each healthy before it got traffic)",
                 expected="promoted", got=r.outcome, hint=r.reason or "read the rollout's events above")
    report.check(r.fewest_serving >= ROLLING_REPLICAS,
                 f"all {ROLLING_REPLICAS} copies served throughout (the ward's capacity never dropped)",
                 expected=f">= {ROLLING_REPLICAS}", got=r.fewest_serving,
                 hint="maxUnavailable: 0 -- start the new copy before an old one leaves")
    report.check(0 < r.most_running <= ROLLING_REPLICAS + 1,
                 f"at most one extra copy ran at a time (the host has room for {ROLLING_REPLICAS + 1})",
                 expected=f"<= {ROLLING_REPLICAS + 1}", got=r.most_running, hint="maxSurge: 1")
    s = _traffic_criteria(report, run)
    report.check(s["http_failed"] == 0, "no HTTP request failed during the update", expected=0,
                 got=s["http_failed"], hint="a health check with 2 or more successes, and drainSeconds >= 1 so an "
                                            "old copy finishes what it holds")
    report.check(not run.reconcile.lost and not run.reconcile.duplicated and not run.reconcile.unanswered,
                 "every MLLP message was ACKed and stored exactly once", expected=0,
                 got=len(run.reconcile.lost) + len(run.reconcile.duplicated) + len(run.reconcile.unanswered),
                 hint=str(run.reconcile))
    report.check(set(run.answers_after) == {"v2"}, "afterwards only v2 answers", expected={"v2"},
                 got=set(run.answers_after), hint="every old copy must be replaced")
    return report


# -- exercise 5b: the comparison table -----------------------------------------------------------

DEPLOYMENT_ROW_KEYS = ["seconds", "http_requests", "failed_requests", "failed_messages", "p95_ms",
                       "side_by_side_seconds"]


def _row(kind: str, t: float, *, ok: bool = True, version: str = "v1", ms: float = 10.0, attempt: int = 1,
         seq: int = 0) -> dict[str, Any]:
    return {"kind": kind, "seq": seq, "id": "/health" if kind == "http" else f"SYN{seq:06d}", "attempt": attempt,
            "t_sched": t, "t_send": t, "latency_ms": ms, "status": ("200" if kind == "http" else "AA") if ok else
            ("error" if not version else ("503" if kind == "http" else "AE")), "ok": ok,
            "version": version if ok or version else "", "upstream": "" if not ok and not version else
            ("192.0.2.3:8081" if version == "v1" else "192.0.2.4:8081"), "error": "" if ok else "failed"}


def make_deployment_record(case: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A recorded deployment whose numbers were worked out by hand: (frame, call arguments). The cases are
    the practice ones (``PRACTICE_ROWS``) and the graded ones (``GRADED_ROWS``)."""
    rows: list[dict[str, Any]] = []
    T = NOW

    def add(kind: str, t: float, **kw: Any) -> None:
        rows.append(_row(kind, T + t, seq=len(rows), **kw))

    args = {"start": T + 10.0, "end": T + 20.0, "old": "v1", "new": "v2"}
    if case in ("blue/green", "outside the window"):
        for i in range(200):  # 200 HTTP requests over 0..20 s: old until 15.0, new from 14.8 (drain overlap)
            t = i * 0.1
            add("http", t, version="v1" if t < 15.0 else "v2")
        add("http", 14.85, version="v2")  # the first v2 answer at +14.85, the last v1 at +14.9 -> 0.05 s
        for i in range(20):
            add("mllp", i * 1.0 + 0.05, version="v1" if i < 15 else "v2")
        if case == "outside the window":  # failures just outside [start, end] do not count; on the edges do
            add("http", 9.99, ok=False, version="")
            add("http", 20.01, ok=False, version="")
            add("http", 10.0, ok=False, version="", ms=0.5)
            add("mllp", 20.0, ok=False, version="")
    elif case == "stop-and-replace":
        for i in range(200):  # nothing answers between +14.0 and +15.5: refused connections, version ""
            t = i * 0.1
            gap = 14.0 <= t < 15.5
            add("http", t, ok=not gap, version="" if gap else ("v1" if t < 14.0 else "v2"), ms=1.0 if gap else 10.0)
        for i in range(20):
            add("mllp", i * 1.0 + 0.05, version="v1" if i < 14 else "v2")
        add("mllp", 14.05, ok=False, version="")  # no answer: the sender resends it (ACKed by v2 at +14.05)
    elif case == "slow tail":
        for i in range(100):  # within the window 90 % at 10 ms and 10 % at 50 ms: p95 is 50 ms by any method
            add("http", 10.0 + i * 0.1, version="v1" if i % 2 else "v2", ms=50.0 if i % 10 == 0 else 10.0)
        args.update(start=T + 10.0, end=T + 19.9)
    elif case == "rolled back":
        for i in range(100):  # v2-faulty failed 1 in 4 (503, named) and never served again after +15
            t = 10.0 + i * 0.1
            faulty = 12.0 <= t < 15.0 and i % 2 == 0
            add("http", t, ok=not (faulty and i % 4 == 0), version="v2-faulty" if faulty else "v1")
        add("mllp", 13.0, ok=False, version="v2-faulty")
        args.update(new="v2-faulty")
    elif case == "never served":  # the new release never answered: side by side is 0
        for i in range(50):
            add("http", 10.0 + i * 0.2, version="v1")
    elif case == "nothing in the window":
        add("http", 1.0, version="v1")
        add("mllp", 25.0, version="v2")
    frame = pd.DataFrame(rows).sort_values("t_send", kind="stable").reset_index(drop=True)
    frame["t"] = frame["t_send"] - frame["t_sched"].min()
    return frame, args


#: case -> the right row, worked out by hand from the construction above
_ROWS: dict[str, dict[str, float]] = {
    # [10, 20]: the 0.1 s grid gives +10.0 .. +19.9 (100 requests), plus the v2 answer at +14.85; MLLP all ACKed;
    # the first v2 answer is at +14.85 and the last v1 one at +14.9
    "blue/green": {"seconds": 10.0, "http_requests": 101, "failed_requests": 0, "failed_messages": 0,
                   "p95_ms": 10.0, "side_by_side_seconds": 0.05},
    # + the failed request exactly at start and the failed message exactly at end; +9.99 and +20.01 are outside
    "outside the window": {"seconds": 10.0, "http_requests": 102, "failed_requests": 1, "failed_messages": 1,
                           "p95_ms": 10.0, "side_by_side_seconds": 0.05},
    # +14.0 .. +15.4 refused (15 requests); one MLLP send unanswered; v1 and v2 never answered at the same time
    "stop-and-replace": {"seconds": 10.0, "http_requests": 100, "failed_requests": 15, "failed_messages": 1,
                         "p95_ms": 10.0, "side_by_side_seconds": 0.0},
    # 10 of 100 at 50 ms; v2 answers first at +10.0, v1 last at +19.9
    "slow tail": {"seconds": 9.9, "http_requests": 100, "failed_requests": 0, "failed_messages": 0,
                  "p95_ms": 50.0, "side_by_side_seconds": 9.9},
    # v2-faulty got every other request in +12.0 .. +14.9 and failed +12.0, +12.4, ... +14.8 (8); its first
    # answer is at +12.2 and v1 answers until +19.9
    "rolled back": {"seconds": 10.0, "http_requests": 100, "failed_requests": 8, "failed_messages": 1,
                    "p95_ms": 10.0, "side_by_side_seconds": 7.7},
    "never served": {"seconds": 10.0, "http_requests": 50, "failed_requests": 0, "failed_messages": 0,
                     "p95_ms": 10.0, "side_by_side_seconds": 0.0},
    "nothing in the window": {"seconds": 10.0, "http_requests": 0, "failed_requests": 0, "failed_messages": 0,
                              "p95_ms": 0.0, "side_by_side_seconds": 0.0},
}
PRACTICE_ROWS = ["blue/green", "stop-and-replace", "slow tail"]
GRADED_ROWS = ["outside the window", "rolled back", "never served", "nothing in the window", "slow tail",
               "stop-and-replace"]


def check_deployment_row(fn: Callable[..., Any], cases: list[str] | None = None, *,
                         title: str = "Exercise 5b: a deployment's row") -> CheckReport:
    """Call the learner's ``deployment_row`` on recorded deployments whose rows are known; one line per case."""
    report = CheckReport(title)
    for case in PRACTICE_ROWS if cases is None else cases:
        frame, args = make_deployment_record(case)
        expected = _ROWS[case]
        try:
            got = dict(fn(frame, **args))
        except Exception as exc:  # noqa: BLE001 - the learner's error, reported as a failed criterion
            report.fail(f"{case}: the row", hint=f"raised {type(exc).__name__}: {exc}")
            continue
        if set(got) != set(DEPLOYMENT_ROW_KEYS):
            report.check(False, f"{case}: the row has exactly the keys {DEPLOYMENT_ROW_KEYS}",
                         expected=DEPLOYMENT_ROW_KEYS, got=sorted(got), hint="return a dict with these keys")
            continue
        wrong = {k: got[k] for k in DEPLOYMENT_ROW_KEYS if not _close(got[k], expected[k])}
        report.check(not wrong, f"{case}: every number of the row",
                     expected={k: expected[k] for k in wrong} or expected, got=wrong or got,
                     hint=_row_hint(wrong))
    return report


def _close(got: Any, expected: float) -> bool:
    try:
        return abs(float(got) - expected) <= 1e-6 and got == got  # NaN is not 0.0
    except (TypeError, ValueError):
        return False


def _row_hint(wrong: dict[str, Any]) -> str:
    hints = {"seconds": "end - start",
             "http_requests": "HTTP rows with start <= t_send <= end (both edges count)",
             "failed_requests": "HTTP rows in the window whose ok is False",
             "failed_messages": "MLLP rows (every attempt) in the window whose ok is False",
             "p95_ms": "frame's latency_ms of the window's HTTP rows, .quantile(0.95); 0.0 when there are none",
             "side_by_side_seconds": "answered rows (ok) in the window: last t_send answered by old minus first "
                                     "answered by new, never below 0; 0.0 unless both answered"}
    return "; ".join(f"{k}: {hints[k]}" for k in wrong)


# -- exercise 6: the change record -----------------------------------------------------------

#: (seq, at, actor, strategy, image, change_id, approved_by, outcome, rolled_back) -- deployments in an audit log
_DEPLOYMENTS = [
    (3, "2026-11-10T09:00:00.000Z", "Dana Reyes", "blueGreen", V2, "CHG-2001", "cab-chair", "promoted", False),
    (5, "2026-11-10T10:30:00.000Z", "Sam Okoye", "canary", V2_FAULTY, "CHG-2002", "cab-chair", "rolled-back", True),
    (6, "2026-11-11T08:15:00.000Z", "Sam Okoye", "canary", V2, "CHG-2003", "", "aborted", False),
    (8, "2026-11-12T14:45:00.000Z", "Ana Lind", "canary", V2, "CHG-2004", "Dr. Kim (CAB)", "promoted", False),
]


def _deployments(seed: int) -> list[tuple[Any, ...]]:
    rows = list(_DEPLOYMENTS)
    if seed:
        rows = [(seq, at.replace("2026-11-1", f"2026-1{seed % 2}-1"), f"{actor} {seed}", strat, image,
                 f"{change}-{seed}", approver, outcome, rb)
                for seq, at, actor, strat, image, change, approver, outcome, rb in rows]
    return rows


def _started_ended(at: str) -> tuple[str, str]:
    stamp = pd.Timestamp(at)
    return ((stamp - pd.Timedelta(seconds=42)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def sample_change_log(seed: int = 0) -> pd.DataFrame:
    """An audit log as ``AuditLog.to_dataframe()`` gives it: deployments among other events, newest first."""
    def row(seq: int, at: str, actor: str, role: str, action: str, resource: str, outcome: str,
            details: dict[str, Any]) -> dict[str, Any]:
        return {"seq": seq, "at": at, "actor": actor, "role": role, "action": action, "resource": resource,
                "outcome": outcome, "purpose": "change", "source": "careops.rollout", "details": details,
                "prev": "", "hash": "", "mac": ""}

    rows = [row(1, "2026-11-09T16:00:00.000Z", "ci-bot", "developer", "pipeline.run", "pipeline/r1", "success",
                {"run_id": "r1"}),
            row(2, "2026-11-09T16:05:00.000Z", "cab-chair", "approver", "pipeline.approval", "pipeline/r1",
                "approved", {"run_id": "r1", "environment": "staging", "note": ""}),
            row(4, "2026-11-10T09:10:00.000Z", "Ana Lind", "operator", "lab.reset", "lab/ci", "success", {}),
            row(7, "2026-11-12T08:00:00.000Z", "ci-bot", "developer", "pipeline.run", "pipeline/r2", "failure",
                {"run_id": "r2"})]
    for seq, at, actor, strategy, image, change, approver, outcome, rolled_back in _deployments(seed):
        started, ended = _started_ended(at)
        rows.append(row(seq, at, actor, "deployer", f"deploy.{strategy}", "rollout/legacy-adt", outcome,
                        {"image": image, "from": "adt-blue", "to": "adt-green", "approved_by": approver,
                         "change_id": change, "started": started, "ended": ended, "rollback": rolled_back,
                         "reason": "analysis failed" if rolled_back else "", "reload_seconds": [0.2]}))
    frame = pd.DataFrame(sorted(rows, key=lambda r: -r["seq"]))
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def expected_change_record(seed: int = 0) -> list[dict[str, Any]]:
    """The right answer for ``sample_change_log(seed)``, written out from the same list of deployments."""
    out = []
    for _seq, at, actor, strategy, image, change, approver, outcome, rolled_back in _deployments(seed):
        started, ended = _started_ended(at)
        out.append({"change_id": change, "deployed_by": actor, "approved_by": approver, "strategy": strategy,
                    "image": image, "started": started, "ended": ended, "outcome": outcome,
                    "rolled_back": rolled_back})
    return out


def check_change_record(fn: Callable[[pd.DataFrame], Any], *, seeds: tuple[int, ...] = (0,),
                        title: str = "Exercise 6: the change record") -> CheckReport:
    """The learner's ``change_record(audit_frame)`` on audit logs whose answer is known."""
    report = CheckReport(title)
    for seed in seeds:
        label = "the sample log" if seed == 0 else f"audit log #{seed}"
        try:
            out = fn(sample_change_log(seed))
        except Exception as exc:  # noqa: BLE001 - the learner's error, reported as a failed criterion
            report.fail(f"change_record runs on {label}: raised {type(exc).__name__}: {exc}",
                        hint="try it on check.sample_change_log() and read the traceback")
            continue
        if not report.check(isinstance(out, pd.DataFrame), f"{label}: returns a DataFrame",
                            got=type(out).__name__, hint="build the rows and return pd.DataFrame(rows)"):
            continue
        if not report.check(list(out.columns) == CHANGE_RECORD_COLUMNS, f"{label}: exactly the asked columns, in order",
                            expected=CHANGE_RECORD_COLUMNS, got=list(out.columns),
                            hint="select them in order: out[[...]]"):
            continue
        want = expected_change_record(seed)
        got = out.to_dict("records")
        report.check(len(got) == len(want), f"{label}: one row per deployment (action deploy.*), nothing else",
                     expected=len(want), got=len(got),
                     hint="keep rows whose action starts with 'deploy.' -- aborted and rolled-back ones too")
        ids = [str(r.get("change_id")) for r in got]
        report.check(ids == [w["change_id"] for w in want], f"{label}: oldest first",
                     expected=[w["change_id"] for w in want], got=ids, hint="sort by seq (or at) ascending")
        wrong = [(w["change_id"], k, w[k], g.get(k)) for w, g in zip(want, got) for k in CHANGE_RECORD_COLUMNS
                 if _plain(g.get(k)) != w[k]]
        report.check(len(got) == len(want) and not wrong, f"{label}: every field as recorded",
                     expected="no differences", got=wrong[:3],
                     hint="deployed_by is the actor; strategy is the action without 'deploy.'; approved_by, image, "
                          "change_id, started, ended come from details; rolled_back is details['rollback']")
    return report


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so True == np.True_ compares as the learner meant."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def deployment_counts(audit_frame: pd.DataFrame) -> collections.Counter[str]:
    """How many deployments the log holds, by outcome (for the notebook's summary line)."""
    deploys = audit_frame[audit_frame["action"].astype(str).str.startswith("deploy.")]
    return collections.Counter(str(x) for x in deploys["outcome"])


__all__ = [
    "FAILED_BUDGET",
    "DeploymentRun",
    "check_blue_green",
    "check_canary_analysis",
    "check_change_record",
    "check_rollback",
    "check_router_config",
    "check_deployment_row",
    "check_rolling_update",
    "comparison_table",
    "expected_change_record",
    "make_window",
    "open_lab",
    "run_blue_green",
    "run_canary",
    "run_faulty_canary",
    "run_naive_replace",
    "run_rolling_update",
    "sample_change_log",
    "setup_blue_green",
    "setup_rollback",
    "setup_rolling_update",
    "upstream_of",
]
