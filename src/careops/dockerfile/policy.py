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


def evaluate_policy(dockerfile: str | Dockerfile, *, policy: str | None = None) -> PolicyResult:
    """Evaluate the Rego policy on a Dockerfile (text is parsed); a policy that does not compile is a CareOpsError."""
    from regopy import Interpreter

    df = as_dockerfile(dockerfile)
    source = policy if policy is not None else policy_text()
    rego = Interpreter()
    rego.set_input(df.as_input())
    try:
        rego.add_module("dockerfile", source)
        out = rego.query(f"findings := data.{PACKAGE}.deny")
    except Exception as exc:  # noqa: BLE001 - regopy raises its own RegoError with the compiler's words
        raise CareOpsError(f"the Rego policy could not be evaluated: {str(exc)[:800]}",
                           fix=f"check {POLICY_ASSET}: package {PACKAGE}, a set rule `deny`") from None
    try:
        result = json.loads(str(out))
        raw = result["bindings"]["findings"]
    except (ValueError, KeyError, TypeError):
        raise CareOpsError(f"the Rego policy could not be evaluated: {str(out)[:800]}",
                           fix=f"check {POLICY_ASSET}: package {PACKAGE}, a set rule `deny`") from None
    findings = [PolicyFinding(str(f.get("id")), int(f.get("line") or 0), str(f.get("message")), str(f.get("hint", "")))
                for f in raw]
    return PolicyResult(sorted(findings, key=lambda f: (f.line, f.id)), source)
