"""Read nbgrader metadata from notebooks without running anything.

Plain ``json`` on purpose: importing nbformat pulls in jsonschema's format
checkers (seconds), and ``careops release`` runs on every ``make lab``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from careops.errors import CareOpsError


@dataclass(frozen=True)
class CellInfo:
    """One cell of a notebook and what nbgrader makes of it."""

    index: int  # 1-based, as Jupyter shows it to a person counting cells
    cell_type: str
    source: str
    grade_id: str | None
    grade: bool
    solution: bool
    locked: bool
    task: bool
    points: float
    has_outputs: bool
    execution_count: int | None
    cell_id: str | None

    @property
    def autograded_test(self) -> bool:
        """A cell whose code nbgrader runs and scores: graded, not an answer."""
        return self.grade and not self.solution and not self.task and self.cell_type == "code"

    @property
    def graded(self) -> bool:
        """Worth points, whoever (autograder or a person) gives them."""
        return self.grade or self.task

    def label(self) -> str:
        """How to name this cell in a message: its grade_id, else its position and first line."""
        if self.grade_id:
            return f"cell {self.index} ({self.grade_id})"
        first = next((ln.strip() for ln in self.source.splitlines() if ln.strip()), "")
        if len(first) > 50:
            first = first[:47] + "..."
        return f"cell {self.index} ({self.cell_type}: {first!r})" if first else f"cell {self.index} ({self.cell_type}, empty)"


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def load_notebook(path: Path) -> dict[str, Any]:
    """The notebook's JSON; a CareOpsError naming the file if it is not a notebook."""
    try:
        with open(path, encoding="utf-8") as fh:
            nb = json.load(fh)
    except FileNotFoundError:
        raise CareOpsError(f"notebook {path} does not exist", fix="check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CareOpsError(
            f"{path} is not a valid notebook: expected JSON, got a parse error ({exc})",
            fix="open it in JupyterLab and save it again, or restore it with git",
        ) from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise CareOpsError(
            f"{path} is not a valid notebook: expected a JSON object with a 'cells' list",
            fix="open it in JupyterLab and save it again, or restore it with git",
        )
    return nb


def cells(path: Path) -> list[CellInfo]:
    """Every cell of the notebook at ``path`` with its nbgrader metadata."""
    out: list[CellInfo] = []
    for i, cell in enumerate(load_notebook(path)["cells"], start=1):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        try:
            points = float(meta.get("points") or 0)
        except (TypeError, ValueError):
            points = 0.0
        out.append(
            CellInfo(
                index=i,
                cell_type=cell.get("cell_type", "?"),
                source=_source(cell),
                grade_id=meta.get("grade_id"),
                grade=bool(meta.get("grade")),
                solution=bool(meta.get("solution")),
                locked=bool(meta.get("locked")),
                task=bool(meta.get("task")),
                points=points,
                has_outputs=bool(cell.get("outputs")),
                execution_count=cell.get("execution_count"),
                cell_id=cell.get("id"),
            )
        )
    return out


def unstripped_cells(path: Path) -> list[str]:
    """Labels of the cells that still carry outputs or an execution count.

    Source notebooks are committed without outputs: outputs leak solutions into
    diffs, and a stale output makes a cell look as if it ran.
    """
    bad = []
    for cell in cells(path):
        what = []
        if cell.has_outputs:
            what.append("outputs")
        if cell.execution_count is not None:
            what.append(f"execution_count {cell.execution_count}")
        if what:
            bad.append(f"{cell.label()}: {' and '.join(what)}")
    return bad


@dataclass(frozen=True)
class NotebookSummary:
    """Counts for the release summary of one notebook."""

    name: str
    graded_cells: int
    autograded_tests: int
    points: float


def summarize(path: Path) -> NotebookSummary:
    """Graded cells and points of one source notebook, as nbgrader will count them."""
    cs = cells(path)
    graded = [c for c in cs if c.graded]
    return NotebookSummary(
        name=path.stem,
        graded_cells=len(graded),
        autograded_tests=sum(1 for c in cs if c.autograded_test),
        points=sum(c.points for c in graded),
    )


def solution_syntax_errors(path: Path) -> list[str]:
    """Syntax errors in the solution code cells, with cell and line.

    ``nbgrader generate_assignment`` does not run the solutions, so a typo in
    one would only show up when a learner's work is graded. Cells are checked
    the way IPython runs them (magics and top-level ``await`` allowed).
    """
    import ast

    solution_cells = [c for c in cells(path) if c.solution and c.cell_type == "code"]
    if not solution_cells:
        return []
    from IPython.core.inputtransformer2 import TransformerManager

    transformer = TransformerManager()
    problems = []
    for cell in solution_cells:
        try:
            code = transformer.transform_cell(cell.source)
            compile(code, f"<{cell.label()}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:
            line = (exc.text or "").rstrip()
            problems.append(f"{cell.label()} line {exc.lineno}: {exc.msg}" + (f": {line.strip()!r}" if line else ""))
    return problems
