"""`careops solve NAME`: a stuck learner's solution to one exercise, after a confirmation, recorded.

``careops solve is_synthetic`` (in the module's workspace folder, or with
``--module 00-orientation``) prints the solution of that answer cell with its
solve mark. ``--apply --notebook FILE`` writes it into the answer cell of that
notebook instead. Either way the journal records it and the exercise scores 0
when graded; the others are graded as usual (:mod:`careops.solve`).

The solution comes from a trusted place only: the hub's solve service in
workshop mode, or a full checkout (the instructor's). In a learner's copy the
command says how to ask the instructor. ``--learner`` records a solution an
instructor hands to someone else; ``--list`` names the exercises and what each
solution costs.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from careops.errors import SolveError
from careops.lab.labels import learner_name
from careops.outline import outline
from careops.solve.journal import SolveEntry, SolveJournal, workspace_journal
from careops.solve.marks import answer_cells
from careops.solve.sources import CheckoutSolutions, module_of_folder, no_source_error, trusted_source


def _module(module: str | None, notebook: Path | None) -> str:
    if module:
        return module
    for folder in ([notebook.resolve().parent] if notebook else []) + [Path.cwd()]:
        found = module_of_folder(folder)
        if found:
            return found
    if notebook is not None:
        meta = json.loads(notebook.read_text(encoding="utf-8")).get("metadata", {}).get("careops", {})
        if meta.get("module"):
            return str(meta["module"])
    raise SolveError("which module? it is neither given nor the name of this folder",
                     fix="add --module 01-ci-pipeline (or run the command in the module's workspace folder)")


def _write_answer(notebook: Path, answer: str, text: str) -> None:
    """Put ``text`` into the answer cell ``answer`` of the notebook file (atomically)."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    cell = answer_cells(nb).get(answer)
    if cell is None:
        raise SolveError(f"{notebook} has no answer cell {answer!r}",
                         fix="name the learner's notebook of this module (workspace/<module>/<name>.ipynb)")
    cell["source"] = text
    if cell.get("cell_type") == "code":
        cell["outputs"], cell["execution_count"] = [], None
    fd, tmp = tempfile.mkstemp(dir=notebook.parent, prefix=".solve-", suffix=".ipynb")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, notebook)


def list_main(*, module: str | None = None) -> int:
    """The exercises of a module (or every module), what solving each costs, and what you solved."""
    checkout = CheckoutSolutions()
    if not checkout.available():
        raise no_source_error("NAME", module or "MODULE")
    for name in [checkout.module(module)] if module else checkout.modules():
        print(name)
        for ex in checkout.exercises(name):
            tests = ", ".join(ex.tests) or "not graded"
            print(f"  {' / '.join(ex.answers):<40} {ex.label[:60]:<60} {ex.points:g} pts ({tests})")
    used = workspace_journal(Path.cwd()).entries(learner=learner_name())
    if used:
        print("\nyou solved: " + ", ".join(f"{e.module}:{e.answer}" for e in used))
    return 0


def main(*, name: str = "", module: str | None = None, notebook: str | None = None, apply: bool = False,
         learner: str | None = None, assume_yes: bool = False, list_only: bool = False) -> int:
    if list_only:
        return list_main(module=module)
    if not name:
        raise SolveError("which exercise? name its answer cell", fix="e.g. careops solve is_synthetic; "
                         "careops solve --list names them")
    nb_path = Path(notebook) if notebook else None
    if apply and nb_path is None:
        raise SolveError("--apply needs the notebook to write into",
                         fix="add --notebook workspace/<module>/<file>.ipynb")
    mod = _module(module, nb_path)
    source = trusted_source()
    if source is None:
        raise no_source_error(name, mod)
    if isinstance(source, CheckoutSolutions):
        mod = source.module(mod)
        ex = outline(source.notebook(mod), mod).exercise(name)
        cost = f"{ex.label} ({ex.points:g} points)" if ex else f"the exercise of {name}"
    else:
        cost = f"the exercise of {name}"
    who = learner or learner_name()
    if not assume_yes:
        if not sys.stdin.isatty():
            print("careops: solve records that the solution was used; refusing without confirmation: add --yes",
                  file=sys.stderr)
            return 2
        click.confirm(f"show the solution of {cost} to {who}? It is recorded and that exercise then scores 0 "
                      "(the others are graded as usual)", abort=True)
    solution = source.solution(mod, name, learner=who)
    if nb_path is not None and apply:
        _write_answer(nb_path, solution.answer, solution.text)
    if solution.via != "hub":
        journal = workspace_journal(nb_path.parent) if nb_path else (
            workspace_journal() if module_of_folder(Path.cwd()) else
            SolveJournal(CheckoutSolutions().root / "build" / "solve" / "solved.jsonl"))
        entry = journal.append(SolveEntry(who, solution.module, solution.answer, solution.exercise, solution.points,
                                          "instructor" if learner else solution.via))
        print(f"recorded for {who} at {entry.at} in {journal.path}", file=sys.stderr)
    if apply and nb_path is not None:
        print(f"wrote the solution of {solution.answer} into {nb_path} (if it is open in JupyterLab: File > Reload "
              "Notebook from Disk before you save)")
    else:
        print(solution.text)
    if solution.others:
        print(f"this exercise has more answer cells: careops solve {solution.others[0]} ...", file=sys.stderr)
    return 0
