"""careops.pipeline: validate and run a learner's GitHub Actions workflow locally, in containers.

    from careops.pipeline import load_workflow, check_policy, run_pipeline, approve, deny, history

* ``load_workflow(path)``: YAML with line numbers, the official schema (offline),
  the runner's subset, the ``needs`` graph; one WorkflowError lists every problem.
* ``check_policy(workflow)``: the course's rules (required jobs and order, timeouts,
  least privilege, approval, no secret echo, pinned actions, PHI gate).
* ``run_pipeline(workflow, repo)``: one container per job (careops/ci-runner), steps in
  order, vendored actions, approval gate, JUnit XML, audit log (careops.audit).
* ``history()`` / ``job_durations()`` / ``plot_durations()``: past runs from the audit log.
"""
from careops.pipeline.actions import remove_pipeline_images
from careops.pipeline.approval import Approval, ApprovalError, approve, deny
from careops.pipeline.bench import bench_overhead
from careops.pipeline.history import history, job_durations, plot_durations
from careops.pipeline.junit import junit_xml, write_junit
from careops.pipeline.policy import RULES, PolicyReport, check_policy
from careops.pipeline.results import JobResult, StepResult
from careops.pipeline.runner import (
           PipelineRun,
           default_audit_path,
           run_pipeline,
)
from careops.pipeline.workflow import (
           Workflow,
           WorkflowError,
           load_workflow,
           validate_text,
           workflow_or_problems,
)

__all__ = [
           "RULES",
           "Approval",
           "ApprovalError",
           "JobResult",
           "PipelineRun",
           "PolicyReport",
           "StepResult",
           "Workflow",
           "WorkflowError",
           "approve",
           "bench_overhead",
           "check_policy",
           "default_audit_path",
           "deny",
           "history",
           "job_durations",
           "junit_xml",
           "load_workflow",
           "plot_durations",
           "remove_pipeline_images",
           "run_pipeline",
           "validate_text",
           "workflow_or_problems",
           "write_junit",
]
