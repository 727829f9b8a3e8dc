"""Checks for module 5, "monitoring, alerting and incident response" (notebooks/05-monitoring).

The learner writes a metric declaration, pandas functions for error budgets
and burn rates, a Prometheus rule file, a runbook and a postmortem. careops
runs what is declarative -- the service with the learner's metric beside a real
Prometheus, promtool on the rules, the incident drill with the runbook -- the
same code in the learner's lab and in the grader's live checks registered here.
The pandas functions are graded in the sandbox on the recordings in
:mod:`.recorded`, whose right answers are written out there.

Every check follows the course's contract (see :mod:`careops.checks`):
``check.drill(drill)`` in a cell, ``check.drill.report(drill)`` in hidden tests,
the grader and unit tests.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pandas as pd

from careops.checks import live_check
from careops.checks.monitoring import recorded
from careops.errors import RulesError
from careops.lab import Lab
from careops.monitoring.drill import DETECT_BUDGET, RECOVER_BUDGET, DrillRun, run_drill
from careops.monitoring.own_metric import OwnMetricRun, scrape_own_metric
from careops.monitoring.promtool import Promtool, RuleFile, read_rules
from careops.monitoring.series import Fires, SeriesCase, case_file, load_series, promtool_test, seconds_of
from careops.monitoring.stack import ADMISSIONS_PER_SECOND
from careops.phi import HIGH_PRECISION_KINDS, scan_text
from careops.report import CheckReport, call_learner, learner_check

#: the incident the graded drill injects
DRILL_INCIDENT = "disk-full"
#: the postmortem's headings (## ...), in any order
POSTMORTEM_SECTIONS = ("Summary", "Impact", "Timeline", "Root cause", "Action items")
#: the numbers a postmortem's front matter states, as DrillRun.measurements() names them
POSTMORTEM_NUMBERS = ("incident", "detected_by", "time_to_detect_s", "time_to_recover_s", "admissions_affected",
                      "acked_messages_lost")
#: words that put blame on people; a blameless postmortem describes the system and its gaps
BLAME_WORDS = ("human error", "careless", r"\bblame\b", r"\bblamed\b", r"\bto blame", "fault of", "should have known",
               "negligen", "incompeten", "stupid", "lazy", "failed to notice", "sloppy")
#: how close a postmortem's numbers must be to the drill's (the grader runs the drill again: a run differs a
#: little): times within 3 s or 50 %, counts within 25 or 50 %, no lost message means exactly 0
TIME_TOLERANCE, COUNT_TOLERANCE, SHARE_TOLERANCE = 3.0, 25.0, 0.5

#: drills the grader ran, by the artifacts they ran: the postmortem is compared with the same run
_GRADER_DRILLS: dict[tuple[str, str], DrillRun] = {}


# -- live checks for the grader --------------------------------------------------------------

@live_check("monitoring.own_metric")
def setup_own_metric(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 1: the service with the learner's metric, scraped by Prometheus."""
    return {"own": scrape_own_metric(lab, artifacts["own_metric"])}


def _grader_drill(lab: Lab, artifacts: dict[str, str]) -> DrillRun:
    key = (artifacts["alert_rules"], artifacts["runbook"])
    if key not in _GRADER_DRILLS:
        _GRADER_DRILLS[key] = run_drill(lab, artifacts["alert_rules"], artifacts["runbook"], incident=DRILL_INCIDENT,
                                        progress=False)
    return _GRADER_DRILLS[key]


@live_check("monitoring.drill")
def setup_drill(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 4: the learner's rules and runbook in the incident drill, under traffic."""
    return {"drill": _grader_drill(lab, artifacts)}


@live_check("monitoring.postmortem")
def setup_postmortem(lab: Lab, artifacts: dict[str, str]) -> dict[str, Any]:
    """The grader's exercise 5: the drill the postmortem is compared with (the one exercise 4 ran, if any)."""
    return {"drill": _grader_drill(lab, artifacts)}


# -- exercise 1: a metric of your own ----------------------------------------------------------

@learner_check
def own_metric(run: OwnMetricRun) -> CheckReport:
    """Exercise 1: the learner's counter is declared well, kept by the service and scraped with the right counts."""
    report = CheckReport("Exercise 1: a metric of your own")
    if not report.check(run.definition is not None, "the declaration follows the rules (name, help, events, labels)",
                        got=run.problem or None, hint=run.problem or "see the task's rules"):
        return report
    d = run.definition
    report.check(not run.refused, "the service accepted it", got=run.refused or None,
                 hint="read the line the service logged: it names the rule")
    report.check(f"# TYPE {d.name} counter" in run.metrics_text, f"/metrics declares {d.name} as a counter, with help",
                 hint="the service shows a metric once it accepted the declaration")
    got = run.scraped_counts()
    report.check(len(run.scraped) > 0, f"Prometheus scraped {d.name}", expected="at least one series",
                 got=len(run.scraped),
                 hint="events and outcome must match some of the messages careops sends (A01, A03, A08; accepted "
                      "and refused)")
    report.check(bool(run.expected) and got == run.expected,
                 "its value per label set is what your declaration promises for the messages careops sent",
                 expected=_counts_text(run.expected), got=_counts_text(got),
                 hint="labels read the field's first component (PV1-3 -> the ward, MSH-3 -> the sending system)")
    report.attach(run)
    return report


def _counts_text(counts: dict[tuple[tuple[str, str], ...], int]) -> str:
    return "; ".join(f"{', '.join(f'{k}={v}' for k, v in key) or '-'}: {n}" for key, n in sorted(counts.items()))


# -- exercise 2: error budgets and burn rates ----------------------------------------------------

@learner_check
def error_budget(fn: Callable[..., Any], months: list[str] | None = None, *,
                 title: str = "Exercise 2a: the error budget") -> CheckReport:
    """The learner's ``error_budget(frame, objective=...)`` on recorded months whose answers are known."""
    report = CheckReport(title)
    for name in recorded.PRACTICE_MONTHS if months is None else months:
        want = recorded.MONTH_ANSWERS[name]
        got, error = call_learner(fn, recorded.admissions_month(name), objective=want["objective"])
        label = f"month {name!r} (objective {want['objective']:g})"
        if error is not None:
            report.fail(f"{label}: error_budget runs: {error}", hint="try it on recorded.admissions_month()")
            continue
        if not report.check(isinstance(got, dict) and set(got) == set(recorded.BUDGET_KEYS),
                            f"{label}: returns a dict with exactly the keys {recorded.BUDGET_KEYS}",
                            got=sorted(got) if isinstance(got, dict) else type(got).__name__,
                            hint="return {'admissions': ..., 'bad': ..., ...}"):
            continue
        wrong = {k: got[k] for k in recorded.BUDGET_KEYS if not _close(got[k], want[k])}
        report.check(not wrong, f"{label}: every number", expected={k: _round(want[k]) for k in wrong} or None,
                     got={k: _round(v) for k, v in wrong.items()} or None, hint=_budget_hint(wrong))
    return report


def _budget_hint(wrong: dict[str, Any]) -> str:
    hints = {"admissions": "the sum of the admissions column", "bad": "admissions minus in_time, summed",
             "sli": "in_time / admissions over the whole month",
             "allowed_bad": "admissions x (1 - objective): the budget, in admissions",
             "budget_used": "bad / allowed_bad (more than 1 when overspent)",
             "budget_left": "1 - budget_used: negative when the budget is overspent, do not clip it"}
    return "; ".join(f"{k}: {hints[k]}" for k in wrong)


@learner_check
def burn_rate(fn: Callable[..., Any], cases: list[recorded.BurnCase] | None = None, *,
              title: str = "Exercise 2b: the burn rate") -> CheckReport:
    """The learner's ``burn_rate(frame, objective=..., window=...)`` at minutes whose burn rate is known. Each
    case hands it the part of the month around its minute (the whole window and more before it, an hour after):
    the burn rate at that minute is the same, and the answer stays small enough to leave the grader's sandbox."""
    report = CheckReport(title)
    for month, objective, window, minute, want in recorded.PRACTICE_BURNS if cases is None else cases:
        label = f"{month}, window {window}, at {minute}"
        at = pd.Timestamp(minute)
        frame = recorded.admissions_month(month)
        part = frame[(frame["minute"] > at - pd.Timedelta(window) - pd.Timedelta("2h"))
                     & (frame["minute"] <= at + pd.Timedelta("1h"))].reset_index(drop=True)
        series, error = call_learner(fn, part, objective=objective, window=window)
        if error is not None:
            report.fail(f"{label}: burn_rate runs: {error}", hint="try it on recorded.admissions_month()")
            continue
        if not isinstance(series, pd.Series) or not isinstance(series.index, pd.DatetimeIndex):
            report.fail(f"{label}: returns a Series indexed by minute",
                        hint="set_index('minute') before rolling, and return the burn-rate column (a Series)")
            continue
        got = float(series.loc[at]) if at in series.index else None
        expected = "NaN (no admissions in the window)" if math.isnan(want) else round(want, 4)
        report.check(got is not None and _close(got, want), f"{label}: burn rate {expected}", expected=expected,
                     got=None if got is None else (round(got, 4) if not math.isnan(got) else "NaN"),
                     hint="(bad / admissions) summed over the window ending at that minute (it includes that minute "
                          "and goes back exactly the window: rolling(window) on the minute index), divided by "
                          "(1 - objective); leave it NaN where the window has no admissions")
    return report


def _close(got: Any, want: float) -> bool:
    try:
        g = float(got)
    except (TypeError, ValueError):
        return False
    if math.isnan(want):
        return math.isnan(g)
    return not math.isnan(g) and abs(g - want) <= 1e-6 * max(1.0, abs(want))


def _round(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


# -- exercise 3: alerting and recording rules ----------------------------------------------------

@learner_check
def alert_rules(text: str, cases: list[SeriesCase] | None = None, *,
                title: str = "Exercise 3: alerting and recording rules") -> CheckReport:
    """promtool check rules, the required names, then promtool test rules on recorded series: each expectation
    (an alert fires in a window, stays silent, a recording rule's value) one criterion."""
    report = CheckReport(title)
    chosen = recorded.PRACTICE_CASES if cases is None else cases
    try:
        rules = read_rules(text)
    except RulesError as exc:
        for p in exc.problems:
            report.fail(f"promtool: {p}", hint=p.hint)
        return report
    with Promtool() as tool:
        problems = tool.check_rules(text)
        for p in problems:
            report.fail(f"promtool check rules: {p}", hint=p.hint or "fix that line, then run the cell again")
        if problems:
            return report
        report.check(True, "promtool check rules accepts the file")
        if not _names(report, rules):
            return report
        tests = {case_file(i): promtool_test(case) for i, case in enumerate(chosen)}
        results = tool.test_rules(text, tests)
    for i, case in enumerate(chosen):
        failures = results.get(case_file(i), [])
        series = load_series(case.series)
        failed_exprs = {(f.expr, seconds_of(f.time)) for f in failures if f.expr}
        broken = any(not f.expr for f in failures)  # promtool could not run this case at all
        for expect in case.expect:
            ok = (expect.expr(), float(expect.eval_at)) not in failed_exprs and not broken
            report.check(ok, f"{case.name}: {expect.describe(series)}", hint=_rule_hint(expect))
    report.data["rules"] = rules
    return report


def _names(report: CheckReport, rules: RuleFile) -> bool:
    missing_records = [r for r in recorded.RECORDS if r not in rules.records]
    report.check(not missing_records, "the recording rules the burn-rate alerts use are there",
                 expected=recorded.RECORDS, got=missing_records or None,
                 hint="record: adt:admissions_bad_ratio:rate5m (and 30m, 1h, 6h), each the share of bad admissions")
    ok = not missing_records
    for alert, severity in recorded.ALERTS.items():
        rule = rules.rule(alert)
        good = rule is not None and rule.kind == "alert" and rule.labels.get("severity") == severity
        ok &= report.check(good, f"alert {alert} with severity {severity}",
                           got=None if rule is None else rule.labels.get("severity"),
                           hint=f"- alert: {alert}\n  labels: {{severity: {severity}}}")
    return ok


def _rule_hint(expect: Any) -> str:
    if not isinstance(expect, Fires):
        return ("a recording rule is the ratio of bad to all A01 admissions over its window: 1 - (stored in time) / "
                "(all), from adt_message_age_seconds (le=\"2\", code=\"AA\") and its _count")
    if expect.fires:
        return (f"{expect.alert} must fire on this incident: try its expr on the series in Prometheus' web UI; "
                "a 'for:' longer than a few seconds, or a window much longer than the task says, is too slow")
    return (f"{expect.alert} must not fire here (it would page for nothing): check its threshold and that it "
            "compares the right thing (and: both windows of a burn-rate alert)")


# -- exercise 4: the incident drill --------------------------------------------------------------

@learner_check
def drill(run: DrillRun) -> CheckReport:
    """Exercise 4: the drill's incident detected and ended by the learner's rules and runbook, within budget."""
    report = CheckReport(f"Exercise 4: the incident drill ({run.incident.kind})")
    report.check(run.incident.kind == DRILL_INCIDENT, f"the drill injected {DRILL_INCIDENT}",
                 expected=DRILL_INCIDENT, got=run.incident.kind, hint=f"run_drill(..., incident={DRILL_INCIDENT!r})")
    sent = len(run.messages())
    span = float(run.traffic.frame["t_sched"].max() - run.traffic.frame["t_sched"].min()) if sent else 0.0
    rate = sent / span if span else 0.0
    report.check(rate >= 0.9 * ADMISSIONS_PER_SECOND, "the ward sent its admissions throughout",
                 expected=f">= {0.9 * ADMISSIONS_PER_SECOND:g}/s", got=round(rate, 1),
                 hint="the machine was too busy: close other notebooks and run the drill again")
    report.check(not run.false_alarms, "no alert was firing before the incident (no false alarm)",
                 got=run.false_alarms or None, hint="an alert that fires on a healthy service pages for nothing: "
                                                    "check its threshold on the healthy series of exercise 3")
    ttd = run.time_to_detect
    report.check(ttd is not None and ttd <= DETECT_BUDGET,
                 f"an alert fired within {DETECT_BUDGET:g} s of the incident", expected=f"<= {DETECT_BUDGET:g} s",
                 got=None if ttd is None else f"{ttd:g} s ({run.detected_by})",
                 hint="ADTDatabaseWriteErrors on increase(adt_db_write_errors_total[30s]) fires within seconds")
    fixing = [a for a in run.actions if a.action == run.incident.fix and not a.error]
    report.check(bool(fixing) and not run.ended_by_careops,
                 f"your runbook ended the incident ({run.incident.fix})",
                 got=", ".join(f"{a.action} on {a.alert}" for a in run.actions) or "no action ran",
                 hint=f"a step: the alert that fires on this incident -> action {run.incident.fix}")
    ttr = run.time_to_recover
    report.check(ttr is not None and ttr <= RECOVER_BUDGET and not run.ended_by_careops,
                 f"admissions were stored normally again within {RECOVER_BUDGET:g} s of the incident",
                 expected=f"<= {RECOVER_BUDGET:g} s", got=None if ttr is None else f"{ttr:g} s",
                 hint="detect sooner and run the right action at once")
    report.check(not run.reconcile.lost, "no ACKed admission was lost", expected=0, got=len(run.reconcile.lost),
                 hint=str(run.reconcile))
    report.data["measurements"] = run.measurements()
    return report


# -- exercise 5: the postmortem -------------------------------------------------------------------

def read_front_matter(text: str) -> tuple[dict[str, Any] | None, str]:
    """The YAML between the first two '---' lines of a markdown text (None when there is none), and the rest."""
    import yaml

    m = re.match(r"^\s*---\s*\n(.*?)\n---\s*\n(.*)$", text, re.S)
    if m is None:
        return None, text
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError:
        return None, m.group(2)
    return (data if isinstance(data, dict) else None), m.group(2)


def _sections(body: str) -> dict[str, str]:
    found: dict[str, str] = {}
    current = None
    for line in body.splitlines():
        m = re.match(r"^#{1,3}\s+(.*?)\s*$", line)
        if m:
            current = m.group(1).strip().lower()
            found[current] = ""
        elif current is not None:
            found[current] += line + "\n"
    return found


def _section(sections: dict[str, str], name: str) -> str | None:
    key = name.lower()
    return next((v for k, v in sections.items() if k == key or k.startswith(key)), None)


def _matches(key: str, got: Any, want: Any) -> bool:
    try:
        g, w = float(got), float(want)
    except (TypeError, ValueError):
        return str(got).strip() == str(want).strip()
    if key == "acked_messages_lost":
        return g == w
    return abs(g - w) <= max(TIME_TOLERANCE if key.endswith("_s") else COUNT_TOLERANCE, SHARE_TOLERANCE * abs(w))


@learner_check
def postmortem(text: str, run: DrillRun) -> CheckReport:
    """Exercise 5: a blameless postmortem with the required sections whose numbers are the drill's."""
    report = CheckReport("Exercise 5: the postmortem")
    front, body = read_front_matter(text)
    if not report.check(front is not None, "it starts with the numbers block (front matter between --- lines)",
                        hint="---\nincident: disk-full\ntime_to_detect_s: ...\n---"):
        return report
    assert front is not None
    measured = run.measurements()
    fired = sorted(set(run.alerts[(run.alerts["t"] >= run.injected_at) & (run.alerts["state"] == "firing")]["alert"])) \
        if len(run.alerts) else []
    for key in POSTMORTEM_NUMBERS:
        if key not in front:
            report.fail(f"the numbers block states {key}", hint=f"{key}: copy it from drill.measurements()")
            continue
        if key == "detected_by":  # two alerts may fire in the same second: any that fired on the incident
            report.check(str(front[key]) in fired, "detected_by names an alert that fired on the incident",
                         expected=fired, got=front[key], hint="copy it from drill.measurements()")
            continue
        want = measured[key]
        report.check(_matches(key, front[key], want), f"{key} is what the drill measured (times within "
                     f"{TIME_TOLERANCE:g} s, counts within {COUNT_TOLERANCE:g}, or {SHARE_TOLERANCE:.0%})",
                     expected=want, got=front[key],
                     hint="copy the number from drill.measurements(); the grader runs your drill again, and a run "
                          "differs from the last one by a little")
    sections = _sections(body)
    missing = [s for s in POSTMORTEM_SECTIONS if _section(sections, s) is None]
    report.check(not missing, f"it has the sections {', '.join(POSTMORTEM_SECTIONS)}", got=missing or None,
                 hint="one '## Name' heading per section")
    timeline = _section(sections, "Timeline") or ""
    entries = [ln for ln in timeline.splitlines() if re.search(r"\d+(\.\d+)?\s*s\b|\d\d:\d\d", ln)]
    report.check(len(entries) >= 3, "the timeline has at least three timed entries (injection, detection, recovery)",
                 expected=">= 3", got=len(entries), hint="- +12.3 s: the export job fills the disk ...")
    actions = [ln for ln in (_section(sections, "Action items") or "").splitlines() if re.match(r"^\s*[-*]\s+", ln)]
    owned = [ln for ln in actions if "owner:" in ln.lower()]
    report.check(len(owned) >= 2, "at least two action items, each with an owner (a role, not a person)",
                 expected=">= 2", got=len(owned), hint="- move exports off the database disk (owner: integration team)")
    blame = [w.replace("\\b", "") for w in BLAME_WORDS if re.search(w, text.lower())]
    report.check(not blame, "it is blameless: it describes the system, not who to blame", got=blame or None,
                 hint="ask what made the mistake possible and easy, not who made it")
    phi = [f for f in scan_text(text, kinds=HIGH_PRECISION_KINDS) if not f.synthetic]
    report.check(not phi, "it carries no patient identifiers", got=[str(f) for f in phi] or None,
                 hint="postmortems are read widely: counts and control ids, never MRNs, phones or SSNs")
    return report


__all__ = [
    "BLAME_WORDS",
    "DRILL_INCIDENT",
    "POSTMORTEM_NUMBERS",
    "POSTMORTEM_SECTIONS",
    "alert_rules",
    "burn_rate",
    "drill",
    "error_budget",
    "own_metric",
    "postmortem",
    "read_front_matter",
    "recorded",
    "setup_drill",
    "setup_own_metric",
    "setup_postmortem",
]
