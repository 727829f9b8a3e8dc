"""The package house of careops: which package may import which, and no import cycle.

Every top-level package or module of ``careops`` lives on one floor of
:data:`FLOORS`. Code may import its own package and any package on a LOWER
floor, never one on its own floor or above, also not inside a function (a lazy
import is still an edge). Within a package, modules must not import each other
in a circle. A new package must be given a floor here: the test fails until it is.

The floors, bottom up, and why each sits where it does:

0. ``errors`` and ``report``: the root exception, the one check report and the
   one theme; everything may use them.
1. plain tools with no lab: paths, the engine connection, the Docker build
   stream and tracked containers, polling, progress
   output, the case-study service's names, the audit log, PHI scanning, HL7,
   artifacts, secret scanning, local ports, a notebook's outline (exercises, stated times).
2. images, synthetic data, notebook helpers, the learner's workspace.
3. ``lab`` (sandboxed containers, on this engine or through the workshop's lab
   broker: its HTTP client lives here, with the policy it is checked against)
   and ``dockerfile`` (a learner's Dockerfile read against the course's rules
   and images), both built on images.
4. what runs in labs: router, traffic, mutation testing, pipelines, preflight;
   ``solve``: a stuck learner's solution from a trusted place, recorded.
5. ``rollout``: deployments, driving router and traffic; ``monitoring``: module 5's
   Prometheus lab, promtool and incident drills, driving traffic (beside rollout, not on it).
6. ``containerize``: module 2's builds and live checks.
7. ``checks``: the learner checks of every module.
8. ``grading``: nbgrader course, sandboxed grader (runs the checks);
   ``workshop``: the class's hub (its images, config, roster, the hub container,
   the lab broker's server, which runs lab and containerize code for learners).
9. ``apps``: one module per CLI verb.
10. ``cli``: the click entry point.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "careops"

FLOORS: list[set[str]] = [
    {"errors", "report"},
    {"paths", "engine", "dockerops", "polling", "progress", "legacy_adt", "audit", "phi", "hl7", "artifacts",
     "secretscan", "ports", "outline"},
    {"images", "synth", "notebook", "workspace"},
    {"lab", "dockerfile"},
    {"router", "traffic", "mutation", "pipeline", "preflight", "solve"},
    {"rollout", "monitoring"},
    {"containerize"},
    {"checks"},
    {"grading", "workshop"},
    {"apps"},
    {"cli"},
]
#: The package's face (``careops/__init__.py``) may re-export from the floor.
FACE_MAY_IMPORT = FLOORS[0]


def floor_of(unit: str) -> int | None:
    return next((i for i, units in enumerate(FLOORS) if unit in units), None)


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path) -> list[tuple[str, int]]:
    """Every careops module ``path`` imports (at any depth, lazy ones included), with its line."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append((mod, node.lineno))
            # `from careops import paths` / `from careops.lab import sandbox`: the names may be modules
            found += [(f"{mod}.{a.name}", node.lineno) for a in node.names]
    top = root.name
    return [(m, line) for m, line in found if m == top or m.startswith(top + ".")]


def modules(root: Path) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def existing(mod: str, known: dict[str, Path]) -> str | None:
    """The module a dotted import resolves to (``careops.lab.Lab`` -> ``careops.lab``)."""
    while mod and mod not in known:
        mod = mod.rpartition(".")[0]
    return mod or None


def unit_of(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layering_violations(root: Path) -> list[str]:
    """Imports that go sideways or up the floors, and units with no floor."""
    known = modules(root)
    problems: set[str] = set()
    for mod, path in known.items():
        unit = unit_of(mod)
        if unit == "__init__":
            for target, line in imports_of(path, root):
                t = existing(target, known)
                if t and unit_of(t) not in FACE_MAY_IMPORT | {"__init__"}:
                    problems.add(f"{path.name}:{line}: the package face imports careops.{unit_of(t)}")
            continue
        here = floor_of(unit)
        if here is None:
            problems.add(f"careops.{unit} has no floor: add it to FLOORS in tests/test_layering.py")
            continue
        for target, line in imports_of(path, root):
            t = existing(target, known)
            if t is None or unit_of(t) in (unit, "__init__"):
                continue
            other = unit_of(t)
            there = floor_of(other)
            if there is None or there >= here:
                rel = path.relative_to(root.parent)
                problems.add(f"{rel}:{line}: careops.{unit} (floor {here}) imports careops.{other} "
                             f"(floor {there}): only lower floors may be imported")
    return sorted(problems)


def import_cycles(root: Path) -> list[list[str]]:
    """Circles of modules importing each other (lazy imports included), each listed once."""
    known = modules(root)
    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in known.items():
        for target, _ in imports_of(path, root):
            t = existing(target, known)
            # a package's __init__ re-exporting its modules is its face, not a cycle through them
            if t and t != mod and not (path.name == "__init__.py" and t.startswith(mod + ".")):
                if not (known[t].name == "__init__.py" and mod.startswith(t + ".")):
                    graph[mod].add(t)
    cycles: list[list[str]] = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in list(known):
        if v not in index:
            visit(v)
    return cycles


def test_every_import_goes_down_the_floors() -> None:
    assert layering_violations(PACKAGE) == []


def test_no_import_cycle() -> None:
    assert import_cycles(PACKAGE) == []


def test_the_floors_name_only_real_units() -> None:
    units = {p.stem if p.suffix else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    placed = set().union(*FLOORS)
    assert placed - units == set(), "FLOORS names units that do not exist"
    assert units - placed == set(), "units without a floor"


# -- the test can fail: it finds the back-edges main had before the report moved to the floor -------------

def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "careops"
    for rel, text in files.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return root


@pytest.mark.parametrize("lower", ["dockerfile/rules.py", "pipeline/policy.py", "containerize/live.py"])
def test_a_lower_package_importing_the_checks_report_is_refused(tmp_path: Path, lower: str) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "", "checks/__init__.py": "class CheckReport: ...\n",
        f"{lower.split('/')[0]}/__init__.py": "",
        lower: "def f():\n    from careops.checks import CheckReport  # lazy: still an edge\n",
    })
    (problem,) = layering_violations(root)
    assert f"careops/{lower}:2" in problem and "imports careops.checks" in problem


def test_a_sideways_import_and_an_unplaced_package_are_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "", "router/__init__.py": "", "traffic/__init__.py": "",
        "router/live.py": "from careops import traffic\n", "kiosk.py": "",
    })
    problems = layering_violations(root)
    assert any("careops.router (floor 4) imports careops.traffic (floor 4)" in p for p in problems)
    assert "careops.kiosk has no floor: add it to FLOORS in tests/test_layering.py" in problems


def test_the_cycles_main_had_are_found(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "__init__.py": "", "pipeline/__init__.py": "from careops.pipeline.runner import run\n",
        "pipeline/runner.py": "from careops.pipeline.approval import approve\nfrom careops.pipeline.junit import write\n",
        "pipeline/approval.py": "def approve(run):\n    from careops.pipeline.runner import PipelineRun\n",
        "pipeline/junit.py": "from careops.pipeline.runner import PipelineRun\n",
        "synth/__init__.py": "", "synth/model.py": "def f():\n    from careops.synth.export import write_csv\n",
        "synth/export.py": "from careops.synth.model import Cohort\n",
    })
    assert sorted(import_cycles(root)) == [
        ["careops.pipeline.approval", "careops.pipeline.junit", "careops.pipeline.runner"],
        ["careops.synth.export", "careops.synth.model"],
    ]
