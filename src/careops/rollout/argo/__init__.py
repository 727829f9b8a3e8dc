"""The Argo Rollouts ``Rollout`` schema, vendored (see NOTICE.md), and a strict check against it.

A Kubernetes API server prunes keys a CRD's schema does not name; ``kubectl
apply --validate=strict`` refuses them instead. A learner's typo must not
vanish silently, so :func:`schema_problems` checks strictly: every object whose
schema lists its ``properties`` (and allows nothing else) refuses other keys.
Each problem names the key path; :mod:`careops.rollout.spec` adds the line.
"""
from __future__ import annotations

import copy
import difflib
import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

#: the Argo Rollouts release the schema comes from
ARGO_ROLLOUTS_VERSION = "v1.9.1"
SCHEMA_FILE = "rollout-v1alpha1.schema.json"


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The Rollout's openAPIV3Schema (without status), as Argo Rollouts publishes it."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def _closed(node: Any) -> Any:
    """The schema with ``additionalProperties: false`` wherever it lists properties and allows nothing else."""
    if isinstance(node, list):
        return [_closed(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out and \
            not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    strict = _closed(copy.deepcopy(schema()))
    strict.pop("$comment", None)
    return jsonschema.Draft7Validator(strict)


@dataclass(frozen=True)
class SchemaProblem:
    """One place where a document breaks the Rollout schema: the key path, what is wrong, the fix."""

    path: tuple[Any, ...]
    message: str
    fix: str


def _node(path: tuple[Any, ...]) -> dict[str, Any]:
    """The schema node for a key path (list items through ``items``)."""
    node = schema()
    for part in path:
        if isinstance(part, int):
            node = node.get("items") or {}
        else:
            node = (node.get("properties") or {}).get(part) or {}
    return node


def _kind(node: dict[str, Any]) -> str:
    if "anyOf" in node:
        return " or ".join(_kind(n) for n in node["anyOf"])
    return {"integer": "a whole number", "string": "a string", "boolean": "true or false", "object": "a mapping",
            "array": "a list", "number": "a number"}.get(str(node.get("type")), str(node.get("type", "a value")))


def _problem(error: Any) -> SchemaProblem:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        known = sorted((_node(path).get("properties") or {}))
        unknown = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
        key = unknown[0] if unknown else "?"
        close = difflib.get_close_matches(str(key), known, n=1)
        return SchemaProblem(path + (key,), f"unknown key {key!r}: Argo Rollouts' Rollout has no such field here",
                             (f"did you mean {close[0]}? " if close else "") + "known here: " + ", ".join(known))
    if error.validator == "required":
        return SchemaProblem(path, f"missing key {error.message.split(' is a required')[0]}, which Argo Rollouts' "
                             "schema requires here", "add it")
    if error.validator in ("type", "anyOf"):
        return SchemaProblem(path, f"expected {_kind(error.schema)}, got {error.instance!r} (Argo Rollouts' schema)",
                             f"write {_kind(error.schema)} here")
    if error.validator == "enum":
        return SchemaProblem(path, f"expected one of {error.validator_value}, got {error.instance!r}",
                             f"write one of {', '.join(map(str, error.validator_value))}")
    return SchemaProblem(path, f"{error.message} (Argo Rollouts' schema)",
                         "compare with the Rollout shape the notebook shows")


def schema_problems(document: Any) -> list[SchemaProblem]:
    """Every place where ``document`` breaks the (strict) Rollout schema; [] when it fits.

    An unknown key comes first (a typo is also a missing key: the typo's line is the one to fix), then the
    shallowest problem.
    """
    errors = sorted(_validator().iter_errors(document),
                    key=lambda e: (e.validator != "additionalProperties", len(e.absolute_path),
                                   list(map(str, e.absolute_path))))
    return [_problem(e) for e in errors]


__all__ = ["ARGO_ROLLOUTS_VERSION", "SchemaProblem", "schema", "schema_problems"]
