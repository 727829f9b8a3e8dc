"""careops.checks.monitoring: every module 5 check passes the right answer and fails each plausible wrong one.

The pandas checks run on the recorded months (their answers are written by hand in recorded.py; here they are
cross-checked against a second, independent computation). The rules check runs the real promtool on the real
series: the solution passes every practice and graded case, and each plausible mistake fails at least one. The
drill and postmortem checks are proven on constructed drill runs here (a fake beside the real thing: the
notebook's drill runs in tests/test_notebooks.py and tests/test_grade_modules.py).
"""
from __future__ import annotations

import math
from typing import Any

import nbformat
import pandas as pd
import pytest

from careops.checks import monitoring as check
from careops.checks.monitoring import recorded
from careops.errors import MonitoringError
from careops.images import ensure_images
from careops.monitoring.drill import ActionTaken, DrillRun
from careops.monitoring.incidents import INCIDENTS
from careops.monitoring.own_metric import OwnMetricRun, PROBE_MESSAGES, parse_metric_definition
from careops.paths import lab_asset, repo_root
from careops.traffic import TrafficPlan, TrafficResult, reconcile

SOLUTIONS = {"alert_rules": "rules.yml", "runbook": "runbook.yml", "own_metric": "own-metric.yml",
             "postmortem": "postmortem.md"}
RULES = lab_asset("monitoring/solution/rules.yml").read_text()
POSTMORTEM = lab_asset("monitoring/solution/postmortem.md").read_text()


def test_solution_files_are_the_notebooks_solution_cells() -> None:
    nb = nbformat.read(repo_root() / "notebooks/05-monitoring/monitoring.ipynb", 4)
    cells = {c.metadata["careops"]["artifact"]: c.source for c in nb.cells
             if c.metadata.get("careops", {}).get("artifact")}
    assert set(cells) == set(SOLUTIONS)
    for artifact, name in SOLUTIONS.items():
        lines = [line for line in cells[artifact].splitlines() if not line.startswith("%%artifact")
                 and line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
        assert lab_asset(f"monitoring/solution/{name}").read_text() == "\n".join(lines) + "\n", f"{name} drifted"


# -- exercise 2 --------------------------------------------------------------------------------

def good_budget(frame: pd.DataFrame, *, objective: float) -> dict[str, Any]:
    admissions = frame["admissions"].sum()
    bad = admissions - frame["in_time"].sum()
    used = bad / (admissions * (1 - objective))
    return {"admissions": admissions, "bad": bad, "sli": 1 - bad / admissions,
            "allowed_bad": admissions * (1 - objective), "budget_used": used, "budget_left": 1 - used}


def good_burn(frame: pd.DataFrame, *, objective: float, window: str) -> pd.Series:
    sums = frame.set_index("minute")[["admissions", "in_time"]].rolling(window).sum()
    return (1 - sums["in_time"] / sums["admissions"]) / (1 - objective)


def test_the_recorded_answers_agree_with_an_independent_computation() -> None:
    for name, want in recorded.MONTH_ANSWERS.items():
        got = good_budget(recorded.admissions_month(name), objective=want["objective"])
        assert all(math.isclose(got[k], want[k], rel_tol=1e-9, abs_tol=1e-9) for k in recorded.BUDGET_KEYS), name
    for month, objective, window, minute, want in recorded.PRACTICE_BURNS + recorded.GRADED_BURNS:
        got = float(good_burn(recorded.admissions_month(month), objective=objective, window=window)[minute])
        assert (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=1e-9), (month, minute)


def test_error_budget_passes_the_right_answer_and_fails_clipping_and_the_wrong_budget() -> None:
    months = recorded.PRACTICE_MONTHS + recorded.GRADED_MONTHS
    assert check.error_budget.report(good_budget, months).passed

    def clipped(frame: pd.DataFrame, *, objective: float) -> dict[str, Any]:
        out = good_budget(frame, objective=objective)
        return {**out, "budget_left": max(0.0, out["budget_left"])}

    def budget_of_the_objective(frame: pd.DataFrame, *, objective: float) -> dict[str, Any]:
        out = good_budget(frame, objective=objective)
        return {**out, "allowed_bad": len(frame) * (1 - objective)}  # minutes, not admissions

    def a_key_short(frame: pd.DataFrame, *, objective: float) -> dict[str, Any]:
        out = good_budget(frame, objective=objective)
        del out["sli"]
        return out

    for wrong, words in ((clipped, "do not clip"), (budget_of_the_objective, "admissions x (1 - objective)"),
                         (a_key_short, "exactly the keys")):
        report = check.error_budget.report(wrong, months)
        assert not report.passed, wrong.__name__
        assert any(words in (c.hint + c.message) for c in report.failures), (wrong.__name__, str(report))


def test_burn_rate_fails_the_mean_of_ratios_a_centred_window_and_zero_for_silence() -> None:
    cases = recorded.PRACTICE_BURNS + recorded.GRADED_BURNS
    assert check.burn_rate.report(good_burn, cases).passed

    def mean_of_ratios(frame: pd.DataFrame, *, objective: float, window: str) -> pd.Series:
        ratio = 1 - frame.set_index("minute")["in_time"] / frame.set_index("minute")["admissions"]
        return ratio.rolling(window).mean() / (1 - objective)

    def centred(frame: pd.DataFrame, *, objective: float, window: str) -> pd.Series:
        minutes = int(pd.Timedelta(window).total_seconds() // 60)
        sums = frame.set_index("minute")[["admissions", "in_time"]].rolling(minutes, center=True).sum()
        return (1 - sums["in_time"] / sums["admissions"]) / (1 - objective)

    def silence_is_zero(frame: pd.DataFrame, *, objective: float, window: str) -> pd.Series:
        return good_burn(frame, objective=objective, window=window).fillna(0.0)

    def not_a_series(frame: pd.DataFrame, *, objective: float, window: str) -> list[float]:
        return list(good_burn(frame, objective=objective, window=window))

    for wrong in (mean_of_ratios, centred, silence_is_zero, not_a_series):
        assert not check.burn_rate.report(wrong, cases).passed, wrong.__name__


# -- exercise 1: the metric's declaration ------------------------------------------------------

@pytest.mark.parametrize("change, words", [
    ("name: adt_admissions_by_ward", "must end in _total"),
    ("name: admissions_total", "prefix adt_"),
    ("name: adt_acks_total", "service's own metrics"),
    ("labels: {patient: PID-3}", "patient data"),
    ("labels: {ward: PV1}", "not a field path"),
    ("labels: {le: PV1-3}", "not a label name you may use"),
    ("events: [A04]", "events must be a list of A01, A03, A08"),
    ("help: x", "says too little"),
])
def test_a_metric_declaration_breaking_a_rule_names_it(change: str, words: str) -> None:
    text = lab_asset("monitoring/solution/own-metric.yml").read_text()
    key = change.split(":")[0]
    lines = [change if line.startswith(f"{key}:") else line for line in text.splitlines()
             if not (key == "labels" and line.startswith("  "))]
    with pytest.raises(MonitoringError, match=words):
        parse_metric_definition("\n".join(lines) + "\n")


def test_the_expected_counts_follow_the_declaration() -> None:
    from careops.hl7 import build_adt

    definition = parse_metric_definition(lab_asset("monitoring/solution/own-metric.yml").read_text())
    sent = []
    for event, control_id, ward, app, visit in PROBE_MESSAGES:
        text = build_adt(event, control_id=control_id, mrn=f"SYN-{visit[2:]}", family="Testperson", given="Robin",
                         birth_date="19700101", sex="U", ward=ward, sending_app=app, visit_number=visit)
        sent.append((text, "AE" if control_id == "OWN-07" else "AA"))
    assert definition.counts(sent) == {(("sending_system", "REG-DESK"), ("ward", "WARD1")): 2,
                                       (("sending_system", "ED-SYSTEM"), ("ward", "ICU")): 2,
                                       (("sending_system", "REG-DESK"), ("ward", "MATERNITY")): 1}


def test_own_metric_fails_a_refused_declaration_and_wrong_counts() -> None:
    definition = parse_metric_definition(lab_asset("monitoring/solution/own-metric.yml").read_text())
    expected = {(("sending_system", "ED"), ("ward", "ICU")): 2}
    text = f"# TYPE {definition.name} counter\n"
    good = OwnMetricRun(definition, expected=expected, metrics_text=text,
                        scraped=pd.DataFrame([{"ward": "ICU", "sending_system": "ED", "value": 2.0}]))
    assert check.own_metric.report(good).passed
    wrong = OwnMetricRun(definition, expected=expected, metrics_text=text,
                         scraped=pd.DataFrame([{"ward": "ICU", "sending_system": "ED", "value": 3.0}]))
    assert [c.message for c in check.own_metric.report(wrong).failures][0].startswith("its value per label set")
    refused = OwnMetricRun(None, problem="your metric: labels.patient (line 6): PID-3 would put patient data ...")
    assert not check.own_metric.report(refused).passed


# -- exercises 4 and 5 on constructed drill runs ----------------------------------------------------

def _run(*, detect: float | None = 1.5, action: str = "free-disk", recover: float | None = 2.0,
         lost: bool = False, false_alarm: bool = False, ended: bool = False) -> DrillRun:
    t0, injected = 1_000.0, 1_012.0
    rows = []
    for i in range(400):  # 10 admissions a second for 40 s; refused between the injection and the recovery
        created = t0 + i / 10
        hurt = injected <= created < injected + (recover or 28)
        rows.append({"kind": "mllp", "seq": i, "id": f"TR-X-{i:05d}", "attempt": 1, "t_sched": created,
                     "t_send": created, "latency_ms": 5.0, "status": "AE" if hurt else "AA", "ok": not hurt,
                     "version": "v2", "upstream": "", "error": ""})
    frame = pd.DataFrame(rows)
    frame["t"] = frame["t_send"] - t0
    stored = [r["id"] for r in rows if r["ok"]][1 if lost else 0:]
    alerts = pd.DataFrame([{"t": injected + detect, "alert": "ADTDatabaseWriteErrors", "state": "firing"}]
                          if detect is not None else [], columns=["t", "alert", "state"])
    actions = [ActionTaken(injected + detect + 0.1, "ADTDatabaseWriteErrors", action, 0.1)] if detect else []
    return DrillRun(INCIDENTS["disk-full"], t0, injected, injected + detect if detect is not None else None,
                    "ADTDatabaseWriteErrors" if detect is not None else None, actions,
                    injected + recover if recover is not None else None, ["ADTFeedSilent"] if false_alarm else [],
                    alerts, TrafficResult(frame, TrafficPlan(duration=40), t0), reconcile(frame, stored),
                    ended_by_careops_at=injected + 30 if ended else None)


def _failed(report: Any) -> list[str]:
    return [c.message for c in report.failures]


def test_drill_passes_a_good_run_and_names_each_failure() -> None:
    assert check.drill.report(_run()).passed
    assert _failed(check.drill.report(_run(detect=None, recover=None, ended=True)))[0].startswith("an alert fired")
    assert any("your runbook ended" in m for m in _failed(check.drill.report(_run(action="restart-service",
                                                                                   recover=None, ended=True))))
    assert _failed(check.drill.report(_run(false_alarm=True))) == ["no alert was firing before the incident "
                                                                   "(no false alarm)"]
    assert _failed(check.drill.report(_run(lost=True))) == ["no ACKed admission was lost"]
    assert any("within 30 s" in m for m in _failed(check.drill.report(_run(recover=None))))


def test_postmortem_passes_the_solution_and_fails_what_a_postmortem_must_not_be() -> None:
    run = _run(detect=2.0, recover=3.0)
    assert run.measurements()["admissions_affected"] == 30
    assert check.postmortem.report(POSTMORTEM, run).passed, str(check.postmortem.report(POSTMORTEM, run))
    far = POSTMORTEM.replace("time_to_detect_s: 2", "time_to_detect_s: 9")
    assert _failed(check.postmortem.report(far, run))[0].startswith("time_to_detect_s is what the drill measured")
    lost = POSTMORTEM.replace("acked_messages_lost: 0", "acked_messages_lost: 1")
    assert any(m.startswith("acked_messages_lost") for m in _failed(check.postmortem.report(lost, run)))
    blaming = POSTMORTEM.replace("## Root cause\n", "## Root cause\nHuman error: the night operator was careless.\n")
    assert _failed(check.postmortem.report(blaming, run)) == [
        "it is blameless: it describes the system, not who to blame"]
    phone = "212-555-" + "1234"  # a real-looking phone, written in two parts so this file carries none
    phi = POSTMORTEM.replace("## Impact\n", f"## Impact\n- call the patient back on {phone}\n")
    assert _failed(check.postmortem.report(phi, run)) == ["it carries no patient identifiers"]
    no_owner = POSTMORTEM.replace("(owner: ", "(")
    assert any("owner" in m for m in _failed(check.postmortem.report(no_owner, run)))
    no_numbers = POSTMORTEM.split("---\n", 2)[2]
    assert _failed(check.postmortem.report(no_numbers, run))[0].startswith("it starts with the numbers block")
    short = POSTMORTEM.replace("## Root cause", "## Why")
    assert any("sections" in m for m in _failed(check.postmortem.report(short, run)))
    assert check.postmortem.report(POSTMORTEM + "\nA blameless review.\n", run).passed  # not a blame word


# -- exercise 3 through the real promtool ---------------------------------------------------------

@pytest.fixture(scope="module")
def prometheus_image() -> None:
    ensure_images(["prometheus"], progress=False)


@pytest.mark.docker
@pytest.mark.slow
def test_the_solution_rules_pass_every_case(prometheus_image: None) -> None:
    report = check.alert_rules.report(RULES, recorded.PRACTICE_CASES + recorded.GRADED_CASES)
    assert report.passed, str(report)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("old, new, fails", [
    ("adt:admissions_bad_ratio:rate1h > 14.4 * 0.005 and adt:admissions_bad_ratio:rate5m > 14.4 * 0.005",
     "adt:admissions_bad_ratio:rate5m > 14.4 * 0.005", "one-minute outage"),  # one window pages on a blip
    ('sum(rate(adt_messages_received_total{event="A01"}[10s])) == 0',
     "time() - adt_last_success_timestamp_seconds > 10",
     "disk fills up: ADTFeedSilent stays silent"),  # a stuck database is not a silent feed
    ("sum(increase(adt_db_write_errors_total[30s])) > 0", "sum(adt_db_write_errors_total) > 0",
     "ADTDatabaseWriteErrors stays silent between 6:05:00"),  # fires forever after the first error
    ('sum(rate(adt_acks_total{code="AR"}[30s])) > 1', 'sum(rate(adt_acks_total{code=~"AE|AR"}[30s])) > 1',
     "disk fills up: ADTNakFlood stays silent"),  # the service's own errors are not a noisy sender
    ("adt_message_age_seconds", "adt_processing_seconds", "report job slows the database down"),  # not the ward's view
    ("labels: {severity: ticket}\n        annotations:\n          summary: \"More",
     "labels: {severity: page}\n        annotations:\n          summary: \"More", "ADTNakFlood with severity ticket"),
])
def test_each_plausible_mistake_in_the_rules_fails(prometheus_image: None, old: str, new: str, fails: str) -> None:
    assert old in RULES
    report = check.alert_rules.report(RULES.replace(old, new), recorded.PRACTICE_CASES + recorded.GRADED_CASES)
    assert any(fails in c.message for c in report.failures), str(report)
