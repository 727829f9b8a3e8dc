"""The approval gate: a job with ``environment:`` runs only after a named person approves it.

Why: in a hospital, a change reaches staging (and later production) only
when someone accountable says so, and the record says who, when and why.
GitHub does this with environment protection rules; the local runner pauses
the run at such a job and waits for an explicit ``approve(run, who=...)`` (a
notebook call) or ``--approve NAME`` (the CLI). Deny, or no decision within
the approval time limit, means the job does not run. Every decision goes to
the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Self, TypeVar

from careops.errors import CareOpsError
from careops.report import theme

#: Seconds a paused run waits for a decision before its gate expires.
DEFAULT_APPROVAL_TIMEOUT = 3600.0


class ApprovalError(CareOpsError):
    """An approval was asked for a run that is not waiting, or without a name."""


@dataclass(frozen=True)
class Approval:
    """One decision at a gate: who decided what, for which job and environment, when."""

    job: str
    environment: str
    who: str
    decision: str  # approved | denied | expired
    at: str
    note: str = ""

    def _repr_html_(self) -> str:
        body = theme.join([theme.state(self.decision), f" by {self.who} at {self.at}",
                           f" \u2014 {self.note}" if self.note else ""])
        title = theme.join(["Gate ", theme.code(self.job), f" ({self.environment})"])
        return theme.card(title, body, ok=self.decision == "approved")


class AwaitsApproval(Protocol):
    """A run paused at a gate, which records a decision and goes on (``careops.pipeline.runner.PipelineRun``)."""

    def decide(self, decision: str, *, who: str, note: str = "") -> Self: ...


_Run = TypeVar("_Run", bound=AwaitsApproval)


def _check_who(who: str) -> str:
    if not isinstance(who, str) or not who.strip():
        raise ApprovalError(f"an approval needs the name of the person who decides, got {who!r}",
                            fix="pass who='Your Name (role)', e.g. approve(run, who='J. Rivera (change board)')")
    return who.strip()


def approve(run: _Run, *, who: str, note: str = "") -> _Run:
    """Approve the job ``run`` waits at, record it, and continue the run to its end (or the next gate)."""
    return run.decide("approved", who=_check_who(who), note=note)


def deny(run: _Run, *, who: str, reason: str) -> _Run:
    """Refuse the job ``run`` waits at: it does not run (nor what needs it); recorded with the reason."""
    if not isinstance(reason, str) or not reason.strip():
        raise ApprovalError("a denial needs a reason, got none", fix="pass reason='why this change may not go on'")
    return run.decide("denied", who=_check_who(who), note=reason.strip())
