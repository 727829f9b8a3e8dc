"""What a learner sees in each module, from a real kernel (nbclient): seconds per module.

For every module the learner version (nbgrader's stubs, as released) runs in a
kernel: its setup, one exercise with the stub (a wrong answer), its check, the
solution (the right answer), the check again, and the module's plot cells. Then:

* a check cell shows its report exactly once, and a failed check adds one line
  (no ``Traceback``, no path into ``careops/checks``, no check source);
* every plot cell shows an image (``image/png``), never ``<Figure size ...>``;
* no cell writes to stderr (progress is one updating line, not red boxes).

Module 3's plot cells need five deployments under live traffic (minutes): here
they plot recorded traffic through the same DeploymentRun; tests/test_browser.py
runs a real one. The source notebooks' plot cells end without ``;``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.docker  # the setup cells of some modules open a lab

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "notebooks"

#: Module 3's deployments, recorded (the plot cells run on these instead of minutes of live traffic).
RECORDED_RUNS = '''
from careops.checks.safe_deployments import recorded as _recorded
from careops.rollout.drills import DeploymentRun as _Run
from careops.rollout.stack import RolloutResult as _Result
from careops.traffic import reconcile as _reconcile
from careops.traffic.run import TrafficPlan as _Plan, TrafficResult as _Traffic


def _recorded_run(label, case, outcome):
    frame, _args = _recorded.make_deployment_record(case)
    t0 = float(frame["t_sched"].min())
    result = _Result("legacy-adt", label, "careops/legacy-adt:v2", "adt-blue", "adt-green", outcome,
                     events=[("start", t0), ("switch", t0 + 14.0), ("done", t0 + 20.0)])
    return _Run(f"{label} (recorded)", result, _Traffic(frame, _Plan(duration=20), t0), _reconcile(frame, []))


naive_run = _recorded_run("stop and replace", "stop-and-replace", "replaced")
bg_run = _recorded_run("blue-green", "blue/green", "promoted")
canary_run = _recorded_run("canary", "slow tail", "promoted")
faulty_run = _recorded_run("canary", "rolled back", "rolled-back")
rolling_run = _recorded_run("rolling", "blue/green", "promoted")
'''


@dataclass
class Module:
    notebook: str
    #: cells run first: as the learner has them, then answered (the solution's) ones the exercise builds on
    setup: list[str]
    given: list[str] = field(default_factory=list)
    #: the exercise: its answer cell and its check cell
    answer: str = ""
    check: str = ""
    #: cells run after the right answer (e.g. to compute what a plot shows)
    after: list[str] = field(default_factory=list)
    #: code run before the plot cells, in place of expensive cells
    stand_in: str = ""
    plots: list[str] = field(default_factory=list)


MODULES = [
    Module("00-orientation/orientation.ipynb", ["setup"], [], "is_synthetic", "test_is_synthetic"),
    Module("01-ci-pipeline/ci-pipeline.ipynb", ["setup"], [], "to_synthetic", "test_to_synthetic",
           plots=["history"]),
    Module("02-containerize-legacy/containerize-legacy.ipynb", ["setup"], [], "faults", "test_faults"),
    Module("03-safe-deployments/safe-deployments.ipynb", ["setup"], [], "canary_analysis", "test_canary_analysis",
           stand_in=RECORDED_RUNS, plots=["naive", "bg-run", "canary-run", "faulty-run", "rolling-run"]),
    Module("04-synthetic-data-testing/synthetic-data-testing.ipynb", ["setup"], ["cohort"], "fidelity",
           "test_fidelity", after=["ex2b-run"], plots=["plots"]),
    Module("05-monitoring/monitoring.ipynb", ["setup"], ["error_budget"], "burn_rate", "test_burn_rate",
           plots=["burn-plot"]),
]


def _grade_id(cell: Any) -> str:
    return str(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))


def learner_version(source: Path) -> nbformat.NotebookNode:
    """The notebook as nbgrader releases it: solutions replaced by stubs, hidden tests removed."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = nbformat.read(source, as_version=4)
    nb, _ = ClearSolutions().preprocess(nb, {})
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    return nb


def _cells(nb: nbformat.NotebookNode) -> dict[str, Any]:
    return {_grade_id(c): c for c in nb.cells if c.cell_type == "code"}


def _without_deployments(source: str) -> str:
    """A module 3 plot cell without its deployment line (``x_run = run_...(...)``): the display and the plot."""
    return "\n".join(line for line in source.splitlines() if not re.match(r"^\w+_run = run_\w+\(", line))


def _text(output: Any) -> str:
    if output.output_type == "stream":
        return str(output.text)
    if output.output_type == "error":
        return "\n".join(output.traceback) + output.ename + output.evalue
    return json.dumps(dict(output.get("data", {})))


def view_problems(kind: str, label: str, outputs: list[Any]) -> list[str]:
    """What a learner should not see in one cell's outputs (``kind``: check, plot or other)."""
    problems = []
    text = "\n".join(_text(o) for o in outputs)
    if any(o.output_type == "stream" and o.name == "stderr" for o in outputs):
        problems.append(f"{label}: writes to stderr (shown as a red box): {text[:300]!r}")
    if kind == "check":
        if "Traceback" in text or "careops/checks" in text:
            problems.append(f"{label}: shows a traceback or the check's source: {text[:300]!r}")
        reports = [o for o in outputs if "careops-result" in o.get("data", {}).get("text/html", "")]
        errors = [o for o in outputs if o.output_type == "error"]
        if len(reports) != 1 or [o.output_type for o in outputs if o not in errors] != ["display_data"]:
            problems.append(f"{label}: expected the report once, as display_data, got "
                            f"{[o.output_type for o in outputs]}")
        if errors and (errors[0].ename != "CheckFailed" or len(errors[0].traceback) != 1):
            problems.append(f"{label}: a failed check must end with one line, got {errors[0].ename} with "
                            f"{len(errors[0].traceback)} traceback lines")
    if kind == "plot":
        if not any("image/png" in o.get("data", {}) for o in outputs):
            problems.append(f"{label}: the figure is not an image: {text[:200]!r}")
        if "<Figure size" in text:
            problems.append(f"{label}: shows matplotlib's text for a figure")
    return problems


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.notebook.split("/")[0])
def test_a_module_shows_each_report_once_every_plot_as_an_image_and_no_stderr(module: Module,
                                                                              tmp_path: Path) -> None:
    source = SOURCE / module.notebook
    learner, solution = _cells(learner_version(source)), _cells(nbformat.read(source, as_version=4))
    assert learner[module.answer].source != solution[module.answer].source, "the exercise has a stub to fill in"
    steps: list[tuple[str, str, str]] = [("other", g, learner[g].source) for g in module.setup]
    steps += [("other", f"{g} (answered)", solution[g].source) for g in module.given]
    steps += [("other", f"{module.answer} (stub)", learner[module.answer].source),
              ("check", f"{module.check} with the stub", learner[module.check].source),
              ("other", f"{module.answer} (answer)", solution[module.answer].source),
              ("check", f"{module.check} with the answer", learner[module.check].source)]
    steps += [("other", g, solution[g].source) for g in module.after]
    if module.stand_in:
        steps.append(("other", "recorded deployments", module.stand_in))
    steps += [("plot", g, _without_deployments(learner[g].source)) for g in module.plots]

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for _, _, src in steps],
                                  metadata=learner_version(source).metadata)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    problems = []
    for (kind, label, _), cell in zip(steps, nb.cells):
        problems += view_problems(kind, label, cell.outputs)
    first = len(module.setup) + len(module.given)
    stub, right = nb.cells[first + 1].outputs, nb.cells[first + 3].outputs
    if not any(o.output_type == "error" and o.ename == "CheckFailed" for o in stub):
        problems.append(f"{module.check} passed the stub: {[o.output_type for o in stub]}")
    if any(o.output_type == "error" for o in right):
        problems.append(f"{module.check} failed the solution: {[_text(o)[:300] for o in right]}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("notebook", sorted(SOURCE.glob("*/*.ipynb")), ids=lambda p: p.parent.name)
def test_no_cell_hides_its_value_with_a_semicolon(notebook: Path) -> None:
    """A plot cell ending with ';' shows nothing: the figure is the cell's value, shown as an image."""
    nb = nbformat.read(notebook, as_version=4)
    hidden = [_grade_id(c) or str(i) for i, c in enumerate(nb.cells)
              if c.cell_type == "code" and c.source.rstrip().endswith(";")]
    assert not hidden, f"cells of {notebook.name} end with ';' (their value is not shown): {hidden}"
