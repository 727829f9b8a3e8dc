"""Prove a course notebook's graded checks both ways, with real nbgrader.

For one source notebook the harness builds a throwaway course, generates the
learner version, then autogrades

* the SOLUTION: the source notebook submitted as it is. nbgrader's autograde
  restores every locked cell (so every test cell) from the gradebook copy
  that generate_assignment saved *before* removing hidden tests, so the
  hidden tests run and their markers need no handling; ``### BEGIN/END
  SOLUTION`` are Python comments. Every autograded cell must get full marks.
* the LEARNER version exactly as released (``raise NotImplementedError()``
  where the answers go). Every autograded cell must get zero: a test that
  passes on it cannot tell a learner who did the work from one who did not.

Each autograde runs with its own ``CAREOPS_LEARNER`` id, so lab containers
started by the notebook are the run's own; they are removed afterwards.

The ``check_*`` functions return a list of problems (empty: fine), each a
sentence naming the cell, what was expected and what happened.
"""
from __future__ import annotations

import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from careops.grading import notebooks as nbs
from careops.grading.cleanup import CleanupReport, remove_learner_labs
from careops.grading.course import (
    AutogradeResult,
    Course,
    GradingError,
    autograde,
    generate_assignment,
    make_temp_course,
)

SOLUTION_STUDENT = "solution"
LEARNER_STUDENT = "learner"
AUTOGRADE_TIMEOUT = 1800.0  # a whole notebook; cells have their own 300 s limit in the config


def new_learner_id(prefix: str = "harness") -> str:
    """A learner id no real learner has, so cleanup removes only this run's labs."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def check_stripped(notebook: Path) -> list[str]:
    """Cells of a source notebook that still have outputs or an execution count."""
    return [
        f"{cell} (expected no outputs and execution_count null; clear them: "
        "JupyterLab > Edit > Clear Outputs of All Cells, then save)"
        for cell in nbs.unstripped_cells(notebook)
    ]


def check_has_autograded_test(notebook: Path) -> list[str]:
    """A graded notebook needs at least one autograded test cell."""
    if any(c.autograded_test for c in nbs.cells(notebook)):
        return []
    return [
        f"{notebook.name} has no autograded test cell (expected at least one code cell with "
        "nbgrader 'Autograder tests' and points > 0, found none)"
    ]


def _indent(text: str, limit: int = 3000) -> str:
    text = text.strip() or "(the cell printed nothing)"
    if len(text) > limit:
        text = "...\n" + text[-limit:]
    return textwrap.indent(text, "      | ", lambda _line: True)


def check_solution_full_marks(result: AutogradeResult) -> list[str]:
    """Autograded cells of the solution run that lost points, each with its error output."""
    problems = []
    tests = [c for c in result.cells if c.autograded]
    if not tests:
        problems.append(
            f"the solution of {result.assignment} was graded on no autograded cell "
            "(expected at least one in the gradebook)"
        )
    graded = {c.grade_id for c in result.cells}
    runs: dict[str, list] = {}
    for cell in tests:
        if not cell.full_marks:
            problem = (
                f"{cell.label} scored {cell.score:g}/{cell.max_score:g} on the SOLUTION "
                f"(expected {cell.max_score:g}/{cell.max_score:g}): the solution or the test is wrong. "
                f"Its output:\n{_indent(cell.output)}"
            )
            if cell.notebook not in runs:
                runs[cell.notebook] = result.cell_runs(cell.notebook)
            # A failing test is often only the symptom of an earlier cell that raised.
            earlier = [
                r for r in runs[cell.notebook]
                if r.error and r.index < cell.index and r.grade_id not in graded
            ]
            if earlier:
                problem += "\n    Earlier cells that raised (often the cause):\n" + "\n".join(
                    f"    - {r.label}:\n{_indent(r.error_summary, 800)}" for r in earlier
                )
            problems.append(problem)
    return problems


def check_solution_runs_cleanly(result: AutogradeResult) -> list[str]:
    """Every cell of the solution runs without an error, graded or not.

    Ungraded cells hold the lab's live steps (the preflight, starting a
    container, a clean-up check); a solution run in CI is their proof.
    """
    problems = []
    for notebook in sorted({c.notebook for c in result.cells}):
        for run in result.cell_runs(notebook):
            if run.error:
                problems.append(f"{run.label} raised in the SOLUTION run (expected no error):\n"
                                f"{_indent(run.error_summary, 1500)}")
    return problems


def check_learner_zero(result: AutogradeResult) -> list[str]:
    """Autograded cells that gave points to the unchanged learner version."""
    problems = []
    for cell in result.cells:
        if cell.autograded and cell.score > 0:
            problems.append(
                f"{cell.label} scored {cell.score:g}/{cell.max_score:g} on the UNCHANGED learner version "
                "(expected 0): this test passes without the learner's work, so it cannot fail; "
                "make it call the code the learner writes"
            )
    return problems


def check_cleanup(report: CleanupReport | None) -> list[str]:
    """Lab resources a graded run may have left behind."""
    if report is None or not report.problems:
        return []
    return [
        f"lab resources of {report.learner_id} may be left (expected none): {p}; "
        f"remove them with `careops labs reset --learner {report.learner_id} --yes`"
        for p in report.problems
    ]


@dataclass
class GradedRun:
    """One autograde of one notebook version, and the cleanup after it."""

    learner_id: str
    result: AutogradeResult
    cleanup: CleanupReport | None


@dataclass
class NotebookHarness:
    """Generate, then autograde the solution and the learner version of one notebook.

    ``assignment`` is the folder the notebook belongs to; ``from_course`` the
    course whose config (and the assignment's other files) the throwaway
    course copies. Results are computed once and kept, so several checks can
    share one run; an error is kept and raised again the same way.
    """

    notebook: Path
    assignment: str
    workdir: Path
    from_course: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cleanup: Callable[[str], CleanupReport] = remove_learner_labs
    _course: Course | None = None
    _cache: dict[str, object] = field(default_factory=dict)

    @property
    def course(self) -> Course:
        if self._course is None:
            self._course = make_temp_course(
                self.workdir / "course",
                self.assignment,
                from_course=self.from_course,
                notebooks=[self.notebook],
            )
        return self._course

    def _once(self, key: str, compute: Callable[[], object]) -> object:
        if key not in self._cache:
            try:
                self._cache[key] = compute()
            except GradingError as exc:
                self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, GradingError):
            raise value
        return value

    def released_notebook(self) -> Path:
        """The learner version nbgrader generated (runs generate_assignment once)."""

        def compute() -> Path:
            folder = generate_assignment(self.assignment, self.course.root)
            path = folder / self.notebook.name
            if not path.is_file():
                raise GradingError(
                    f"generate_assignment of {self.assignment} wrote no {self.notebook.name} "
                    f"(expected {path})",
                    fix="check the notebook's file name and nbgrader's log",
                )
            return path

        return self._once("released", compute)  # type: ignore[return-value]

    def _graded(self, student: str, submission: Path) -> GradedRun:
        learner_id = new_learner_id()
        env = {**self.env, "CAREOPS_LEARNER": learner_id}
        report = None
        try:
            result = autograde(
                self.assignment, student, [submission], self.course.root,
                env=env, timeout=AUTOGRADE_TIMEOUT,
            )
        finally:
            report = self.cleanup(learner_id)
        return GradedRun(learner_id, result, report)

    def solution_run(self) -> GradedRun:
        """Autograde of the source notebook, submitted as is."""
        self.released_notebook()
        return self._once(  # type: ignore[return-value]
            "solution", lambda: self._graded(SOLUTION_STUDENT, self.notebook)
        )

    def learner_run(self) -> GradedRun:
        """Autograde of the released learner version, unchanged."""
        released = self.released_notebook()
        return self._once(  # type: ignore[return-value]
            "learner", lambda: self._graded(LEARNER_STUDENT, released)
        )
