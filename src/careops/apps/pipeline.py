"""`careops pipeline validate|run`: check a workflow, or run it locally in containers.

Exit codes: 0 passed; 1 a job failed, or a gate was denied / not approved, or
a policy rule failed (validate); 2 the workflow cannot be run (not YAML,
off-schema, unsupported, broken needs) -- nothing ran.
"""
from __future__ import annotations

import sys
from pathlib import Path

from careops.errors import CareOpsError
from careops.pipeline.policy import check_policy
from careops.pipeline.runner import run_pipeline
from careops.pipeline.workflow import Workflow, WorkflowError, load_workflow

DEFAULT_WORKFLOW = ".github/workflows/ci.yml"


def _workflow_path(workflow: str | Path | None, repo: str | Path) -> Path:
    path = Path(workflow or DEFAULT_WORKFLOW)
    if not path.is_absolute() and not path.exists() and (Path(repo) / path).exists():
        path = Path(repo) / path
    return path


def _load(workflow: str | Path | None, repo: str | Path) -> tuple[Path, Workflow | None]:
    """The workflow, or None after printing every problem (the caller exits 2: nothing ran)."""
    path = _workflow_path(workflow, repo)
    try:
        return path, load_workflow(path)
    except WorkflowError as exc:
        print(f"careops: {exc}", file=sys.stderr)
        return path, None


def validate_main(*, workflow: str | Path | None = None, repo: str | Path = ".", policy: bool = True) -> int:
    """Validate the workflow (schema, runner subset, needs) and, unless policy=False, the course rules."""
    path, wf = _load(workflow, repo)
    if wf is None:
        return 2
    print(f"{path}: valid workflow, jobs in order: {' -> '.join(wf.order())}")
    if not policy:
        return 0
    report = check_policy(wf)
    print(report)
    return 0 if report.ok else 1


def main(*, workflow: str | Path | None = None, repo: str | Path = ".", approve: str | None = None,
         junit: str | Path | None = None, audit: str | Path | None = None, summary: str | Path | None = None,
         progress: bool = True, quiet: bool = False) -> int:
    """Run the workflow on the repo: logs stream, a summary prints, JUnit/summary files are written if asked.

    ``approve``: approve every gate (``environment:``) in this person's name;
    without it a gated job does not run and the exit code is 1.
    """
    _, wf = _load(workflow, repo)
    if wf is None:
        return 2
    try:
        run = run_pipeline(wf, repo, approve=approve, junit=junit, audit=audit, progress=progress,
                           on_log=(lambda *a: None) if quiet else None)
    except CareOpsError as exc:
        print(f"careops: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1) or 1
    if run.status == "waiting-approval":
        gate = run.waiting_for
        run.stop_waiting(f"no approval given: rerun with --approve 'Your Name' to let {gate} run")
    print(run.summary_text())
    if junit:
        print(f"JUnit XML: {junit}")
    if summary:
        Path(summary).parent.mkdir(parents=True, exist_ok=True)
        run.summary().to_json(summary, orient="records", indent=1)
        print(f"summary: {summary}")
    print(f"audit log: {run.audit.path} (entry {run.audit_entry_hash[:16] if run.audit_entry_hash else '-'})")
    return 0 if run.ok else 1
