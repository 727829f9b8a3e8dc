"""careops.checks.safe_deployments: every check passes the right answer and fails each plausible wrong one.

The canary and change-record checks are pure pandas (no engine); their hand-written answers are cross-checked
against careops' own analysis. The deployment checks are proven both ways on constructed records here (a fake
beside the real thing) and for real in the docker tests at the bottom: the notebook's solution specs pass under
live traffic, a rollout whose policy does not roll back fails.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
import pytest

from careops import engine
from careops.checks import CheckFailed, live_checks
from careops.checks import safe_deployments as check
from careops.checks.safe_deployments import recorded
from careops.errors import RolloutError
from careops.grading.references import load as load_reference
from careops.report import NOT_WRITTEN
from careops.images import ensure_images
from careops.images.build import existing_image
from careops.lab import Lab
from careops.rollout import Analysis, RolloutResult, drills, parse_rollout
from careops.rollout.analysis import analyze
from careops.router import ROUTER_IMAGE, RouterConfig
from careops.traffic import TrafficPlan, TrafficResult, reconcile

#: the grader's references (grading/references/): the notebook's solution artifacts (kept equal to the notebook
#: below), the graded rows and change records
REFERENCE = load_reference("safe_deployments")
SOLUTION_FILES, solution_artifact = REFERENCE.SOLUTION_FILES, REFERENCE.solution_artifact
ROUTER = solution_artifact("router")
BLUE_GREEN = solution_artifact("blue-green")
FAULTY = solution_artifact("rollback")
ROLLING = solution_artifact("rolling")


def test_solution_files_are_the_notebooks_solution_cells() -> None:
    import nbformat

    from careops.paths import repo_root

    nb = nbformat.read(repo_root() / "notebooks/03-safe-deployments/safe-deployments.ipynb", 4)
    cells = {c.metadata["careops"]["artifact"]: c.source for c in nb.cells
             if c.metadata.get("careops", {}).get("artifact")}
    assert set(cells) == set(SOLUTION_FILES)
    for artifact, name in SOLUTION_FILES.items():
        lines = [line for line in cells[artifact].splitlines() if not line.startswith("%%artifact")
                 and line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
        assert solution_artifact(name) == "\n".join(lines) + "\n", f"{name}.yaml drifted from the notebook"
    with pytest.raises(ValueError, match="no solution artifact"):
        solution_artifact("../../README")


# -- exercise 3: the canary analysis ---------------------------------------------------------

def good_analysis(frame, *, canary_upstream, now, window_seconds, min_sample, max_error_rate, max_p95_ratio):
    http = frame[(frame["kind"] == "http") & (frame["t_send"] > now - window_seconds) & (frame["t_send"] <= now)]
    canary = http[http["upstream"] == canary_upstream]
    baseline = http[(http["upstream"] != canary_upstream) & (http["upstream"] != "")]
    if len(canary) < min_sample:
        return "inconclusive"
    if (~canary["ok"]).mean() > max_error_rate:
        return "fail"
    if len(baseline) and canary["latency_ms"].quantile(0.95) > max_p95_ratio * baseline["latency_ms"].quantile(0.95):
        return "fail"
    return "pass"


def _variant(**changes: object) -> Callable[..., str]:
    """good_analysis with one plausible mistake."""
    def fn(frame, *, canary_upstream, now, window_seconds, min_sample, max_error_rate, max_p95_ratio):
        http = frame[frame["kind"] == "http"] if not changes.get("all_kinds") else frame
        if not changes.get("no_window"):
            http = http[(http["t_send"] > now - window_seconds) & (http["t_send"] <= now)]
        canary = http[http["version"] == "v2"] if changes.get("by_version") else http[http["upstream"] == canary_upstream]
        baseline = http[(http["upstream"] != canary_upstream) & (http["upstream"] != "")]
        if not changes.get("no_min_sample") and len(canary) < min_sample:
            return "inconclusive"
        rate = (~canary["ok"]).mean() if len(canary) else 0.0
        if (rate >= max_error_rate) if changes.get("inclusive") else (rate > max_error_rate):
            return "fail"
        p95 = canary["latency_ms"].quantile(0.95)
        limit = max_p95_ratio * baseline["latency_ms"].quantile(0.95)
        if len(baseline) and ((p95 >= limit) if changes.get("inclusive") else (p95 > limit)):
            return "fail"
        return "pass"
    return fn


HIDDEN_CASES = [  # the notebook's hidden windows
    ("exactly the minimum sample", {"canary": (100, 0, 11.0)}, {}, "pass"),
    ("one below the minimum sample, even with errors", {"canary": (99, 10, 11.0)}, {}, "inconclusive"),
    ("error rate exactly at the threshold", {"canary": (100, 2, 11.0)}, {}, "pass"),
    ("error rate just above the threshold", {"canary": (100, 3, 11.0)}, {}, "fail"),
    ("p95 exactly at the ratio", {"canary": (150, 0, 15.0)}, {}, "pass"),
    ("p95 just above the ratio", {"canary": (150, 0, 15.5)}, {}, "fail"),
    ("failures only their upstream reveals", {"canary": (150, 5, 11.0)}, {}, "fail"),
    ("failures named by version too", {"canary": (150, 5, 11.0), "hidden_failures": False}, {}, "fail"),
    ("bad requests outside the window do not count", {"canary": (120, 0, 11.0), "outside": 40}, {}, "pass"),
    ("no baseline traffic", {"baseline": (0, 0, 10.0), "canary": (120, 0, 30.0)}, {}, "pass"),
    ("a stricter rule", {"canary": (400, 2, 11.0), "window": 5.0}, {"min_sample": 300, "max_error_rate": 0.001}, "fail"),
    ("a looser latency rule", {"canary": (120, 0, 29.0)}, {"max_p95_ratio": 3.0}, "pass"),
]


def test_the_right_analysis_passes_practice_and_hidden_windows() -> None:
    assert check.canary_analysis.report(good_analysis).passed
    report = check.canary_analysis.report(good_analysis, HIDDEN_CASES)
    assert report.passed, str(report)
    assert len(report.criteria) == len(HIDDEN_CASES)


@pytest.mark.parametrize("case", recorded.PRACTICE_CASES + HIDDEN_CASES, ids=lambda c: c[0])
def test_hand_written_verdicts_agree_with_careops_own_analysis(case) -> None:
    what, window_args, rule_changes, expected = case
    rule = {**recorded.RULE, **rule_changes}
    window = window_args.get("window", 10.0)
    verdict = analyze(recorded.make_window(**window_args), canary="v2", baseline="v1", now=recorded.NOW,
                      analysis=Analysis(window, rule["min_sample"], rule["max_error_rate"], rule["max_p95_ratio"]),
                      canary_upstreams={recorded.CANARY_UPSTREAM})
    assert {True: "pass", False: "fail", None: "inconclusive"}[verdict.passed] == expected, (what, verdict.reason)


@pytest.mark.parametrize("mistake", ["by_version", "no_min_sample", "inclusive", "no_window", "all_kinds"])
def test_each_plausible_mistake_fails_the_hidden_windows(mistake: str) -> None:
    assert check.canary_analysis.report(_variant()).passed  # the variant machinery itself is right
    report = check.canary_analysis.report(_variant(**{mistake: True}), HIDDEN_CASES)
    assert not report.passed and report.failures, mistake
    assert all(f.hint for f in report.failures)


def test_wrong_return_values_and_errors_are_reported_with_hints() -> None:
    report = check.canary_analysis.report(lambda frame, **kw: True)
    assert not report.passed and "exactly one of the strings" in report.failures[0].hint

    def broken(frame, **kw):
        raise KeyError("latency")
    report = check.canary_analysis.report(broken)
    assert all(f.got == "KeyError: 'latency'" for f in report.failures) and len(report.failures) == 4

    def stub(frame, **kw):
        raise NotImplementedError()
    report = check.canary_analysis.report(stub)  # the stub reads "not written yet", once
    assert report.not_written and str(report).count(NOT_WRITTEN) == 1
    assert check.deployment_row.report(stub).not_written and check.change_record.report(stub).not_written


def test_make_window_hides_failures_from_version() -> None:
    frame = recorded.make_window(canary=(10, 3, 11.0))
    failed = frame[(frame["kind"] == "http") & ~frame["ok"] & (frame["upstream"] == recorded.CANARY_UPSTREAM)]
    assert len(failed) == 3 and set(failed["version"]) == {""}
    assert set(frame.columns) >= {"kind", "t_send", "ok", "latency_ms", "version", "upstream"}


# -- exercise 6: the change record -------------------------------------------------------------

def good_record(audit: pd.DataFrame) -> pd.DataFrame:
    deploys = audit[audit["action"].str.startswith("deploy.")].sort_values("seq")
    rows = [{"change_id": e["details"]["change_id"], "deployed_by": e["actor"], "approved_by": e["details"]["approved_by"],
             "strategy": e["action"].split(".", 1)[1], "image": e["details"]["image"],
             "started": e["details"]["started"], "ended": e["details"]["ended"], "outcome": e["outcome"],
             "rolled_back": e["details"]["rollback"]} for _, e in deploys.iterrows()]
    return pd.DataFrame(rows, columns=check.CHANGE_RECORD_COLUMNS)


def test_the_right_change_record_passes_every_log() -> None:
    report = check.change_record.report(good_record, cases=REFERENCE.change_record_cases((3, 4, 5)))
    assert report.passed and len(report.criteria) == 3 * 5, str(report)
    assert check.change_record.report(good_record).passed  # the practice log and its answer


def test_the_practice_answer_shipped_with_the_toolkit_is_the_references_answer() -> None:
    """The practice log's answer is data computed ahead; the toolkit has no way to compute another log's."""
    assert recorded.PRACTICE_CHANGE_RECORD == REFERENCE.change_record(0)
    assert not hasattr(recorded, "expected_change_record") and not hasattr(recorded, "ROW_ANSWERS")
    assert set(recorded.PRACTICE_ROWS) <= set(REFERENCE.GRADED_ROWS) | set(recorded.PRACTICE_ROW_ANSWERS)


@pytest.mark.parametrize("wrong, words", [
    (lambda a: good_record(a).iloc[::-1], "oldest first"),
    (lambda a: good_record(a).drop(columns=["rolled_back"]), "exactly the asked columns"),
    (lambda a: good_record(a).assign(strategy=lambda f: "deploy." + f["strategy"]), "every field as recorded"),
    (lambda a: good_record(a[a["outcome"] == "promoted"]), "one row per deployment"),
    (lambda a: good_record(a).to_dict("records"), "returns a DataFrame"),
    (lambda a: a["nope"], "KeyError: 'nope'"),
])
def test_wrong_change_records_fail_with_the_right_message(wrong, words: str) -> None:
    report = check.change_record.report(wrong)
    assert not report.passed
    assert any(words in f.message for f in report.failures), str(report)


def test_sample_change_log_has_the_audit_log_shape() -> None:
    from careops.audit import REQUIRED_FIELDS

    frame = recorded.sample_change_log()
    assert list(frame.columns) == list(REQUIRED_FIELDS) and str(frame["at"].dt.tz) == "UTC"
    deployments = frame[frame["action"].str.startswith("deploy.")]
    assert frame["seq"].is_monotonic_decreasing and list(deployments["outcome"]).count("promoted") == 2


# -- the router config and the deployment checks on constructed records ------------------------------

def test_router_config_check_both_ways() -> None:
    assert check.router_config.report(ROUTER).passed
    wrong = check.router_config.report(ROUTER.replace("adt-blue, port: 2575", "adt-green, port: 2575"))
    assert [f.message for f in wrong.failures] == ["all MLLP traffic goes to adt-blue:2575"]
    broken = check.router_config.report("http: [\n")
    assert not broken.passed and "not valid YAML" in broken.failures[0].message


CHECKS = ["router_config", "blue_green", "canary_analysis", "rollback", "rolling_update", "deployment_row",
          "change_record"]


def test_every_check_returns_its_report_when_passed_and_raises_check_failed_otherwise() -> None:
    assert all(getattr(getattr(check, name), "is_learner_check", False) for name in CHECKS)
    assert check.router_config(ROUTER).passed
    with pytest.raises(CheckFailed, match="the router config is valid") as info:
        check.router_config("http: [\n")
    assert not info.value.report.passed
    assert check.change_record(good_record).passed
    with pytest.raises(CheckFailed, match="oldest first"):
        check.change_record(lambda a: good_record(a).iloc[::-1])


def test_the_notebooks_live_checks_are_registered_beside_the_checks() -> None:
    import nbformat

    from careops.paths import repo_root

    nb = nbformat.read(repo_root() / "notebooks/03-safe-deployments/safe-deployments.ipynb", 4)
    used = {c.metadata["careops"]["live_check"] for c in nb.cells if c.metadata.get("careops", {}).get("live_check")}
    known = live_checks()
    assert used == {"safe_deployments.blue_green", "safe_deployments.rollback", "safe_deployments.rolling_update"}
    assert [known[name] for name in sorted(used)] == [check.setup_blue_green, check.setup_rollback,
                                                      check.setup_rolling_update]
    assert not hasattr(check, "solution_artifact"), "the solutions stay out of the learner's check namespace"


def _record(*, seconds: float = 10, rate: float = 110, switch: float = 5.0, failed_at: tuple[float, ...] = (),
            versions: tuple[str, str] = ("v1", "v2")) -> pd.DataFrame:
    rows, t0 = [], 1_800_000_000.0
    for i in range(int(seconds * rate)):
        t = t0 + i / rate
        bad = any(abs(t - t0 - f) < 0.5 / rate for f in failed_at)
        rows.append({"kind": "http", "seq": i, "id": "/health", "attempt": 1, "t_sched": t, "t_send": t,
                     "latency_ms": 5.0, "status": "502" if bad else "200", "ok": not bad,
                     "version": "" if bad else versions[t - t0 >= switch], "upstream": "192.0.2.4:8081", "error": ""})
    for i in range(int(seconds * 10)):
        t = t0 + i / 10
        rows.append({"kind": "mllp", "seq": i, "id": f"TR-X-{i}", "attempt": 1, "t_sched": t, "t_send": t,
                     "latency_ms": 4.0, "status": "AA", "ok": True, "version": versions[t - t0 >= switch],
                     "upstream": "", "error": ""})
    frame = pd.DataFrame(rows).sort_values("t_send", kind="stable").reset_index(drop=True)
    frame["t"] = frame["t_send"] - t0
    return frame


def _run(frame: pd.DataFrame, *, stored: list[str] | None = None, strategy: str = "blueGreen",
         image: str = drills.V2, outcome: str = "promoted", spec: str = BLUE_GREEN,
         events: tuple[tuple[str, float], ...] = (("start", 0.0), ("switch", 5.0), ("end", 8.0)),
         router: RouterConfig | None = None, answers: dict[str, int] | None = None) -> drills.DeploymentRun:
    t0 = 1_800_000_000.0
    result = RolloutResult("legacy-adt", strategy, image, "adt-blue", "adt-green", outcome=outcome,
                           events=[(e, t0 + t) for e, t in events], rolled_back=outcome == "rolled-back")
    ids = list(frame[frame["kind"] == "mllp"]["id"]) if stored is None else stored
    return drills.DeploymentRun("test", result, TrafficResult(frame, TrafficPlan(duration=10), t0),
                               reconcile(frame, ids), parse_rollout(spec), router or RouterConfig.single("adt-green"),
                               answers or {"v2": 10})


def test_blue_green_check_passes_a_clean_cutover_and_fails_each_flaw() -> None:
    good = check.blue_green.report(_run(_record()))
    assert good.passed, str(good)
    flaws = {
        "zero failed HTTP requests across the cutover": _run(_record(failed_at=(5.0, 5.1))),
        "no MLLP message lost": _run(_record(), stored=[f"TR-X-{i}" for i in range(1, 100)]),
        "no MLLP message stored twice": _run(_record(), stored=[f"TR-X-{i}" for i in range(100)] + ["TR-X-7"]),
        f"the deployment ran under at least {check.MIN_HTTP_RATE:g} requests/s": _run(_record(rate=60)),
        "the switch happened while traffic flowed": _run(_record(), events=(("start", 0.0), ("switch", 9.5),
                                                                              ("end", 12.0))),
        "after the switch only v2 answers": _run(_record(versions=("v1", "v1"))),
        "the new release was promoted (healthy, then switched)": _run(_record(), outcome="aborted"),
    }
    for message, run in flaws.items():
        report = check.blue_green.report(run)
        assert message in [f.message for f in report.failures], (message, str(report))
        assert all(f.hint for f in report.failures)
    wrong_kind = check.blue_green.report(_run(_record(), strategy="stop-and-replace"))
    assert len(wrong_kind.criteria) == 1 and not wrong_kind.passed


def test_rollback_check_passes_a_timely_rollback_and_fails_each_flaw() -> None:
    events = (("start", 0.0), ("setWeight 25", 2.0), ("analysis", 6.0), ("rollback", 6.5), ("end", 7.0))
    frame = _record(failed_at=(3.0, 3.5, 4.0), versions=("v1", "v1"))
    kw = {"strategy": "canary", "image": drills.V2_FAULTY, "outcome": "rolled-back", "spec": FAULTY, "events": events,
          "router": RouterConfig.single("adt-blue"), "answers": {"v1": 10}}
    good = check.rollback.report(_run(frame, **kw))
    assert good.passed, str(good)
    slow = dict(kw, events=(("start", 0.0), ("setWeight 25", 2.0), ("rollback", 30.0), ("end", 31.0)))
    flaws = {
        "the faulty release was rolled back automatically": dict(kw, outcome="aborted"),
        f"all traffic was back on v1 within {check.ROLLBACK_SECONDS:g} s of the canary's first traffic": slow,
        "afterwards the router sends everything to v1 again": dict(
            kw, router=RouterConfig.weighted({"adt-blue": 75, "adt-green": 25}), answers={"v1": 7, "v2-faulty": 3}),
        f"the rollback policy returns traffic to v1 after at most {check.MAX_POLICY_BUDGET} failed requests": dict(
            kw, spec=FAULTY.replace('careops.io/max-failed-requests: "40"', "careops.io/on-failure: abort")),
        "the canary has an analysis step (health checks alone do not see this fault)": dict(
            kw, spec=FAULTY[:FAULTY.index("        - analysis:")] + "        - setWeight: 100\n"),
    }
    for message, changes in flaws.items():
        report = check.rollback.report(_run(frame, **changes))
        assert message in [f.message for f in report.failures], (message, str(report))
    many = check.rollback.report(_run(_record(failed_at=tuple(i * 0.05 for i in range(150)), versions=("v1", "v1")),
                                     **kw))
    assert [f.message for f in many.failures] == [f"at most {check.FAILED_BUDGET} failed requests and messages in all"]
    assert not check.rollback.report(_run(frame, **dict(kw, spec=BLUE_GREEN))).passed


def test_a_starting_router_not_on_blue_is_refused_before_anything_starts() -> None:

    with pytest.raises(RolloutError, match="must send all HTTP traffic to adt-blue") as info:
        drills._starting_backend(RouterConfig.single("adt-green"))
    assert info.value.fix


# -- for real: the grader's live checks with the notebook's solution specs ----------------------------

@pytest.fixture
def lab() -> Iterator[Lab]:
    if existing_image(engine.client(), ROUTER_IMAGE) is None:
        ensure_images(["router"], progress=False)
    # the learner of this process (each xdist worker is one): this file's tests may run in two workers at once
    with Lab("safe-deploy-test") as lab:
        yield lab


@pytest.mark.docker
@pytest.mark.slow
def test_live_blue_green_setup_passes_the_solution(lab: Lab) -> None:
    run = check.setup_blue_green(lab, {"router_config": ROUTER, "blue_green_rollout": BLUE_GREEN})["bg_run"]
    report = check.blue_green.report(run)
    assert report.passed, str(report)
    assert run.reconcile.sent >= 100 and run.summary()["http_failed"] == 0


@pytest.mark.docker
@pytest.mark.slow
def test_live_rollback_setup_passes_the_solution_and_fails_a_policy_that_only_aborts(lab: Lab) -> None:
    run = check.setup_rollback(lab, {"router_config": ROUTER, "rollback_rollout": FAULTY})["faulty_run"]
    report = check.rollback.report(run)
    assert report.passed, str(report)
    assert 0 < run.failed() <= check.FAILED_BUDGET
    aborting = FAULTY.replace('careops.io/max-failed-requests: "40"', "careops.io/on-failure: abort")
    bad = check.setup_rollback(lab, {"router_config": ROUTER, "rollback_rollout": aborting})["faulty_run"]
    report = check.rollback.report(bad)
    assert bad.result.outcome == "aborted" and not report.passed
    assert "the faulty release was rolled back automatically" in [f.message for f in report.failures]
    assert "afterwards the router sends everything to v1 again" in [f.message for f in report.failures]


# -- exercise 5: rolling update and the comparison table --------------------------------------------


def good_row(frame, *, start, end, old, new):
    window = frame[(frame["t_send"] >= start) & (frame["t_send"] <= end)]
    http, mllp = window[window["kind"] == "http"], window[window["kind"] == "mllp"]
    answered = window[window["ok"]]
    olds, news = answered[answered["version"] == old]["t_send"], answered[answered["version"] == new]["t_send"]
    return {"seconds": end - start, "http_requests": len(http), "failed_requests": int((~http["ok"]).sum()),
            "failed_messages": int((~mllp["ok"]).sum()),
            "p95_ms": float(http["latency_ms"].quantile(0.95)) if len(http) else 0.0,
            "side_by_side_seconds": max(0.0, float(olds.max() - news.min())) if len(olds) and len(news) else 0.0}


def _row_variant(**changes: Callable[..., object]) -> Callable[..., dict]:
    def fn(frame, **kw):
        row = good_row(frame, **kw)
        row.update({k: f(frame, row, **kw) for k, f in changes.items()})
        return row
    return fn


ROW_MISTAKES = {
    "edges excluded": _row_variant(http_requests=lambda f, r, start, end, **_: int(
        ((f["kind"] == "http") & (f["t_send"] > start) & (f["t_send"] < end)).sum())),
    "whole record, not the window": _row_variant(failed_requests=lambda f, r, **_: int(
        (~f[f["kind"] == "http"]["ok"]).sum())),
    "final MLLP answer only": _row_variant(failed_messages=lambda f, r, **_: 0),
    "negative overlap kept": _row_variant(side_by_side_seconds=lambda f, r, start, end, old, new: float(
        f[(f["version"] == old) & f["ok"]]["t_send"].max() - f[(f["version"] == new) & f["ok"]]["t_send"].min())),
    "NaN p95 for no requests": _row_variant(p95_ms=lambda f, r, start, end, **_: float(
        f[(f["kind"] == "http") & (f["t_send"] >= start) & (f["t_send"] <= end)]["latency_ms"].quantile(0.95))),
}


def test_the_right_row_passes_practice_and_hidden_deployments() -> None:
    assert check.deployment_row.report(good_row).passed
    report = check.deployment_row.report(good_row, REFERENCE.GRADED_ROWS)
    assert report.passed and len(report.criteria) == len(REFERENCE.GRADED_ROWS), str(report)


@pytest.mark.parametrize("mistake", sorted(ROW_MISTAKES))
def test_each_plausible_row_mistake_fails_the_hidden_deployments(mistake: str) -> None:
    report = check.deployment_row.report(ROW_MISTAKES[mistake], REFERENCE.GRADED_ROWS)
    assert not report.passed, mistake
    assert all(f.hint for f in report.failures)


def test_a_row_with_wrong_keys_or_an_error_is_reported() -> None:
    keys = check.deployment_row.report(lambda f, **kw: {"seconds": 1})
    assert "exactly the keys" in keys.failures[0].message
    boom = check.deployment_row.report(lambda f, **kw: 1 / 0)
    assert "ZeroDivisionError" in boom.failures[0].hint


def test_the_comparison_table_uses_the_learners_function_on_every_run() -> None:
    bg = _run(_record())
    table = drills.comparison_table(good_row, bg, None)
    assert list(table.index) == ["test"] and list(table.columns) == check.DEPLOYMENT_ROW_KEYS
    assert table.loc["test", "seconds"] == 8.0 and table.loc["test", "failed_requests"] == 0


def _rolling_run(frame: pd.DataFrame, *, spec: str = ROLLING, most: int = 4, fewest: int = 3,
                 outcome: str = "promoted", answers: dict[str, int] | None = None) -> drills.DeploymentRun:
    run = _run(frame, strategy="rollingUpdate", spec=spec, outcome=outcome, answers=answers,
               router=RouterConfig.weighted({"adt-4": 100, "adt-5": 100, "adt-6": 100}))
    run.result.most_running, run.result.fewest_serving = most, fewest
    return run


def test_rolling_update_check_passes_a_clean_update_and_fails_each_flaw() -> None:
    good = check.rolling_update.report(_rolling_run(_record()))
    assert good.passed, str(good)
    flaws = {
        "all 3 copies served throughout (the ward's capacity never dropped)": dict(fewest=2),
        "at most one extra copy ran at a time (the host has room for 4)": dict(most=6),
        "no HTTP request failed during the update": dict(frame=_record(failed_at=(5.0,))),
        "every copy was replaced (each healthy before it got traffic)": dict(outcome="rolled-back"),
        "afterwards only v2 answers": dict(answers={"v1": 3, "v2": 7}),
        "3 copies (spec.replicas)": dict(spec=ROLLING.replace("replicas: 3", "replicas: 2")
                                         .replace("maxSurge: 1", "maxSurge: 1")),
    }
    for message, changes in flaws.items():
        frame = changes.pop("frame", _record())
        report = check.rolling_update.report(_rolling_run(frame, **changes))
        assert message in [f.message for f in report.failures], (message, str(report))
    assert not check.rolling_update.report(_run(_record())).passed  # a blue/green is not a rolling update


@pytest.mark.docker
@pytest.mark.slow
def test_live_rolling_update_setup_passes_the_solution_and_fails_one_that_drops_capacity(lab: Lab) -> None:
    run = check.setup_rolling_update(lab, {"rolling_rollout": ROLLING})["rolling_run"]
    report = check.rolling_update.report(run)
    assert report.passed, str(report)
    assert run.stack is not None and run.stack.ok
    row = good_row(run.traffic.frame, start=run.result.events[0][1], end=run.result.events[-1][1], old="v1",
                   new="v2")
    assert row["failed_requests"] == 0 and row["side_by_side_seconds"] > 1  # three rounds of old and new mixed
    risky = ROLLING.replace("maxSurge: 1", "maxSurge: 0").replace("maxUnavailable: 0", "maxUnavailable: 1")
    bad = check.setup_rolling_update(lab, {"rolling_rollout": risky})["rolling_run"]
    report = check.rolling_update.report(bad)
    assert bad.result.outcome == "promoted" and bad.result.fewest_serving == 2 and bad.result.most_running == 3
    assert [f.message for f in report.failures] == [
        "all 3 copies served throughout (the ward's capacity never dropped)"], str(report)
