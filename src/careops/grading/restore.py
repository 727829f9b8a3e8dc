"""Rebuild a submitted notebook on the instructor's skeleton, as nbgrader's OverwriteCells does, but stricter.

A learner may edit, delete, reorder or duplicate any cell and rewrite any
metadata. None of that may change what is graded, so the notebook the
grader runs is built from the instructor's SOURCE notebook: every cell in the
source's order with the source's metadata and, for locked cells (setup,
tests with their hidden parts), the source's text. Only the learner's answers
(solution cells, matched by ``grade_id``) and the learner's own extra code
cells come from the submission. What was found is reported as notes.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

from careops.outline import is_answer as is_solution
from careops.outline import is_autograded as is_test
from careops.outline import nbgrader as nbgrader_meta
from careops.outline import source_text

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION\s*$.*?^[ \t]*### END SOLUTION[ \t]*$", re.MULTILINE | re.DOTALL)


def grade_id(cell: dict[str, Any]) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) and gid else None


def stub(cell: dict[str, Any]) -> str:
    """The released (unanswered) text of a solution cell: what a learner who deleted it gets."""
    text = source_text(cell)
    if cell.get("cell_type") != "code":
        return TEXT_STUB
    if "### BEGIN SOLUTION" not in text:
        return CODE_STUB
    return _REGION.sub(lambda m: "\n".join(m.group(1) + ln for ln in CODE_STUB.splitlines()), text)


@dataclass
class Restored:
    """The notebook to grade and what restoring it found."""

    notebook: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def tampered(self) -> bool:
        return any(not n.startswith("missing answer") for n in self.notes)


def _clean_cell(cell_type: str, source: str, metadata: dict[str, Any], cell_id: str) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": cell_type, "id": cell_id, "metadata": metadata, "source": source}
    if cell_type == "code":
        cell["execution_count"] = None
        cell["outputs"] = []
    return cell


def restore(source_nb: dict[str, Any], submitted: dict[str, Any]) -> Restored:
    """The source skeleton with the learner's answers and extra code cells put in."""
    notes: list[str] = []
    src_cells = [c for c in source_nb.get("cells", []) if isinstance(c, dict)]
    known = {gid: c for c in src_cells if (gid := grade_id(c))}
    order = [grade_id(c) for c in src_cells]
    answers: dict[str, str] = {}
    extras: dict[str | None, list[str]] = {}  # anchor grade_id (None: top) -> extra code sources
    seen: list[str] = []
    anchor: str | None = None
    for cell in submitted.get("cells", []):
        if not isinstance(cell, dict):
            continue
        gid = grade_id(cell)
        text = source_text(cell)
        if gid in known:
            if gid in seen:
                notes.append(f"duplicated cell {gid} (the copy was ignored)")
                continue
            seen.append(gid)
            anchor = gid
            src = known[gid]
            if is_solution(src) and not nbgrader_meta(src).get("locked"):
                answers[gid] = text
                if _grading_meta(cell) != _grading_meta(src):
                    notes.append(f"changed nbgrader metadata of {gid} (restored)")
            else:
                if text.strip() != source_text(src).strip() and not (
                        is_test(src) and "### BEGIN HIDDEN TESTS" in source_text(src)):
                    notes.append(f"edited locked cell {gid} (restored)")
                elif is_test(src) and not _visible_part_kept(text, source_text(src)):
                    notes.append(f"edited test cell {gid} (restored)")
                if _grading_meta(cell) != _grading_meta(src):
                    notes.append(f"changed nbgrader metadata of {gid} (restored)")
        elif cell.get("cell_type") == "code" and text.strip():
            if gid is not None or nbgrader_meta(cell):
                notes.append(f"cell with unknown nbgrader id {gid!r} (kept as a plain code cell)")
            extras.setdefault(anchor, []).append(text)
    for gid, src in known.items():
        locked_code = src.get("cell_type") == "code" and nbgrader_meta(src).get("locked")
        if gid not in seen and (is_test(src) or locked_code):
            notes.append(f"deleted cell {gid} (restored)")
    expected_seq = [g for g in order if g in seen]
    if seen != expected_seq:
        notes.append("reordered cells (the instructor's order was used)")
    cells: list[dict[str, Any]] = []
    n = 0

    def add(cell_type: str, source: str, metadata: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        cells.append(_clean_cell(cell_type, source, metadata, f"cell-{n:03d}"))

    for text in extras.get(None, []):
        add("code", text, {})
    for src in src_cells:
        gid = grade_id(src)
        meta = copy.deepcopy(src.get("metadata") or {})
        ctype = src.get("cell_type", "code")
        if gid and gid in answers:
            add(ctype, answers[gid], meta)
        elif gid and is_solution(src) and not nbgrader_meta(src).get("locked"):
            notes.append(f"missing answer {gid} (graded as unanswered)")
            add(ctype, stub(src), meta)
        else:
            add(ctype, source_text(src), meta)
        for text in extras.get(gid, []) if gid else []:
            add("code", text, {})
    nb = {
        "cells": cells,
        "metadata": copy.deepcopy(source_nb.get("metadata") or {}),
        "nbformat": 4,
        "nbformat_minor": max(int(source_nb.get("nbformat_minor", 5) or 5), 5),
    }
    return Restored(nb, notes)


def _grading_meta(cell: dict[str, Any]) -> tuple[Any, ...]:
    m = nbgrader_meta(cell)
    return (bool(m.get("grade")), bool(m.get("solution")), bool(m.get("locked")), m.get("points"))


def _visible_part_kept(submitted: str, source: str) -> bool:
    visible = source.split("### BEGIN HIDDEN TESTS")[0].strip()
    return submitted.strip().startswith(visible) if visible else True
