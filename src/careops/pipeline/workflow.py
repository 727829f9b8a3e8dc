"""Load a GitHub Actions workflow the way the local runner understands it.

Why: a learner's mistake in ``ci.yml`` must be reported with the line and key
that caused it *before* anything runs. So the YAML is composed node by node
(keeping line numbers), validated against the official workflow schema that
check-jsonschema vendors (offline), then against the subset this runner
executes, then the ``needs`` graph is checked for missing jobs and cycles.

YAML is read as YAML 1.2 like GitHub does: ``on``, ``yes`` and ``no`` stay
strings (PyYAML alone would turn the ``on:`` key into ``True``).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from careops.errors import CareOpsError
from careops.report import theme

#: Keys the runner executes (or accepts as having no local effect), per level.
TOP_KEYS = {"name", "run-name", "on", "permissions", "env", "defaults", "jobs", "concurrency"}
JOB_KEYS = {"name", "runs-on", "needs", "if", "permissions", "environment", "env", "defaults", "steps",
            "timeout-minutes", "outputs", "continue-on-error", "concurrency"}
STEP_KEYS = {"id", "name", "if", "run", "uses", "with", "env", "shell", "working-directory", "timeout-minutes",
             "continue-on-error"}
SHELLS = {"bash", "sh", "python"}
#: GitHub's default when a job has no timeout-minutes (the course's policy asks for one anyway).
DEFAULT_JOB_TIMEOUT_MINUTES = 360.0
_LOCAL_ONLY_HINT = ("the local runner runs one container per job from careops/ci-runner (Python 3.11, pytest, "
                    "ruff, hadolint, careops); matrices, service containers, job containers and reusable "
                    "workflows are not supported")
_YAML12_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_YAML12_NULL = {"", "~", "null", "Null", "NULL"}


class WorkflowError(CareOpsError):
    """A workflow file cannot be run: not YAML, off-schema, unsupported, or a broken ``needs`` graph.

    ``problems`` lists every problem found (each names its line and key); nothing ran.
    """

    def __init__(self, message: str, *, fix: str | None = None, problems: list[str] | None = None) -> None:
        super().__init__(message, fix=fix)
        self.problems = problems or [message]


# -- YAML with line numbers ---------------------------------------------------------------
def _scalar(node: yaml.ScalarNode) -> Any:
    """A YAML 1.2 core-schema scalar (GitHub's parser): only true/false are booleans."""
    value = node.value
    if node.style is not None:  # quoted or block scalar: always a string
        return value
    if value in _YAML12_BOOL:
        return _YAML12_BOOL[value]
    if value in _YAML12_NULL:
        return None
    if re.fullmatch(r"[-+]?[0-9]+", value):
        return int(value)
    if re.fullmatch(r"0x[0-9a-fA-F]+", value):
        return int(value, 16)
    if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", value):
        return float(value)
    return value


def _build(node: yaml.Node, path: tuple, lines: dict[tuple, int], source: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise WorkflowError(f"{source}: line {key_node.start_mark.line + 1}: a key must be a plain name",
                                    fix="write keys as plain words, e.g. `runs-on:`")
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise WorkflowError(f"{source}: line {key_node.start_mark.line + 1}: YAML merge keys (<<) are not "
                                    "supported by GitHub Actions", fix="write the keys out")
            key = key_node.value
            if key in out:
                raise WorkflowError(
                    f"{source}: line {key_node.start_mark.line + 1}: key '{key}' appears twice in "
                    f"{_dotted(path) or 'the top level'} (first at line {lines[path + (key,)]})",
                    fix="keep one of them; YAML would silently use the last one")
            out[key] = _build(value_node, path + (key,), lines, source)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, source) for i, item in enumerate(node.value)]
    return _scalar(node)


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- the parsed workflow --------------------------------------------------------------------
@dataclass
class Step:
    """One step of a job: a ``run:`` script or a ``uses:`` action."""

    index: int
    data: dict[str, Any]
    line: int

    @property
    def id(self) -> str | None:
        return self.data.get("id")

    @property
    def name(self) -> str:
        if self.data.get("name"):
            return str(self.data["name"])
        if "uses" in self.data:
            return f"Run {self.data['uses']}"
        first = str(self.data.get("run", "")).strip().splitlines()
        return f"Run {first[0][:60]}" if first else f"step {self.index + 1}"

    @property
    def run(self) -> str | None:
        return self.data.get("run")

    @property
    def uses(self) -> str | None:
        return self.data.get("uses")

    @property
    def timeout_minutes(self) -> float | None:
        value = self.data.get("timeout-minutes")
        return float(value) if isinstance(value, (int, float)) else None


@dataclass
class Job:
    """One job: its steps, what it needs, its gate (``environment``) and its limits."""

    id: str
    data: dict[str, Any]
    line: int
    steps: list[Step]

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.id)

    @property
    def needs(self) -> list[str]:
        needs = self.data.get("needs") or []
        return [needs] if isinstance(needs, str) else list(needs)

    @property
    def environment(self) -> str | None:
        env = self.data.get("environment")
        if isinstance(env, dict):
            return str(env.get("name")) if env.get("name") else None
        return str(env) if env else None

    @property
    def timeout_minutes(self) -> float:
        value = self.data.get("timeout-minutes")
        return float(value) if isinstance(value, (int, float)) else DEFAULT_JOB_TIMEOUT_MINUTES


@dataclass
class Workflow:
    """A validated workflow: jobs in a runnable order, plus every line number for messages."""

    name: str
    data: dict[str, Any]
    jobs: dict[str, Job]
    lines: dict[tuple, int] = field(repr=False)
    source: str = "<workflow>"
    text: str = field(default="", repr=False)

    def line_of(self, *path: Any) -> int | None:
        """The line of the key or value at ``path`` (or of its nearest parent)."""
        p = tuple(path)
        while p and p not in self.lines:
            p = p[:-1]
        return self.lines.get(p)

    def order(self) -> list[str]:
        """Job ids in an order where every job comes after the jobs it needs (file order otherwise)."""
        done: list[str] = []
        remaining = list(self.jobs)
        while remaining:
            for job_id in remaining:
                if all(n in done for n in self.jobs[job_id].needs):
                    done.append(job_id)
                    remaining.remove(job_id)
                    break
            else:  # pragma: no cover - cycles are refused by load_workflow
                raise WorkflowError("cycle in needs", fix="remove the cycle")
        return done

    def ancestors(self, job_id: str) -> set[str]:
        """Every job ``job_id`` needs, directly or through other jobs."""
        seen: set[str] = set()
        todo = list(self.jobs[job_id].needs)
        while todo:
            j = todo.pop()
            if j not in seen and j in self.jobs:
                seen.add(j)
                todo += self.jobs[j].needs
        return seen

    def _repr_html_(self) -> str:
        rows = ([theme.code(j.id), ", ".join(j.needs) or "\u2013", len(j.steps), j.timeout_minutes, j.environment or ""]
                for j in (self.jobs[i] for i in self.order()))
        table = theme.table(rows, header=["job", "needs", "steps", "timeout (min)", "environment"])
        return theme.card(theme.join(["Workflow ", self.name, " ", theme.muted(f"({self.source})")]), table,
                          status=theme.verdict(True, "valid"), ok=True)


@lru_cache(maxsize=1)
def workflow_schema() -> dict[str, Any]:
    """The official GitHub workflow JSON schema, as vendored (offline) by check-jsonschema."""
    import check_jsonschema

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "github-workflows.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CareOpsError(f"the vendored GitHub workflow schema is missing: expected {path} ({exc})",
                           fix="reinstall check-jsonschema in .venv (make lab)") from None


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[tuple, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise WorkflowError(
            f"{source} is not valid YAML: {exc.problem or exc} at {where}",
            fix="check indentation (spaces, not tabs) and that every 'key: value' has a space after the colon",
        ) from None
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{source} is not valid YAML: {exc}", fix="check the file's syntax") from None
    if node is None:
        raise WorkflowError(f"{source} is empty: expected a workflow with 'on:' and 'jobs:'",
                            fix="start from labs/ci-pipeline/starter-ci.yml")
    lines: dict[tuple, int] = {}
    data = _build(node, (), lines, source)
    return data, lines


def _schema_problems(data: Any, lines: dict[tuple, int], source: str) -> list[str]:
    import jsonschema
    from jsonschema.exceptions import best_match

    validator_cls = jsonschema.validators.validator_for(workflow_schema())
    validator = validator_cls(workflow_schema())
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        shown = best_match(error.context) if error.context else error
        path = tuple(shown.absolute_path)
        p = path
        while p and p not in lines:
            p = p[:-1]
        line = lines.get(p, 1)
        where = _dotted(path) or "top level"
        message = shown.message
        if shown.validator == "additionalProperties":
            extra = re.findall(r"'([^']+)'", message)
            message = f"unknown key{'s' if len(extra) > 1 else ''} {', '.join(repr(e) for e in extra)}"
            for key in extra:
                line = lines.get(path + (key,), line)
        if len(message) > 300:
            message = message[:300] + "..."
        problems.append(f"{source}: line {line}: {where}: {message} (GitHub workflow schema)")
    return problems


def _supported_uses(uses: str) -> bool:
    from careops.pipeline.actions import find_action

    return find_action(uses) is not None


def _subset_problems(data: dict[str, Any], lines: dict[tuple, int], source: str) -> list[str]:
    """What the schema allows but this runner does not do: each names its key and line."""
    from careops.pipeline.actions import supported_list

    problems = []

    def unsupported(path: tuple, what: str) -> None:
        problems.append(f"{source}: line {lines.get(path, 1)}: unsupported key '{path[-1]}' in {what} "
                        f"({_dotted(path)}): {_LOCAL_ONLY_HINT}")

    for key in data:
        if key not in TOP_KEYS:
            unsupported((key,), "the workflow")
    for job_id, job in (data.get("jobs") or {}).items():
        if not isinstance(job, dict):
            continue
        for key in job:
            if key not in JOB_KEYS:
                unsupported(("jobs", job_id, key), f"job {job_id}")
        for i, step in enumerate(job.get("steps") or []):
            if not isinstance(step, dict):
                continue
            for key in step:
                if key not in STEP_KEYS:
                    unsupported(("jobs", job_id, "steps", i, key), f"step {i + 1} of job {job_id}")
            shell = step.get("shell")
            if shell is not None and shell not in SHELLS:
                problems.append(f"{source}: line {lines.get(('jobs', job_id, 'steps', i, 'shell'), 1)}: shell "
                                f"{shell!r} in job {job_id} step {i + 1} is not supported; use one of "
                                f"{', '.join(sorted(SHELLS))}")
            uses = step.get("uses")
            if isinstance(uses, str) and not _supported_uses(uses):
                problems.append(
                    f"{source}: line {lines.get(('jobs', job_id, 'steps', i, 'uses'), 1)}: job {job_id} step "
                    f"{i + 1} uses {uses!r}, which the local runner does not run. Supported actions: "
                    f"{supported_list()}; anything else: a `run:` step with the tools in careops/ci-runner")
            elif isinstance(uses, str):
                from careops.pipeline.actions import find_action
                action = find_action(uses)
                assert action is not None
                for key in step.get("with") or {}:
                    if key not in action.inputs:
                        problems.append(
                            f"{source}: line {lines.get(('jobs', job_id, 'steps', i, 'with', key), 1)}: "
                            f"{uses} has no input '{key}' (job {job_id} step {i + 1}); it takes: "
                            f"{', '.join(action.inputs) or 'no inputs'}")
    return problems


def _expression_problems(data: Any, lines: dict[tuple, int], source: str) -> list[str]:
    """Every ``${{ }}`` and ``if:`` is parsed up front, so a typo stops the run before anything starts."""
    from careops.pipeline.expressions import (
        Context,
        ExpressionError,
        evaluate,
        expressions_in,
    )

    problems = []

    def walk(value: Any, path: tuple) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, path + (k,))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, path + (i,))
        elif isinstance(value, str):
            texts = expressions_in(value)
            if path and path[-1] == "if" and "${{" not in value:
                texts = [value]
            for text in texts:
                try:
                    evaluate(text, Context())
                except ExpressionError as exc:
                    problems.append(f"{source}: line {lines.get(path, 1)}: {_dotted(path)}: {exc.message}")

    walk(data.get("jobs") or {}, ("jobs",))
    return problems


def _needs_problems(data: dict[str, Any], lines: dict[tuple, int], source: str) -> list[str]:
    jobs = data.get("jobs") or {}
    problems = []
    graph: dict[str, list[str]] = {}
    for job_id, job in jobs.items():
        needs = job.get("needs") or [] if isinstance(job, dict) else []
        needs = [needs] if isinstance(needs, str) else list(needs)
        graph[job_id] = needs
        for n in needs:
            if n not in jobs:
                problems.append(f"{source}: line {lines.get(('jobs', job_id, 'needs'), 1)}: job {job_id} needs "
                                f"'{n}', but there is no job '{n}' (jobs: {', '.join(jobs)})")
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(j: str, stack: list[str]) -> None:
        state[j] = 1
        for n in graph.get(j, []):
            if n not in graph:
                continue
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n] if n in stack else [j, n]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    problems.append(f"{source}: line {lines.get(('jobs', j, 'needs'), 1)}: the needs of job {j} "
                                    f"form a cycle: {' -> '.join(cycle)}; a job cannot wait for itself")
            elif state.get(n) is None:
                visit(n, stack + [n])
        state[j] = 2

    for j in graph:
        if state.get(j) is None:
            visit(j, [j])
    return problems


def load_workflow(source: str | Path, *, text: str | None = None) -> Workflow:
    """Parse and validate a workflow file (or ``text``), raising one WorkflowError listing every problem.

    Checks, in order: YAML syntax, the official GitHub workflow schema, the
    runner's supported subset (keys, shells, actions and their inputs, the
    ``${{ }}`` expressions it evaluates), and the ``needs`` graph (missing jobs, cycles).
    """
    name = str(source)
    if text is None:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WorkflowError(f"workflow file {path} does not exist",
                                fix="write it at .github/workflows/ci.yml in your repo") from None
        except UnicodeDecodeError:
            raise WorkflowError(f"{path} is not UTF-8 text", fix="save it as UTF-8") from None
    data, lines = _parse_yaml(text, name)
    if not isinstance(data, dict):
        raise WorkflowError(f"{name}: line 1: expected a mapping with 'on:' and 'jobs:', got a "
                            f"{type(data).__name__}", fix="start from labs/ci-pipeline/starter-ci.yml")
    problems = _schema_problems(data, lines, name)
    if not problems:
        problems = (_subset_problems(data, lines, name) + _expression_problems(data, lines, name)
                    + _needs_problems(data, lines, name))
    if problems:
        raise WorkflowError(
            f"{name}: {len(problems)} problem(s), nothing was run:\n  " + "\n  ".join(problems),
            fix="fix each line named above, then run `careops pipeline validate` again", problems=problems)
    jobs = {}
    for job_id, job in data["jobs"].items():
        steps = [Step(i, s, lines.get(("jobs", job_id, "steps", i), 1)) for i, s in enumerate(job["steps"])]
        jobs[job_id] = Job(job_id, job, lines.get(("jobs", job_id), 1), steps)
    return Workflow(name=str(data.get("name") or Path(name).name), data=data, jobs=jobs, lines=lines,
                    source=name, text=text)


def workflow_or_problems(text: str, source: str = "<workflow>") -> tuple[Workflow | None, list[str]]:
    """The loaded workflow and [] when ``text`` is runnable, else None and every problem (for checks that show
    all problems at once and then read the workflow itself, without loading it again)."""
    try:
        return load_workflow(source, text=text), []
    except WorkflowError as exc:
        return None, list(exc.problems)


def validate_text(text: str, source: str = "<workflow>") -> list[str]:
    """Every problem of a workflow text, or [] when it is runnable (for checks that show all at once)."""
    return workflow_or_problems(text, source)[1]
