"""``solve("NAME")`` in a notebook: a stuck learner's way on, after a confirmation.

Typed into the answer cell of the exercise (replacing what is there) and run::

    from careops.solve import solve
    solve("is_synthetic")

the first run says what will happen -- the solution replaces this cell and
the exercise then scores 0 when graded, the others as usual -- and turns the
cell into ``solve("is_synthetic", confirm=True)``. Running it again fetches the
solution from a trusted place (:func:`careops.solve.sources.trusted_source`),
records it (the workspace's journal; in workshop mode the hub's), replaces the
cell's text with the marked solution (the frontend's ``set_next_input`` with
``replace``: the same cell, so its nbgrader metadata stays) and runs it, so the
next exercise works at once and again when the notebook is graded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from careops.artifacts import artifact_body
from careops.errors import CareOpsError
from careops.lab.labels import learner_name
from careops.outline import outline
from careops.report import theme
from careops.solve.journal import SolveEntry, workspace_journal
from careops.solve.sources import Solution, module_of_folder, no_source_error, trusted_source


@dataclass
class SolveCard:
    """What a ``solve`` call did, shown as the cell's value."""

    name: str
    state: str  # "confirm" | "solved" | "refused"
    message: str
    solution: Solution | None = None
    notes: list[str] = field(default_factory=list)
    fix: str = ""

    def __str__(self) -> str:
        lines = [f"solve({self.name!r}): {self.message}", *self.notes]
        if self.fix:
            lines.append(f"fix: {self.fix}")
        if self.solution is not None:
            lines += ["", self.solution.text]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = theme.para(self.message) + "".join(theme.note(n) for n in self.notes)
        if self.fix:
            body += theme.hint(self.fix)
        if self.solution is not None:
            body += theme.details("the solution now in this cell", theme.pre(self.solution.text))
        words = {"confirm": theme.state("waiting", "confirm to go on"), "solved": theme.verdict(True, "solved"),
                 "refused": theme.verdict(False, "", "not available here")}
        return theme.card(theme.join(["solve ", theme.code(self.name)]), body, status=words[self.state],
                          ok=None if self.state == "confirm" else self.state == "solved")


def _shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _call(name: str, module: str | None, *, confirm: bool) -> str:
    args = [json.dumps(name)] + ([f"module={json.dumps(module)}"] if module else []) + \
        (["confirm=True"] if confirm else [])
    return f"from careops.solve import solve\nsolve({', '.join(args)})"


def _cost(name: str, module: str, folder: Path) -> str:
    """What solving costs, read from the learner's own notebook (its tests and points are the released ones)."""
    for path in sorted(folder.glob("*.ipynb")):
        try:
            ex = outline(json.loads(path.read_text(encoding="utf-8")), module).exercise(name)
        except (OSError, ValueError):
            continue
        if ex is not None:
            return f"{ex.label} ({ex.points:g} point{'s' if ex.points != 1 else ''})"
    return f"the exercise of {name}"


def _run_in_kernel(shell: Any, text: str) -> str:
    """Run the solution as its cell would: an artifact's text into its variable, Python into the namespace."""
    first, _, body = text.partition("\n")
    try:
        if first.startswith("%%artifact"):
            shell.user_ns[first.split()[1]] = artifact_body(body)
        else:
            shell.ex(text)
    except Exception as exc:  # noqa: BLE001 - a solution that needs an earlier cell: say so, keep the card
        return f"it ran with {type(exc).__name__}: {exc} -- run the cells above it first, then this cell again"
    return ""


def solve(name: str, *, confirm: bool = False, module: str | None = None) -> SolveCard:
    """Show and apply the solution of the answer cell ``name`` after a confirmation; see the module's doc."""
    folder = Path.cwd()
    module = module or module_of_folder(folder) or ""
    shell = _shell()
    if not module:
        return SolveCard(name, "refused", "this notebook's module is not known here",
                         fix=f"say which module: solve({name!r}, module=\"01-ci-pipeline\")")
    cost = _cost(name, module, folder)
    if not confirm:
        if shell is not None:
            shell.set_next_input(_call(name, module if module != module_of_folder(folder) else None, confirm=True),
                                 replace=True)
        return SolveCard(name, "confirm", (
            f"This puts the solution of {cost} into this cell, replacing what is in it, and records that you used "
            "it: that exercise then scores 0 when your notebook is graded. Every other exercise is graded as usual, "
            "and the next ones work with this solution."),
            notes=["To go on, run this cell again: it now says confirm=True. To keep trying instead, undo "
                   "(Ctrl+Z) and write your own answer."])
    source = trusted_source()
    try:
        if source is None:
            raise no_source_error(name, module)
        solution = source.solution(module, name, learner=learner_name())
    except CareOpsError as exc:
        fix = exc.fix or ""
        return SolveCard(name, "refused", exc.message, fix=fix)
    notes = []
    if solution.via != "hub":  # the hub's service keeps the class's journal itself
        entry = workspace_journal(folder).append(SolveEntry(learner_name(), solution.module, solution.answer,
                                                            solution.exercise, solution.points, solution.via))
        notes.append(f"recorded at {entry.at} in {workspace_journal(folder).path}")
    else:
        notes.append("recorded by the workshop's hub")
    if solution.others:
        notes.append(f"this exercise has more answer cells: run solve(\"{solution.others[0]}\") in "
                     f"{'that cell' if len(solution.others) == 1 else 'each of them'} too "
                     f"({', '.join(solution.others)})")
    if shell is not None:
        shell.set_next_input(solution.text, replace=True)
        problem = _run_in_kernel(shell, solution.text)
        if problem:
            notes.append(problem)
    else:
        notes.append("no notebook here: paste the text below over the answer cell")
    return SolveCard(name, "solved", (
        f"This cell now holds the solution of {solution.exercise}; its first line records that you used it, so that "
        "exercise scores 0 when graded and every other exercise counts as usual. Read it, then go on with the next "
        "exercise."), solution=solution, notes=notes)


__all__ = ["SolveCard", "solve"]
