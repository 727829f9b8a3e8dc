"""Separation of duties at the approval gate, with electronic signatures in the audit log.

Why: an approval is worth something only when someone *other* than the author, who is entitled to approve,
gives it, and the record shows who signed, when, and what the signature means (21 CFR Part 11 asks for the
printed name, the date and time, and the meaning -- review, approval, responsibility -- with each electronic
signature). The rule lives in a reviewed Rego policy, evaluated offline with regopy, so the gate, the pipeline and
an auditor all read the same rule; the gate is closed by default (a policy that does not compile refuses).

The policy's input::

    {"change": {"id": "CHG-1042", "author": "a.khan", "summary": "..."},
     "signer": {"id": "j.rivera", "name": "J. Rivera", "meaning": "approval"},
     "approvers": ["j.rivera", "m.ito"], "meanings": ["review", "approval", "responsibility"]}

and it returns a set ``deny`` of reasons (strings) in ``package careops.signoff``; an empty set signs.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from careops.audit import AuditEntry, AuditLog, canonical_json
from careops.errors import CareOpsError
from careops.report import theme

PACKAGE = "careops.signoff"
MEANINGS = ("review", "approval", "responsibility")


class SignoffError(CareOpsError):
    """The policy refused a signature, or could not be evaluated."""


def evaluate(policy: str, data: dict[str, Any]) -> list[str]:
    """The policy's ``deny`` set for ``data``, sorted; a policy that does not compile or has no ``deny`` is an error."""
    from regopy import Interpreter

    rego = Interpreter()
    rego.set_input(data)
    where = f"check the policy: `package {PACKAGE}`, `import rego.v1`, a set rule `deny contains msg if {{...}}`"
    try:
        rego.add_module("signoff", policy)
        out = rego.query(f"reasons := data.{PACKAGE}.deny")
        result = json.loads(str(out))
        reasons = result["bindings"]["reasons"]
    except Exception as exc:  # noqa: BLE001 - regopy raises its own error with the compiler's words
        raise SignoffError(f"the sign-off policy could not be evaluated: {str(exc)[:600]}", fix=where) from None
    if not isinstance(reasons, list):
        raise SignoffError(f"the policy's deny is {type(reasons).__name__}, expected a set of reasons", fix=where)
    return sorted(str(r) for r in reasons)


@dataclass(frozen=True)
class Change:
    """A change waiting at the gate: its id, who wrote it, what it does."""

    id: str
    author: str
    summary: str = ""


@dataclass(frozen=True)
class Signature:
    """One electronic signature: who (id and printed name), when, what it means, for which change."""

    change: str
    signer: str
    name: str
    meaning: str
    at: str
    audit_seq: int

    def __str__(self) -> str:
        return f"{self.name} ({self.signer}) signed {self.change} for {self.meaning} at {self.at}"

    def _repr_html_(self) -> str:
        return theme.card(theme.join(["Signature on ", theme.code(self.change)]), theme.esc(str(self)), ok=True)


@dataclass
class Gate:
    """The approval gate: ``sign`` asks the policy, then seals the signature (or the refusal) in the audit log."""

    policy: str
    approvers: list[str]
    audit: AuditLog
    meanings: tuple[str, ...] = MEANINGS
    refusals: list[tuple[str, list[str]]] = field(default_factory=list)

    def decide(self, change: Change, signer: str, meaning: str = "approval", *, name: str = "") -> list[str]:
        """The policy's reasons to refuse (empty: it may sign), without recording anything."""
        return evaluate(self.policy, {
            "change": {"id": change.id, "author": change.author, "summary": change.summary},
            "signer": {"id": signer, "name": name or signer, "meaning": meaning},
            "approvers": list(self.approvers), "meanings": list(self.meanings)})

    def sign(self, change: Change, signer: str, meaning: str = "approval", *, name: str = "",
             now: datetime | None = None) -> Signature:
        """Sign ``change`` as ``signer`` with ``meaning``; a refusal is recorded and raised as SignoffError."""
        reasons = self.decide(change, signer, meaning, name=name)
        at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
        details = {"meaning": meaning, "printed_name": name or signer, "signed_at": at, "author": change.author,
                   "change_digest": _digest(change)}
        if reasons:
            self.audit.append(actor=signer, role="approver", action="change.sign", resource=f"change/{change.id}",
                              outcome="refused", purpose="separation of duties",
                              details={**details, "reasons": reasons})
            self.refusals.append((change.id, reasons))
            raise SignoffError(f"{signer} may not sign {change.id}: {'; '.join(reasons)}",
                               fix="ask an approver on the list who did not write the change")
        entry: AuditEntry = self.audit.append(actor=signer, role="approver", action="change.sign",
                                              resource=f"change/{change.id}", outcome="signed",
                                              purpose="separation of duties", details=details)
        return Signature(change.id, signer, name or signer, meaning, at, entry.seq)


def _digest(change: Change) -> str:
    return hashlib.sha256(canonical_json({"id": change.id, "author": change.author,
                                          "summary": change.summary})).hexdigest()


def signatures(audit: AuditLog, change: str | None = None) -> list[dict[str, Any]]:
    """The signatures (and refusals) recorded for ``change`` (all when None), in log order."""
    rows = []
    for e in audit.entries():
        if e.action == "change.sign" and (change is None or e.resource == f"change/{change}"):
            rows.append({"seq": e.seq, "change": e.resource.removeprefix("change/"), "signer": e.actor,
                         "outcome": e.outcome, **{k: e.details.get(k) for k in ("meaning", "printed_name",
                                                                                 "signed_at", "author")}})
    return rows


def cases_failed(policy: str, cases: Iterable[tuple[str, dict[str, Any], bool]]) -> list[str]:
    """Names of the ``(name, input, should_sign)`` cases the policy decides wrongly (each with what it said)."""
    wrong = []
    for name, data, should_sign in cases:
        reasons = evaluate(policy, data)
        if (not reasons) != should_sign:
            said = "signs" if not reasons else f"refuses ({'; '.join(reasons)})"
            wrong.append(f"{name}: expected {'sign' if should_sign else 'refuse'}, the policy {said}")
    return wrong
