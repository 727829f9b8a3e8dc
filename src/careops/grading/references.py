"""The course's reference answers live only in trusted places; a hand-in that reaches for them scores 0.

Where the answers are
---------------------
* the source notebooks' solution cells and hidden tests (``notebooks/``; ``careops release`` strips both);
* ``grading/references/`` of the instructor's checkout: the solution artifacts of modules 1 to 3, the
  reference implementations and hand-worked answers the hidden tests compare against. Only trusted code on
  the instructor's host reads it (hidden tests run there, see :mod:`careops.grading.trusted`; benches and the
  toolkit's tests): it is not part of the ``careops`` package, not copied into the grader's sandbox image or
  a learner image, and not in the learner copy ``careops release`` makes (:mod:`careops.grading.learner_copy`).

The toolkit itself keeps what the visible checks need: their practice inputs and, computed ahead, the
practice inputs' expected outputs (a practice input's answer is not the general answer). Hidden inputs may be
built by the toolkit; their expected values are only here.

A hand-in that uses them
------------------------
:func:`exercises_using_references` reads a notebook's learner cells without running them: a cell that imports a
reference module, names a reference, or names a trusted file (a source notebook, ``grading/references``, a
``labs/*/solution`` path, the gradebook, the course's build folders) taints the names it binds, and so does a
cell that uses a tainted name; the next test after such a cell (its exercise) and every later test that uses a
tainted name score 0, with the reason. Names built at run time (``getattr(m, "_re" + "f")``)
escape a reading; they find nothing either, because no reference exists where learner code runs.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from careops import paths
from careops.errors import CareOpsError
from careops.grading.restore import grade_id, is_solution, is_test, nbgrader_meta, source_text

#: Overrides where the references are (default: ``grading/references`` of the course checkout).
REFERENCES_ENV = "CAREOPS_REFERENCES"
REFERENCES_DIR = Path("grading") / "references"

#: Modules that hold (or held) reference answers.
REFERENCE_MODULES = frozenset({"careops.grading.references", "careops.checks.safe_deployments.solutions"})
#: Names of reference answers, now or in earlier versions of the toolkit.
REFERENCE_NAMES = frozenset({
    "_reference_change_record", "expected_change_record", "hidden_change_record_cases", "change_record_cases",
    "solution_artifact", "solution_artifacts", "SOLUTION_FILES", "ROW_ANSWERS", "GRADED_ROWS",
    "GRADED_ROW_ANSWERS", "_ANSWERS", "load_reference",
})
#: File paths only the instructor's side holds (in any string of a learner's code: open(), !cat, Path(...)).
TRUSTED_PATHS = re.compile(
    r"(?:^|[/\\])(?:grading[/\\]references|notebooks[/\\]\d\d-|source_with_tests|"
    r"course[/\\](?:autograded|submitted|feedback|solution)|labs[/\\][\w.-]+[/\\]solution)"
    r"|gradebook\.db|solution-ci\.ya?ml|\.\.[/\\]notebooks\b")


def references_dir() -> Path:
    """``$CAREOPS_REFERENCES``, else ``grading/references`` of the course checkout (it may not exist)."""
    env = os.environ.get(REFERENCES_ENV)
    return Path(env).expanduser().resolve() if env else paths.repo_root() / REFERENCES_DIR


def _missing(what: str) -> CareOpsError:
    return CareOpsError(
        f"{what} is not on this machine: expected it in {references_dir()}. The course's reference answers live "
        "only on the instructor's host (grading/references/ of a full checkout), never in the toolkit, the "
        "grader's sandbox or a learner's copy",
        fix="run this from the instructor's checkout of CareOps Labs (or set CAREOPS_REFERENCES)")


def reference_file(rel: str) -> Path:
    """A reference file, e.g. ``safe-deployments/blue-green.yaml``; an error names where it was looked for."""
    path = references_dir() / rel
    if not path.is_file():
        raise _missing(f"the reference file {rel}")
    return path


def load(name: str) -> ModuleType:
    """The reference module ``grading/references/<name>.py`` (for hidden tests, benches and the toolkit's tests)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise CareOpsError(f"no reference module {name!r}: expected a module name such as 'ci_pipeline'")
    path = references_dir() / f"{name}.py"
    if not path.is_file():
        raise _missing(f"the reference module {name}")
    key = f"careops_references.{name}"
    cached = sys.modules.get(key)
    if cached is not None and getattr(cached, "__file__", None) == str(path):
        return cached
    spec = importlib.util.spec_from_file_location(key, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


# -- finding a hand-in's uses --------------------------------------------------------------------------------

def _module_hits(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in REFERENCE_MODULES)


def find_uses(tree: ast.AST) -> list[str]:
    """What in this (learner's) code reaches for a reference, each in a few words; [] when nothing does."""
    found: list[str] = []

    def add(what: str) -> None:
        if what not in found:
            found.append(what)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _module_hits(alias.name):
                    add(f"import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if _module_hits(node.module) or alias.name in REFERENCE_NAMES or \
                        _module_hits(f"{node.module}.{alias.name}"):
                    add(f"from {node.module} import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in REFERENCE_NAMES:
            add(f".{node.attr}")
        elif isinstance(node, ast.Name) and node.id in REFERENCE_NAMES:
            add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if TRUSTED_PATHS.search(text):
                add(f"reads {text.strip()[:80]!r}")
            elif any(_module_hits(w) for w in re.findall(r"[\w.]+", text)) or \
                    any(n in text for n in REFERENCE_NAMES if len(n) > 8):
                add(f"the string {text.strip()[:80]!r}")
    return found


def _bound(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                names.add(sub.id)
    return names


def _used(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _parse(cell: dict[str, Any]) -> ast.Module | None:
    text = source_text(cell)
    if text.lstrip().startswith("%%artifact"):
        return None  # a declarative artifact (YAML, a Dockerfile): graded by the live checks, not read here
    from careops.grading.trusted import python_source

    try:
        return ast.parse(python_source(text))
    except SyntaxError:
        return None


def _live(cell: dict[str, Any]) -> bool:
    care = (cell.get("metadata") or {}).get("careops")
    return isinstance(care, dict) and bool(care.get("live_check"))


def _learner_cell(cell: dict[str, Any]) -> bool:
    """An answer or an extra cell of the learner (the instructor's locked cells were restored from the source)."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and (is_solution(cell) or not meta)


def exercises_using_references(notebook: dict[str, Any]) -> dict[str, str]:
    """Test ``grade_id`` -> why it scores 0, for every test that relies on a learner cell using a reference."""
    tainted: dict[str, str] = {}  # name -> the reason it carries
    waiting: list[str] = []  # reasons of the cells since the last test: they cost the next one (their exercise)
    zero: dict[str, str] = {}
    for index, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        if is_test(cell):
            tree = _parse(cell)
            # a live check's names come from its trusted setup (the learner's artifacts are declarative)
            used = _used(tree) if tree is not None and not _live(cell) else set()
            hit = next((tainted[n] for n in sorted(used) if n in tainted), None)
            reason = hit or (waiting[0] if waiting else None)
            if reason:
                zero[str(grade_id(cell))] = reason
                waiting.clear()
            continue
        if not _learner_cell(cell):
            continue
        tree = _parse(cell)
        if tree is None:
            continue
        where = f"cell {grade_id(cell) or index}"
        uses = find_uses(tree)
        bound = _bound(tree)
        if uses:
            reason = f"{where} uses the course's reference answers ({'; '.join(uses[:3])})"
        else:
            reason = next((tainted[n] for n in sorted(_used(tree)) if n in tainted), "")
        for name in bound:
            if reason:
                tainted[name] = reason
            else:
                tainted.pop(name, None)  # redefined honestly
        if uses:
            waiting.append(reason)
    return zero


__all__ = [
    "REFERENCES_ENV",
    "REFERENCE_MODULES",
    "REFERENCE_NAMES",
    "exercises_using_references",
    "find_uses",
    "load",
    "reference_file",
    "references_dir",
]
