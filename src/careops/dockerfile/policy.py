"""The course's Dockerfile security policy, written in Rego and evaluated offline with regopy.

Why: "security as code" -- the hospital's container rules live in one
reviewed policy file (``labs/containerize/policy/dockerfile.rego``) that any
pipeline can evaluate, instead of in people's heads. The policy sees the
parsed instructions (``careops.dockerfile.parse``) as ``input`` and returns a
set ``deny`` of findings ``{id, line, message, hint}``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from careops import paths
from careops.dockerfile.parse import Dockerfile, as_dockerfile
from careops.errors import CareOpsError
from careops.report import theme

POLICY_ASSET = "containerize/policy/dockerfile.rego"
PACKAGE = "careops.dockerfile"


@dataclass(frozen=True)
class PolicyFinding:
    """One policy violation at one line."""

    id: str
    line: int
    message: str
    hint: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.id} {self.message}"


@dataclass
class PolicyResult:
    findings: list[PolicyFinding]
    policy: str

    @property
    def ok(self) -> bool:
        return not self.findings

    def _repr_html_(self) -> str:
        status = theme.verdict(self.ok, "no violations", f"{len(self.findings)} violation(s)")
        rows = ([f.line, theme.code(f.id), f.message, f.hint] for f in self.findings)
        body = "" if self.ok else theme.table(rows, header=["line", "rule", "message", "fix"])
        return theme.card("Course policy", body, status=status, ok=self.ok)


def policy_text(path: str | Path | None = None) -> str:
    return Path(path).read_text(encoding="utf-8") if path else paths.lab_asset(POLICY_ASSET).read_text(encoding="utf-8")


def findings_of(source: str, data: dict[str, Any], package: str) -> list[dict[str, Any]]:
    """``data.<package>.deny`` of one Rego module on an input; a policy that does not compile is a CareOpsError."""
    from regopy import Interpreter

    rego = Interpreter()
    rego.set_input(data)
    try:
        rego.add_module("dockerfile", source)
        out = rego.query(f"findings := data.{package}.deny")
    except Exception as exc:  # noqa: BLE001 - regopy raises its own RegoError with the compiler's words
        raise CareOpsError(f"the Rego policy could not be evaluated: {str(exc)[:800]}",
                           fix=f"package {package}, a set rule `deny` (deny contains f if {{ ... }})") from None
    try:
        result = json.loads(str(out))
        raw = result["bindings"]["findings"]
    except (ValueError, KeyError, TypeError):
        raise CareOpsError(f"the Rego policy could not be evaluated: {str(out)[:800]}",
                           fix=f"package {package}, a set rule `deny` (deny contains f if {{ ... }})") from None
    if not isinstance(raw, list):
        raise CareOpsError(f"deny is not a set of findings: got {str(raw)[:200]}",
                           fix="deny contains f if { ...; f := {\"id\": ..., \"line\": ..., \"message\": ...} }")
    return raw


def _result(raw: list[Any], source: str) -> PolicyResult:
    findings = [PolicyFinding(str(f.get("id")), int(f.get("line") or 0), str(f.get("message")), str(f.get("hint", "")))
                for f in raw if isinstance(f, dict)]
    return PolicyResult(sorted(findings, key=lambda f: (f.line, f.id)), source)


def evaluate_policy(dockerfile: str | Dockerfile, *, policy: str | None = None) -> PolicyResult:
    """Evaluate the Rego policy on a Dockerfile (text is parsed); a policy that does not compile is a CareOpsError."""
    df = as_dockerfile(dockerfile)
    source = policy if policy is not None else policy_text()
    return _result(findings_of(source, df.as_input(), PACKAGE), source)


#: the package a learner's own rule lives in (module 2, exercise 5)
LEARNER_PACKAGE = "careops.learner"


def evaluate_learner_rule(rule: str, dockerfiles: Sequence[str | Dockerfile], *,
                          timeout: float = 10.0) -> list[PolicyResult]:
    """A learner's Rego module on each Dockerfile, in one child process with a CPU-time limit.

    Rego has no I/O, but a careless rule can still loop over large products: the child is killed after
    ``timeout`` seconds, so neither a notebook nor the grader's host waits on it.
    """
    import subprocess
    import sys

    inputs = [as_dockerfile(d).as_input() for d in dockerfiles]
    request = json.dumps({"policy": rule, "package": LEARNER_PACKAGE, "inputs": inputs, "cpu": int(timeout)})
    try:
        done = subprocess.run([sys.executable, "-m", "careops.dockerfile.rego_child"], input=request, text=True,
                              capture_output=True, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        raise CareOpsError(f"your rule did not finish within {timeout:g} s on {len(inputs)} short Dockerfiles",
                           fix="look for a rule that combines every instruction with every other one") from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CareOpsError(f"your rule stopped the evaluation (exit {done.returncode}): {done.stderr.strip()[-300:]}",
                           fix="simplify the rule; a rule that needs more than a second here is too heavy") from None
    if answer.get("error"):
        raise CareOpsError(answer["error"], fix=answer.get("fix") or "")
    return [_result(raw, rule) for raw in answer["findings"]]
