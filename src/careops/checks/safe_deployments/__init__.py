"""Checks for module 3, "safe deployments" (notebooks/03-safe-deployments).

The learner writes declarative artifacts (a router config and Argo-Rollouts-
shaped rollout specs); careops' own controller executes them under traffic
(:mod:`careops.rollout.drills`), the same code in the learner's lab and in the
grader's live checks registered here. The learner's Python (the canary
analysis, a deployment's row, the change record) is plain pandas, graded in the
sandbox on the recordings in :mod:`.recorded`, whose right answers are written
out there, never computed by a reference the learner could call.

Every check follows the course's contract (see :mod:`careops.checks`):
``check.blue_green(bg_run)`` in a cell, ``check.blue_green.report(bg_run)`` in
hidden tests, the grader and unit tests.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from careops.checks import live_check
from careops.checks.safe_deployments import recorded
from careops.errors import CareOpsError
from careops.legacy_adt import HTTP_PORT, MLLP_PORT
from careops.lab import Lab
from careops.report import CheckReport, learner_check, learner_error
from careops.rollout import COLOURS, RolloutSpec
from careops.rollout.drills import (
    ROLLING_REPLICAS,
    V2,
    V2_FAULTY,
    DeploymentRun,
    run_blue_green,
    run_faulty_canary,
    run_rolling_update,
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
DEPLOYMENT_ROW_KEYS = ["seconds", "http_requests", "failed_requests", "failed_messages", "p95_ms",
                       "side_by_side_seconds"]
CHANGE_RECORD_COLUMNS = ["change_id", "deployed_by", "approved_by", "strategy", "image", "started", "ended",
                         "outcome", "rolled_back"]


# -- live checks for the grader: the learner's artifacts, deployed under traffic by careops ------------

@live_check("safe_deployments.blue_green")
def setup_blue_green(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 2: the learner's router config and blue/green spec, under traffic."""
    return {"bg_run": run_blue_green(lab, artifacts["router_config"], artifacts["blue_green_rollout"],
                                     actor="careops grader", progress=False)}


@live_check("safe_deployments.rollback")
def setup_rollback(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 4: the learner's rollback spec against v2-faulty, under traffic."""
    return {"faulty_run": run_faulty_canary(lab, artifacts["router_config"], artifacts["rollback_rollout"],
                                            actor="careops grader", progress=False)}


@live_check("safe_deployments.rolling_update")
def setup_rolling_update(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 5a: the learner's rolling-update spec, under traffic."""
    return {"rolling_run": run_rolling_update(lab, artifacts["rolling_rollout"], actor="careops grader",
                                              progress=False)}


# -- exercises 1a and 2: the router config, blue/green ----------------------------------------

@learner_check
def router_config(text: str) -> CheckReport:
    """The starting router config: valid, and all HTTP and MLLP traffic on adt-blue's ports."""
    report = CheckReport("Exercise 1a: the router config")
    config = report.parsed(parse_router_config, text, "the router config is valid", errors=CareOpsError)
    if config is None:
        return report
    for proto, port in (("http", HTTP_PORT), ("mllp", MLLP_PORT)):
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
    report.data["traffic"] = s
    return s


@learner_check
def blue_green(run: DeploymentRun) -> CheckReport:
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

@learner_check
def canary_analysis(fn: Callable[..., Any], cases: list[recorded.CanaryCase] | None = None, *,
                    title: str = "Exercise 3: the canary analysis") -> CheckReport:
    """Call the learner's ``canary_analysis`` on recorded windows whose verdicts are known; one line per case.
    ``data["verdicts"]``: what it answered, by case."""
    report = CheckReport(title)
    verdicts = report.data.setdefault("verdicts", {})
    for what, window_args, rule_changes, expected in recorded.PRACTICE_CASES if cases is None else cases:
        rule = {**recorded.RULE, **rule_changes}
        window = window_args.get("window", 10.0)
        frame = recorded.make_window(**window_args)
        try:
            got = fn(frame, canary_upstream=recorded.CANARY_UPSTREAM, now=recorded.NOW, window_seconds=window, **rule)
        except Exception as exc:  # noqa: BLE001 - the learner's error, reported as a failed criterion
            got = learner_error(exc)
        verdicts[what] = got
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


def _spec_of(report: CheckReport, run: DeploymentRun, kind: str, image: str, *, hint: str) -> RolloutSpec | None:
    """The run's spec if it is a ``kind`` rollout of ``image`` (one criterion says whether), else None."""
    spec = run.spec
    ok = report.check(spec is not None and spec.kind == kind and spec.image == image,
                      f"the rollout is a {kind} of {image}", expected=(kind, image),
                      got=(spec.kind, spec.image) if spec else None, hint=hint)
    return spec if ok else None


# -- exercise 4: rollback -------------------------------------------------------------------

@learner_check
def rollback(run: DeploymentRun) -> CheckReport:
    """Exercise 4: the canary of v2-faulty is rolled back automatically, in bounded time, within the budget."""
    report = CheckReport("Exercise 4: automated rollback of v2-faulty")
    spec = _spec_of(report, run, "canary", V2_FAULTY, hint="spec.strategy.canary with steps, image " + V2_FAULTY)
    if spec is None:
        return report
    r = run.result
    budget = spec.rollback.max_failed_requests
    report.check(spec.rollback.on_failure == "rollback" and budget is not None and budget <= MAX_POLICY_BUDGET,
                 f"the rollback policy returns traffic to v1 after at most {MAX_POLICY_BUDGET} failed requests",
                 expected=f"on-failure rollback, max-failed-requests <= {MAX_POLICY_BUDGET}",
                 got=f"on-failure {spec.rollback.on_failure}, max-failed-requests {budget}",
                 hint=f'metadata.annotations: careops.io/max-failed-requests: "{MAX_POLICY_BUDGET // 2}" (a string; '
                      "a canary rolls back on its own, unless careops.io/on-failure says abort)")
    report.check(any(s.analysis for s in spec.strategy.steps),  # type: ignore[union-attr]
                 "the canary has an analysis step (health checks alone do not see this fault)",
                 hint="add an analysis step: templates [{templateName: careops-canary}] with the args window-seconds, "
                      "min-sample, max-error-rate and max-p95-latency-ratio")
    report.check(r.outcome == "rolled-back" and r.rolled_back, "the faulty release was rolled back automatically",
                 expected="rolled-back", got=r.outcome, hint=r.reason or "read the rollout's events above")
    _traffic_criteria(report, run)
    first = next((t for label, t in r.events if label.startswith("setWeight")), None)
    back = r.at("rollback")
    took = (back - first) if first is not None and back is not None else None
    report.data["seconds_to_rollback"] = took
    report.check(took is not None and took <= ROLLBACK_SECONDS,
                 f"all traffic was back on v1 within {ROLLBACK_SECONDS:g} s of the canary's first traffic",
                 expected=f"<= {ROLLBACK_SECONDS:g} s", got=None if took is None else round(took, 1),
                 hint="short pauses and an analysis window of a few seconds; a small first setWeight needs a "
                      "longer window to reach minSample")
    failed = run.failed()
    report.check(failed <= FAILED_BUDGET, f"at most {FAILED_BUDGET} failed requests and messages in all",
                 expected=f"<= {FAILED_BUDGET}", got=failed,
                 hint="detect sooner: a shorter pause and window, or a lower careops.io/max-failed-requests")
    hosts = sorted(b.host for b in run.router_after.http if b.weight > 0) if run.router_after else []
    report.check(hosts == [COLOURS[0]] and set(run.answers_after) == {"v1"},
                 "afterwards the router sends everything to v1 again", expected=[COLOURS[0]],
                 got={"router": hosts, "answers": run.answers_after},
                 hint="a failed canary rolls back unless careops.io/on-failure says abort: remove that annotation")
    report.check(not run.reconcile.lost and not run.reconcile.duplicated,
                 "no ACKed MLLP message lost or stored twice", expected=0,
                 got=len(run.reconcile.lost) + len(run.reconcile.duplicated),
                 hint="the controller stops the canary gracefully; run the cell again")
    return report


# -- exercise 5a: rolling update ---------------------------------------------------------------

@learner_check
def rolling_update(run: DeploymentRun) -> CheckReport:
    """Exercise 5a: three copies replaced one at a time under load: full capacity throughout, nothing failed."""
    report = CheckReport("Exercise 5a: rolling update under traffic")
    spec = _spec_of(report, run, "rollingUpdate", V2,
                    hint="spec.strategy.canary without steps (maxSurge, maxUnavailable), and "
                         "spec.template.spec.containers[0].image: " + V2)
    if spec is None:
        return report
    r = run.result
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
                 got=s["http_failed"], hint="a readinessProbe with successThreshold 2 or more, and a preStop sleep "
                                            "of 1 s or more so an old copy finishes what it holds")
    report.check(not run.reconcile.lost and not run.reconcile.duplicated and not run.reconcile.unanswered,
                 "every MLLP message was ACKed and stored exactly once", expected=0,
                 got=len(run.reconcile.lost) + len(run.reconcile.duplicated) + len(run.reconcile.unanswered),
                 hint=str(run.reconcile))
    report.check(set(run.answers_after) == {"v2"}, "afterwards only v2 answers", expected={"v2"},
                 got=set(run.answers_after), hint="every old copy must be replaced")
    return report


# -- exercise 5b: a deployment's row -------------------------------------------------------------

@learner_check
def deployment_row(fn: Callable[..., Any], cases: Mapping[str, Mapping[str, float]] | None = None, *,
                   title: str = "Exercise 5b: a deployment's row") -> CheckReport:
    """Call the learner's ``deployment_row`` on recorded deployments whose rows are known; one line per case.

    ``cases`` maps a case of :func:`recorded.make_deployment_record` to its right row (default: the practice
    cases and their answers; hidden tests bring the graded ones). ``data["rows"]``: the rows it returned, by case.
    """
    report = CheckReport(title)
    rows = report.data.setdefault("rows", {})
    for case, expected in (recorded.PRACTICE_ROW_ANSWERS if cases is None else cases).items():
        frame, args = recorded.make_deployment_record(case)
        try:
            got = dict(fn(frame, **args))
        except Exception as exc:  # noqa: BLE001 - the learner's error, reported as a failed criterion
            report.fail(f"{case}: the row", hint=learner_error(exc))
            continue
        rows[case] = got
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

@learner_check
def change_record(fn: Callable[[pd.DataFrame], Any], *,
                  cases: list[tuple[str, pd.DataFrame, list[dict[str, Any]]]] | None = None,
                  title: str = "Exercise 6: the change record") -> CheckReport:
    """The learner's ``change_record(audit_frame)`` on audit logs whose answer is known.

    ``cases`` are ``(label, audit log, right record)``; the default is the practice log and its answer
    (hidden tests bring their own, with answers from the grader's references).
    """
    report = CheckReport(title)
    default = [("the sample log", recorded.sample_change_log(), recorded.PRACTICE_CHANGE_RECORD)]
    for label, log, want in cases or default:
        try:
            out = fn(log.copy())
        except Exception as exc:  # noqa: BLE001 - the learner's error, reported as a failed criterion
            report.fail(f"change_record runs on {label}: {learner_error(exc)}",
                        hint="try it on recorded.sample_change_log() and read the traceback")
            continue
        if not report.check(isinstance(out, pd.DataFrame), f"{label}: returns a DataFrame",
                            got=type(out).__name__, hint="build the rows and return pd.DataFrame(rows)"):
            continue
        if not report.check(list(out.columns) == CHANGE_RECORD_COLUMNS, f"{label}: exactly the asked columns, in order",
                            expected=CHANGE_RECORD_COLUMNS, got=list(out.columns),
                            hint="select them in order: out[[...]]"):
            continue
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


__all__ = [
    "CHANGE_RECORD_COLUMNS",
    "DEPLOYMENT_ROW_KEYS",
    "FAILED_BUDGET",
    "MAX_POLICY_BUDGET",
    "MIN_HTTP_RATE",
    "ROLLBACK_SECONDS",
    "blue_green",
    "canary_analysis",
    "change_record",
    "deployment_row",
    "recorded",
    "rollback",
    "rolling_update",
    "router_config",
    "setup_blue_green",
    "setup_rollback",
    "setup_rolling_update",
]
