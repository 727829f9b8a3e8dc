"""What a pipeline run records, step by step and job by job: the runner fills these in, the JUnit writer
and the views read them.

Why a module of its own: the runner (which runs jobs), the JUnit writer and the approval gate all speak
about a run's results; with the records here each of them imports downward, and none imports the runner.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from careops.pipeline.approval import Approval
from careops.pipeline.workflow import Workflow


@dataclass
class StepResult:
    """One step: success | failure | timed-out | skipped, with its log tail and why."""

    job: str
    index: int
    name: str
    status: str = "pending"
    seconds: float = 0.0
    exit_code: int | None = None
    log: str = ""
    message: str = ""
    line: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("success", "skipped")


@dataclass
class JobResult:
    """One job: success | failure | skipped | waiting-approval | denied | not-approved."""

    id: str
    name: str
    status: str = "pending"
    seconds: float = 0.0
    steps: list[StepResult] = field(default_factory=list)
    message: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    environment: str | None = None
    approval: Approval | None = None


class RunResults(Protocol):
    """A run's results as reports read them: which workflow, which run, each job in order
    (``careops.pipeline.runner.PipelineRun`` is one)."""

    workflow: Workflow
    run_id: str
    jobs: dict[str, JobResult]


__all__ = ["JobResult", "RunResults", "StepResult"]
