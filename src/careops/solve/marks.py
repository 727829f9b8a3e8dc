"""The mark a solved answer carries, and what it costs in grading.

A solution put into an answer cell by ``careops solve`` (or ``solve()`` in a
notebook) starts with one comment line (after ``%%artifact NAME`` in an
artifact cell)::

    # careops solve: is_synthetic -- shown at the learner's request; its exercise scores 0

The line is the record that travels with the notebook: the grader zeroes every
autograded test of that exercise (:func:`zeroed_tests`) and grades the rest as
usual, so a learner who was stuck can go on and still be graded on the rest.
The journal (:mod:`careops.solve.journal`) keeps the same record beside the
workspace, and in workshop mode the hub keeps it too.
"""
from __future__ import annotations

import re
from typing import Any

from careops.outline import Outline, is_answer, outline, source_text

MARK = "# careops solve: {name} -- shown at the learner's request; its exercise scores 0"
_MARK_RE = re.compile(r"^[ \t]*#[ \t]*careops solve:[ \t]*(?P<name>[A-Za-z_][\w-]*)", re.MULTILINE)
_SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def solution_text(source: str) -> str:
    """An answer cell of the instructor's notebook without its ``### BEGIN/END SOLUTION`` lines."""
    lines = [ln for ln in source.splitlines() if ln.strip() not in _SOLUTION_MARKERS]
    return "\n".join(lines).strip("\n")


def mark(text: str, name: str) -> str:
    """``text`` (an answer cell's solution) with the solve mark as its first line (after ``%%artifact``)."""
    line = MARK.format(name=name)
    text = "\n".join(ln for ln in text.splitlines() if not _MARK_RE.match(ln))  # never marked twice
    first, sep, rest = text.partition("\n")
    if first.startswith("%%"):
        return f"{first}\n{line}\n{rest}".rstrip("\n")
    return f"{line}\n{text}".rstrip("\n")


def marked_names(text: str) -> list[str]:
    """The answer cells a cell's text says were solved."""
    return [m["name"] for m in _MARK_RE.finditer(text)]


def solved_answers(notebook: dict[str, Any]) -> set[str]:
    """Grade ids of the answer cells the learner's notebook marks as solved (in any of its code cells)."""
    found: set[str] = set()
    for cell in notebook.get("cells") or []:
        if cell.get("cell_type") == "code":
            found.update(marked_names(source_text(cell)))
    return found


def zeroed_tests(notebook: dict[str, Any], *, layout: Outline | None = None) -> dict[str, str]:
    """Autograded test grade id -> why it scores 0, for every exercise the notebook marks as solved.

    ``layout`` is the instructor's notebook's outline (default: this notebook's own; a restored submission has
    the source's cells in the source's order, so both agree).
    """
    solved = solved_answers(notebook)
    if not solved:
        return {}
    zero: dict[str, str] = {}
    for ex in (layout or outline(notebook)).exercises:
        used = sorted(solved & set(ex.answers))
        if not used:
            continue
        why = (f"you used careops solve on {ex.label} ({', '.join(used)}): its points are 0, every other exercise "
               "is graded as usual")
        for test in ex.tests:
            zero[test] = why
    return zero


def answer_cells(notebook: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The notebook's answer cells by grade id."""
    out = {}
    for cell in notebook.get("cells") or []:
        gid = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
        if is_answer(cell) and gid:
            out[str(gid)] = cell
    return out


__all__ = ["MARK", "answer_cells", "mark", "marked_names", "solution_text", "solved_answers", "zeroed_tests"]
