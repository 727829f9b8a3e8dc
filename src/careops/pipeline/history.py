"""A pipeline's history, read back from the audit log: a table and a plot of job durations.

Why from the audit log: it is the record that cannot be quietly edited, so
the history a learner (or an auditor) sees is the history that happened.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from careops.audit import AuditEntry, AuditLog

if TYPE_CHECKING:
    import pandas as pd
    from careops.report.figure import Figure

RUN_ACTION = "pipeline.run"
APPROVAL_ACTION = "pipeline.approval"


def _log(audit: AuditLog | str | Path | None) -> AuditLog:
    if isinstance(audit, AuditLog):
        return audit
    from careops.pipeline.runner import default_audit_path

    return AuditLog(audit or default_audit_path())


def _runs(audit: AuditLog | str | Path | None, workflow: str | None) -> Iterator[AuditEntry]:
    """The audit log's pipeline-run entries (of one workflow, if named), oldest first."""
    log = _log(audit)
    if not log.path.exists():
        return
    for e in log.entries():
        if e.action == RUN_ACTION and (not workflow or e.details.get("workflow") == workflow):
            yield e


def history(audit: AuditLog | str | Path | None = None, *, workflow: str | None = None) -> pd.DataFrame:
    """One row per pipeline run: run_id, when, who, workflow, outcome, seconds, approved_by."""
    import pandas as pd

    rows = [{"run_id": e.details.get("run_id"), "at": e.at, "actor": e.actor, "workflow": e.details.get("workflow"),
             "outcome": e.outcome, "seconds": e.details.get("seconds"),
             "approved_by": ", ".join(a["who"] for a in e.details.get("approvals") or []
                                      if a.get("decision") == "approved")}
            for e in _runs(audit, workflow)]
    frame = pd.DataFrame(rows, columns=["run_id", "at", "actor", "workflow", "outcome", "seconds", "approved_by"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def job_durations(audit: AuditLog | str | Path | None = None, *, workflow: str | None = None) -> pd.DataFrame:
    """One row per job per run (long format): run_id, at, job, status, seconds."""
    import pandas as pd

    rows = [{"run_id": e.details.get("run_id"), "at": e.at, "job": job, "status": data.get("status"),
             "seconds": data.get("seconds")}
            for e in _runs(audit, workflow) for job, data in (e.details.get("jobs") or {}).items()]
    frame = pd.DataFrame(rows, columns=["run_id", "at", "job", "status", "seconds"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def plot_durations(audit: AuditLog | str | Path | None = None, *, workflow: str | None = None) -> Figure:
    """A line per job: seconds per run (jobs that did not run are left out), oldest run first."""
    from careops.report.figure import Figure  # no pyplot: an image everywhere, shown once, no leaked figures

    data = job_durations(audit, workflow=workflow)
    ran = data[data["status"].isin(["success", "failure"])]
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    runs = list(dict.fromkeys(data["run_id"]))
    for job, part in ran.groupby("job", sort=False):
        ax.plot([runs.index(r) + 1 for r in part["run_id"]], part["seconds"], marker="o", label=str(job))
    ax.set_xlabel("run (oldest first)")
    ax.set_ylabel("seconds")
    ax.set_title("Pipeline job durations")
    if not ran.empty:
        ax.legend(fontsize="small")
        ax.set_xticks(range(1, len(runs) + 1))
    else:
        ax.text(0.5, 0.5, "no runs recorded yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig
