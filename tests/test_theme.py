"""One look for every careops result: careops.report.theme is the only place that writes a colour or a style.

* A source scan fails when any module outside ``report/theme.py`` writes a hex
  colour, a ``style=`` attribute or a CSS ``color:``, or hands matplotlib a colour
  literal: the one-theme rule cannot drift back to hand-written renderers.
* Every class in careops with a ``_repr_html_`` is rendered here from a real
  object (the three that wrap a container from a real lab) and must come out as
  the theme's card; those with rows use the theme's table, whose text is
  left-aligned and numbers right-aligned. A new result class fails the test
  until it is added to :data:`RESULTS`.
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from datetime import date
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import pytest

from careops.report import CheckReport, theme

SRC = Path(__file__).resolve().parents[1] / "src" / "careops"
THEME = SRC / "report" / "theme.py"
REPO = SRC.parents[1]

HEX_COLOUR = re.compile(r"(?<![&\w])#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b")
STYLE = re.compile(r"\bstyle\s*=|(?<![\w-])colou?r\s*:", re.I)
COLOUR_KEYWORDS = {"color", "colour", "edgecolor", "facecolor"}


def style_problems(path: Path, root: Path = SRC.parent) -> list[str]:
    """Hex colours, style attributes and CSS colours in string literals; colour literals passed to a plot."""
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(root)
    problems = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            for what, pattern in (("a hex colour", HEX_COLOUR), ("a style", STYLE)):
                found = pattern.search(tok.string)
                if found:
                    problems.append(f"{where}:{tok.start[0]}: {what} ({found.group(0)!r})")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.keyword) and node.arg in COLOUR_KEYWORDS:
            value = node.value
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                problems.append(f"{where}:{node.lineno}: a colour literal "
                                f"({node.arg}={value.value!r})")
    return sorted(set(problems))


def test_only_the_theme_writes_colours_and_styles() -> None:
    problems = [p for path in sorted(SRC.rglob("*.py")) if path != THEME for p in style_problems(path)]
    assert not problems, ("colours and styles belong to careops.report.theme (use its card, table, state, "
                          "pre ... or FIGURE for plots; extend it where a piece is missing):\n  "
                          + "\n  ".join(problems))


def test_the_scan_finds_what_it_must(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("A = \"<b style='x'>\"\nB = '#c62828'\nC = f\"<td>{x}</td><span style='color:{c}'>\"\n"
                   "ax.plot(x, color='grey')\nD = '&#10004; #not-a-colour'\n", encoding="utf-8")
    problems = "\n".join(style_problems(bad, tmp_path))
    assert "a style" in problems and "a hex colour ('#c62828')" in problems
    assert "color='grey'" in problems and "#10004" not in problems
    assert "theme" not in problems and len(problems.splitlines()) == 4


# -- every result object renders with the theme --------------------------------------------

def _classes_with_repr_html() -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                    isinstance(f, ast.FunctionDef) and f.name == "_repr_html_" for f in node.body):
                found.add(f"{module}.{node.name}")
    return found


ROLLOUT = (REPO / "grading" / "references" / "safe-deployments" / "canary.yaml")
WORKFLOW = REPO / "grading" / "references" / "ci-pipeline" / "ci.yml"


def _traffic_frame() -> pd.DataFrame:
    from careops.traffic.run import read_frame

    lines = [
        '{"kind": "http", "id": "h1", "t_sched": 100.0, "t_send": 100.0, "latency_ms": 3.0, "ok": true, '
        '"status": "200", "version": "v1", "attempt": 1, "upstream": "a:1", "error": null}',
        '{"kind": "mllp", "id": "m1", "t_sched": 100.2, "t_send": 100.2, "latency_ms": 5.0, "ok": true, '
        '"status": "AA", "version": "v1", "attempt": 1, "upstream": "", "error": null}',
    ]
    return read_frame("\n".join(lines) + "\n")


def _audit(tmp: Path) -> Any:
    from careops.audit import AuditLog

    log = AuditLog(tmp / "audit.jsonl", key=b"k" * 32)
    log.append(actor="dana", role="approver", action="pipeline.approval", resource="pipeline/1",
               outcome="approved", purpose="deploy to staging", source="test")
    return log


def _deployment() -> Any:
    from careops.rollout.drills import DeploymentRun
    from careops.rollout.health import ContainerState, StackStatus
    from careops.rollout.spec import parse_rollout
    from careops.rollout.stack import RolloutResult
    from careops.traffic.reconcile import reconcile
    from careops.traffic.run import TrafficPlan, TrafficResult

    frame = _traffic_frame()
    result = RolloutResult("legacy-adt", "canary", "careops/legacy-adt:v2", "adt-blue", "adt-green", "promoted",
                           events=[("start", 100.0), ("switch", 101.5)])
    return DeploymentRun("canary", result, TrafficResult(frame, TrafficPlan(duration=2), 100.0),
                         reconcile(frame, ["m1"]), parse_rollout(ROLLOUT.read_text()),
                         stack=StackStatus("safe", [ContainerState("router", "router", "running")]))


def _pipeline_run(tmp: Path) -> Any:
    from careops.audit import AuditLog
    from careops.pipeline.runner import PipelineRun
    from careops.pipeline.workflow import load_workflow

    run = PipelineRun(load_workflow(WORKFLOW), tmp, lab=None, audit=AuditLog(tmp / "a.jsonl", key=b"k" * 32),
                      on_log=None, progress=False, image="careops/ci-runner:latest", actor="dana",
                      approval_timeout=60, junit=None)
    first = next(iter(run.jobs.values()))
    first.status, first.seconds = "success", 12.5
    return run


def _grade_summary(tmp: Path) -> Any:
    from careops.grading.autograder import GradeRow, GradeSummary

    rows = [GradeRow("ana", "graded", 4, 4, {"test_a": 4}, ""), GradeRow("<bo>", "rejected", 0, 4, {}, "empty")]
    return GradeSummary("00-orientation", rows, ["test_a"], {"test_a": 4}, tmp / "grades.csv", None, ["ana"], [], 1.0)


def _lab_objects(lab: Any) -> dict[str, Callable[[], Any]]:
    from careops.router import Router, RouterConfig

    from careops.monitoring.prometheus import Prometheus
    from careops.monitoring.stack import MonitoringStack

    probe = lab.container("probe")
    return {"careops.lab.sandbox.Lab": lambda: lab,
            "careops.lab.container.LabContainer": lambda: lab.container("probe"),
            "careops.monitoring.prometheus.Prometheus": lambda: Prometheus(lab, probe),
            "careops.monitoring.stack.MonitoringStack": lambda: MonitoringStack(lab, probe, probe,
                                                                               Prometheus(lab, probe)),
            "careops.router.live.Router": lambda: Router(lab, lab.container("probe"), RouterConfig.single("adt-blue"),
                                                         3)}


def _results(tmp: Path) -> dict[str, Callable[[], Any]]:
    """One real object per result class, built cheaply (no engine)."""
    from careops.audit import VerifyReport
    from careops.containerize.build import LearnerBuild
    from careops.containerize.grade import Submission
    from careops.containerize.layers import LayerScan
    from careops.dockerfile.hadolint import HadolintFinding, HadolintResult
    from careops.dockerfile.parse import parse
    from careops.dockerfile.policy import PolicyFinding, PolicyResult
    from careops.hl7.messages import Ack
    from careops.lab.container import ExecResult
    from careops.lab.resources import RemovalReport, Resource
    from careops.mutation import Mutant, MutationReport, TestRun
    from careops.phi import ScanReport, anonymity_report, scan_text
    from careops.pipeline.approval import Approval
    from careops.pipeline.policy import check_policy
    from careops.pipeline.workflow import load_workflow
    from careops.preflight import PreflightReport, PreflightRow
    from careops.rollout.analysis import Verdict
    from careops.rollout.health import ContainerState, StackStatus
    from careops.rollout.spec import parse_rollout
    from careops.rollout.stack import RolloutResult
    from careops.router import RouterConfig
    from careops.solve import Solution, SolveCard
    from careops.router.live import ReloadResult
    from careops.synth import generate
    from careops.traffic.reconcile import reconcile
    from careops.traffic.run import TrafficPlan, TrafficResult
    from careops.monitoring.runbook import parse_runbook
    from careops.workspace import AssignmentSync, SyncReport

    report = CheckReport("Exercise 1")
    report.check(True, "it runs")
    report.check(False, "it is sorted", expected=["a", "b"], got=["b", "a"], hint="sorted(...)")
    frame = _traffic_frame()
    mutant = Mutant("off-by-one", "field() reads the next component", "a", "b")
    extract = pd.DataFrame({"AGE_BAND": ["18-44"] * 3 + ["90+"], "SEX": ["F"] * 4, "DIAGNOSIS": list("abcd")})
    return {
        "careops.report.check.CheckReport": lambda: report,
        "careops.audit.VerifyReport": lambda: VerifyReport(False, 3, ["line 2: hash does not match"]),
        "careops.audit.AuditLog": lambda: _audit(tmp),
        "careops.containerize.build.LearnerBuild": lambda: LearnerBuild(ok=False, reason="RUN exited 1",
                                                                         hint="check the RUN line",
                                                                         log=["Step 1/2 : FROM x", "oops"]),
        "careops.containerize.grade.Submission": lambda: Submission({"static": report}),
        "careops.containerize.layers.LayerScan": lambda: LayerScan(secrets=["layer:app/.env: AWS key"], files=3,
                                                                    layers=2),
        "careops.dockerfile.hadolint.HadolintResult": lambda: HadolintResult(
            [HadolintFinding("DL3007", "warning", 1, "Using latest is prone to errors")], "2.12.0"),
        "careops.dockerfile.parse.Dockerfile": lambda: parse("FROM careops/base:bookworm\nUSER 10001\n"),
        "careops.dockerfile.policy.PolicyResult": lambda: PolicyResult(
            [PolicyFinding("root-user", 2, "runs as root", "add USER 10001")], "package x"),
        "careops.grading.autograder.GradeSummary": lambda: _grade_summary(tmp),
        "careops.hl7.messages.Ack": lambda: Ack("AE", "CTL-1", "no PID", "MSH|..."),
        "careops.lab.container.ExecResult": lambda: ExecResult(["id", "-u"], 0, "1000\n", 0.05),
        "careops.lab.resources.RemovalReport": lambda: RemovalReport(
            [Resource("container", "careops-x-lab-a", "lab", "x", "s1", "exited", False)]),
        "careops.mutation.MutationReport": lambda: MutationReport(TestRun("original", 0, "3 passed in 0.1s"),
                                                                  [(mutant, TestRun(mutant.id, 1, "1 failed"))]),
        "careops.phi.anonymity.AnonymityReport": lambda: anonymity_report(extract, ["AGE_BAND", "SEX"], k=2),
        "careops.phi.scanner.ScanReport": lambda: ScanReport(scan_text("call 212-555-0100 or 999-12-3456"), scanned=1),
        "careops.pipeline.approval.Approval": lambda: Approval("deploy-staging", "staging", "dana", "approved",
                                                               "2026-01-01T10:00:00Z", "CAB 113"),
        "careops.pipeline.policy.PolicyReport": lambda: check_policy(WORKFLOW),
        "careops.pipeline.runner.PipelineRun": lambda: _pipeline_run(tmp),
        "careops.pipeline.workflow.Workflow": lambda: load_workflow(WORKFLOW),
        "careops.preflight.PreflightReport": lambda: PreflightReport("docker 27", 2.5, [
            PreflightRow("runs as non-root", "uid != 0", "uid 1000", True)]),
        "careops.rollout.analysis.Verdict": lambda: Verdict(None, "only 3 canary requests", 3, 50, 0, 0, 1, 1),
        "careops.rollout.drills.DeploymentRun": _deployment,
        "careops.rollout.health.StackStatus": lambda: StackStatus("safe", [
            ContainerState("adt-blue", "release", "exited", 137, True, "v1")]),
        "careops.rollout.spec.RolloutSpec": lambda: parse_rollout(ROLLOUT.read_text()),
        "careops.rollout.stack.RolloutResult": lambda: RolloutResult(
            "legacy-adt", "blue-green", "careops/legacy-adt:v2", "adt-blue", "adt-green", "promoted",
            events=[("start", 100.0), ("switch", 101.25)]),
        "careops.router.config.RouterConfig": lambda: RouterConfig.single("adt-blue"),
        "careops.solve.notebook.SolveCard": lambda: SolveCard("cohort", "solved", "This cell now holds the solution.",
                                                              solution=Solution("04-synthetic-data-testing", "cohort",
                                                                                "cohort = generate(patients=4)",
                                                                                "Exercise 1a", 2.0, ("test_cohort",),
                                                                                ()), notes=["recorded"]),
        "careops.router.live.ReloadResult": lambda: ReloadResult(2, 0.12, RouterConfig.single("adt-blue")),
        "careops.synth.model.Cohort": lambda: generate(patients=20, seed=1, as_of=date(2026, 1, 1)),
        "careops.traffic.reconcile.ReconcileReport": lambda: reconcile(frame, ["m1", "m1"]),
        "careops.traffic.run.TrafficResult": lambda: TrafficResult(frame, TrafficPlan(duration=2), 100.0),
        "careops.workspace.SyncReport": lambda: SyncReport(tmp / "release", tmp / "workspace", [
            AssignmentSync("00-orientation", added=["orientation.ipynb"], kept=["notes.md"])]),
        "careops.workshop.status.WorkshopStatus": _workshop_status,
        "careops.monitoring.drill.DrillRun": _drill,
        "careops.monitoring.own_metric.OwnMetricRun": _own_metric,
        "careops.monitoring.runbook.Runbook": lambda: parse_runbook(
            (REPO / "labs" / "monitoring" / "solution" / "runbook.yml").read_text()),
    }


def _drill() -> Any:
    from careops.monitoring.drill import ActionTaken, DrillRun
    from careops.monitoring.incidents import INCIDENTS
    from careops.traffic.reconcile import reconcile
    from careops.traffic.run import TrafficPlan, TrafficResult

    frame = _traffic_frame()
    alerts = pd.DataFrame([{"t": 100.5, "alert": "ADTDatabaseWriteErrors", "state": "firing"}])
    return DrillRun(INCIDENTS["disk-full"], 100.0, 100.1, 100.5, "ADTDatabaseWriteErrors",
                    [ActionTaken(100.6, "ADTDatabaseWriteErrors", "free-disk", 0.1)], 100.8, [], alerts,
                    TrafficResult(frame, TrafficPlan(duration=2), 100.0), reconcile(frame, ["m1"]))


def _own_metric() -> Any:
    from careops.monitoring.own_metric import OwnMetricRun, parse_metric_definition

    definition = parse_metric_definition((REPO / "labs" / "monitoring" / "solution" / "own-metric.yml").read_text())
    return OwnMetricRun(definition, expected={(("sending_system", "ED"), ("ward", "ICU")): 2},
                        scraped=pd.DataFrame([{"ward": "ICU", "sending_system": "ED", "value": 2.0}]))


def _workshop_status() -> Any:
    from careops.workshop.hub import HubState
    from careops.workshop.status import MemberStatus, WorkshopStatus

    return WorkshopStatus("ward-7", "http://127.0.0.1:8000/", HubState("careops-hub-ward-7", "running", "http://127.0.0.1:8000/"), [
        MemberStatus("ana", "learner", server="ready", container="careops-ward-7-ana", last_activity="2026-01-01T09:00Z",
                     has_workspace=True)])


#: Result classes whose rows are a table (the others are lines or a list).
TABLES = {"AuditLog", "HadolintResult", "Dockerfile", "PolicyResult", "GradeSummary", "LabContainer", "Lab",
          "MutationReport", "AnonymityReport", "ScanReport", "PipelineRun", "Workflow", "PreflightReport",
          "DeploymentRun", "StackStatus", "RolloutSpec", "RolloutResult", "RouterConfig", "ReloadResult",
          "Router", "Cohort", "TrafficResult", "SyncReport", "WorkshopStatus", "DrillRun", "OwnMetricRun", "Runbook",
          "MonitoringStack", "Prometheus"}


@pytest.fixture(scope="module")
def probe_lab() -> Any:
    """A real lab with one container, for the result objects that wrap one."""
    from careops.lab import Lab

    with Lab("theme-test") as lab:
        lab.run("careops/lab-runtime:latest", name="probe", command=["sleep", "60"], memory="32m", pids=16)
        yield lab


def _cells(page: str) -> list[tuple[str, str]]:
    """(text-align, text) of every td of the theme's tables."""
    return [(align, re.sub(r"<[^>]+>", "", text))
            for align, text in re.findall(r"<td style='[^']*text-align:(\w+)'>(.*?)</td>", page)]


def test_every_result_object_renders_with_the_theme(tmp_path: Path, probe_lab: Any) -> None:
    builders = {**_results(tmp_path), **_lab_objects(probe_lab)}
    missing = sorted(_classes_with_repr_html() - set(builders))
    assert not missing, f"result classes without a rendering test here: {missing} (add them to _results)"
    problems = []
    for name, build in sorted(builders.items()):
        obj = build()
        assert f"{type(obj).__module__}.{type(obj).__qualname__}" == name, f"{name} built a {type(obj)}"
        page = obj._repr_html_()
        short = name.rsplit(".", 1)[1]
        if not page.startswith("<div class='careops-result'"):
            problems.append(f"{short}: not the theme's card: {page[:120]!r}")
        if short in TABLES and "<table class='careops-table'" not in page:
            problems.append(f"{short}: rows not in the theme's table")
        if "<table>" in page or "<td>" in page:
            problems.append(f"{short}: a table of its own")
        for align, text in _cells(page):
            number = re.fullmatch(r"[+-]?\d[\d.,]*( ?(%|s|ms|MiB|KiB|GiB|B)|)", text.strip()) is not None
            if number and align != "right" or text.strip() and not number and align != "left" \
                    and not re.fullmatch(r"[+-]?\d.*", text.strip()):
                problems.append(f"{short}: cell {text!r} is aligned {align}")
    assert not problems, "\n".join(problems)


def test_the_pipeline_table_aligns_text_left_and_times_right(tmp_path: Path) -> None:
    page = _pipeline_run(tmp_path)._repr_html_()
    cells = _cells(page)
    assert ("right", "12.5 s") in cells and ("left", "success") in cells
    assert all(align == "left" for align, text in cells if text in ("pending", "lint", "test"))
    assert "text-align:right'>time</th>" in page and "text-align:left'>job / step</th>" in page


def test_table_cells_are_escaped_unless_they_are_markup() -> None:
    page = theme.table([["<b>x</b>", theme.code("y"), 3, 2.50, theme.num("64 MiB")]], header=["a", "b", "c", "d", "e"])
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<code>y</code>" in page
    assert [a for a, _ in _cells(page)] == ["left", "left", "right", "right", "right"]
    assert ">2.5</td>" in page and (theme.esc("<a>") + theme.esc("b")) == "&lt;a&gt;b"
    assert isinstance(theme.bold("a") + theme.code("b"), theme.Html)
    assert not isinstance(theme.bold("a") + "<i>", theme.Html)
