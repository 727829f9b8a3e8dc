"""careops.grading.notebooks: nbgrader's view of a notebook's cells, read as plain JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from careops.errors import CareOpsError
from careops.grading.notebooks import NotebookSummary, cells, solution_syntax_errors, summarize, unstripped_cells

SOLUTION = "def triage(level):\n    ### BEGIN SOLUTION\n    return level < 3\n    ### END SOLUTION\n"


def _code(source: str, nbgrader: dict[str, Any] | None = None, **cell: Any) -> dict[str, Any]:
    return {"cell_type": "code", "source": source, "metadata": {"nbgrader": nbgrader} if nbgrader else {},
            "outputs": [], "execution_count": None, **cell}


def _notebook(tmp_path: Path, solution: str = SOLUTION) -> Path:
    nb = {"cells": [
        {"cell_type": "markdown", "source": ["# Triage\n", "Write `triage`.\n"], "metadata": {}},
        _code(solution, {"grade_id": "triage", "solution": True, "grade": False, "locked": False}),
        _code("assert triage(1)\n", {"grade_id": "test_triage", "grade": True, "points": 2, "locked": True},
              outputs=[{"output_type": "stream", "name": "stdout", "text": "ok\n"}], execution_count=3),
        {"cell_type": "markdown", "source": "Why?", "metadata": {
            "nbgrader": {"grade_id": "why", "task": True, "points": "1.5", "grade": False, "solution": False}}},
        _code("print('a first line much longer than fifty characters, for the label')\n", execution_count=4),
        _code(""),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "triage.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_cells_carry_nbgraders_flags_points_and_a_label_a_person_can_find(tmp_path: Path) -> None:
    found = cells(_notebook(tmp_path))
    assert [c.label() for c in found] == [
        "cell 1 (markdown: '# Triage')", "cell 2 (triage)", "cell 3 (test_triage)", "cell 4 (why)",
        "cell 5 (code: \"print('a first line much longer than fifty char...\")", "cell 6 (code, empty)"]
    assert [c.grade_id for c in found if c.autograded_test] == ["test_triage"]
    assert [(c.grade_id, c.points) for c in found if c.graded] == [("test_triage", 2.0), ("why", 1.5)]
    assert summarize(_notebook(tmp_path)) == NotebookSummary("triage", graded_cells=2, autograded_tests=1, points=3.5)


def test_unstripped_cells_name_outputs_and_execution_counts(tmp_path: Path) -> None:
    assert unstripped_cells(_notebook(tmp_path)) == [
        "cell 3 (test_triage): outputs and execution_count 3",
        "cell 5 (code: \"print('a first line much longer than fifty char...\"): execution_count 4"]


def test_solution_syntax_errors_are_found_as_ipython_would_run_the_cell(tmp_path: Path) -> None:
    assert solution_syntax_errors(_notebook(tmp_path)) == []
    magic = "%%time\nimport asyncio\nawait asyncio.sleep(0)\n"  # a cell magic and top-level await are fine
    assert solution_syntax_errors(_notebook(tmp_path, magic)) == []
    [problem] = solution_syntax_errors(_notebook(tmp_path, "def triage(level:\n    return level\n"))
    assert problem.startswith("cell 2 (triage) line 1: ")


def test_what_is_not_a_notebook_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(CareOpsError, match="does not exist"):
        cells(tmp_path / "missing.ipynb")
    (tmp_path / "text.ipynb").write_text("hello", encoding="utf-8")
    with pytest.raises(CareOpsError, match="expected JSON, got a parse error") as err:
        cells(tmp_path / "text.ipynb")
    assert "save it again" in (err.value.fix or "")
    (tmp_path / "list.ipynb").write_text("[]", encoding="utf-8")
    with pytest.raises(CareOpsError, match="expected a JSON object with a 'cells' list"):
        cells(tmp_path / "list.ipynb")
