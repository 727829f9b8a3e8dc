"""YAML with line numbers: what learners write is checked key by key, and every error says where.

Used by the router config and the rollout spec parsers (careops.rollout).
"""
from __future__ import annotations

from typing import Any

import yaml

from careops.errors import CareOpsError

Path_ = tuple[Any, ...]


class Located:
    """A parsed YAML document plus the line of every key path, for errors that point at the line."""

    def __init__(self, data: Any, lines: dict[Path_, int], what: str, error: type[CareOpsError]) -> None:
        self.data = data
        self.lines = lines
        self.what = what
        self.error = error

    def where(self, path: Path_) -> str:
        """'spec.strategy.blueGreen (line 7)': the dotted key path and its line, if known."""
        dotted = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[") or "(top)"
        probe = tuple(path)
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe)
        return f"{dotted} (line {line})" if line else dotted

    def fail(self, path: Path_, message: str, fix: str) -> CareOpsError:
        return self.error(f"{self.what}: {self.where(path)}: {message}", fix=fix)


def load_located(source: str | dict[str, Any], *, what: str, error: type[CareOpsError]) -> Located:
    """Parse YAML text (or take a dict, which has no lines) and remember each key's line."""
    if not isinstance(source, str):
        return Located(source, {}, what, error)
    try:
        node = yaml.compose(source, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{what} is not valid YAML{where}: {problem}",
                    fix="check the indentation (spaces, not tabs) and the 'key: value' colons of that line") from None
    if node is None:
        raise error(f"{what} is empty", fix="write the YAML mapping the exercise asks for")
    loader = yaml.SafeLoader("")
    lines: dict[Path_, int] = {}

    def convert(n: yaml.Node, path: Path_) -> Any:
        lines.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                key = loader.construct_object(key_node, deep=True)
                if key in out:
                    raise error(f"{what}: key {key!r} appears twice (line {key_node.start_mark.line + 1})",
                                fix="keep one of them")
                lines[path + (key,)] = key_node.start_mark.line + 1
                out[key] = convert(value_node, path + (key,))
            return out
        if isinstance(n, yaml.SequenceNode):
            return [convert(v, path + (i,)) for i, v in enumerate(n.value)]
        return loader.construct_object(n, deep=True)

    try:
        data = convert(node, ())
    except yaml.YAMLError as exc:
        raise error(f"{what} could not be read: {exc}", fix="check the line it names") from None
    return Located(data, lines, what, error)


def require_mapping(doc: Located, value: Any, path: Path_, allowed: dict[str, str]) -> dict[str, Any]:
    """``value`` must be a mapping whose keys are all in ``allowed`` (key -> what it is for)."""
    if not isinstance(value, dict):
        raise doc.fail(path, f"expected a mapping (key: value lines), got {type(value).__name__} {value!r}",
                       fix="indent the keys under it: " + ", ".join(allowed))
    for key in value:
        if key not in allowed:
            raise doc.fail(path + (key,), f"unknown key {key!r}",
                           fix="use only: " + "; ".join(f"{k} ({v})" for k, v in allowed.items()))
    return value
