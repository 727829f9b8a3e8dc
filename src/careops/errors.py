"""One root exception for everything careops raises on purpose.

Every message says what failed, what was expected and what was found, and
the next step (``fix``), so a learner or an instructor can act on it.
"""
from __future__ import annotations


class CareOpsError(Exception):
    """Root of careops' own errors; ``fix`` says what to do next."""

    exit_code = 1

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.fix}" if self.fix else self.message


class EngineUnavailable(CareOpsError):
    """No container engine answered, or it refused us."""

    exit_code = 3


class ImageBuildError(CareOpsError):
    """An image could not be built; carries the builder's own explanation."""


class LabError(CareOpsError):
    """A lab resource could not be created, found or removed."""


class PolicyViolation(LabError):
    """A lab request breaks the sandbox rules (privileged, host mounts, ...)."""


class QuotaExceeded(PolicyViolation):
    """A lab request would take a learner past their share of a shared host (containers, memory)."""


class BrokerError(LabError):
    """The workshop's lab broker did not answer, or refused who is asking (``status``: its HTTP status, 0: none)."""

    def __init__(self, message: str, *, fix: str | None = None, status: int = 0) -> None:
        super().__init__(message, fix=fix)
        self.status = status


class ExecTimeout(LabError):
    """A command inside a lab container did not finish in time."""


class ExecFailed(LabError):
    """A command inside a lab container exited non-zero."""


class PortInUse(CareOpsError):
    """A port the course needs is taken by another program."""

    exit_code = 4


class ArtifactError(CareOpsError):
    """A tagged artifact cell is missing, unfinished or malformed."""


class SolveError(CareOpsError):
    """An exercise's solution cannot be shown here (unknown exercise, no trusted source, the hub refused)."""


class RouterConfigError(CareOpsError):
    """A router config is malformed or nginx rejected it; the router keeps serving its previous config."""


class RolloutError(CareOpsError):
    """A rollout spec is malformed, or a rollout cannot run (its router or service is gone)."""


class MonitoringError(CareOpsError):
    """A rule file, runbook or metric definition is malformed, or the monitoring lab cannot run
    (Prometheus, the service or the incident drill)."""


class RulesError(MonitoringError):
    """A Prometheus rule file failed ``promtool check rules``: ``problems`` holds each one with its line."""

    def __init__(self, message: str, *, problems: list | None = None, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.problems = list(problems or [])
