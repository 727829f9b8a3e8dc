"""Run a workflow locally the way nektos/act does: one container per job, steps in order.

Semantics (what the tests prove):

* jobs run one at a time in ``needs`` order; a job whose needed jobs did not
  all succeed is skipped unless its ``if:`` uses ``always()`` or ``failure()``;
* a job's ``failure()`` is true when any job it (transitively) needs failed, as on GitHub;
* ``run:`` uses ``bash -e`` (``shell: bash`` adds pipefail), or ``shell: sh`` / ``python``;
* steps run in order; the first failed step fails the job and the later steps
  are skipped unless their ``if:`` asks for ``failure()`` / ``always()``;
  ``continue-on-error: true`` lets a failed step count as passed;
* ``env`` merges workflow -> job -> step; ``defaults.run`` gives ``shell`` and
  ``working-directory``; ``${{ }}`` is evaluated as careops.pipeline.expressions says;
* a step is killed at its ``timeout-minutes`` (and at what is left of the job's)
  and reported as timed out; ``$GITHUB_OUTPUT`` and ``$GITHUB_ENV`` work;
* a job with ``environment:`` waits for an approval (careops.pipeline.approval);
* every run and approval is one line in a hash-chained audit log.
"""
from __future__ import annotations

import contextlib
import re
import secrets
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import docker.errors
import requests

from careops import engine, paths
from careops.audit import AuditLog
from careops.errors import CareOpsError
from careops.lab import Lab
from careops.lab import labels as L
from careops.pipeline import actions as A
from careops.pipeline.approval import DEFAULT_APPROVAL_TIMEOUT, Approval, ApprovalError
from careops.pipeline.expressions import (
    Context,
    ExpressionError,
    evaluate_condition,
    interpolate,
    to_text,
)
from careops.pipeline.jobcontainer import (
    CI_RUNNER_IMAGE,
    WORKSPACE,
    start_job_container,
)
from careops.pipeline.junit import write_junit
from careops.pipeline.results import JobResult, StepResult
from careops.pipeline.workflow import Job, Step, Workflow, load_workflow
from careops.progress import Progress, write_line
from careops.report import theme

LogCallback = Callable[[str, str, str], None]  # (job id, step name, line)
#: Characters of each step's log kept in the result (the tail; the stream shows all).
LOG_KEEP = 64_000
PASSED = ("success",)


def default_audit_path() -> Path:
    """Where runs and approvals are recorded unless told otherwise (kept by `make clean`)."""
    return paths.workspace_dir() / ".careops" / "pipeline-audit.jsonl"


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _actor() -> str:
    return L.learner_name()


def _print_log(job: str, step: str, line: str) -> None:
    write_line(f"[{job}] {line}")


class PipelineRun:
    """A run of one workflow on one repo; ends ``success``/``failure``/``denied``/``not-approved``
    or pauses at ``waiting-approval`` (continue with approve(run, who=...) or deny(...))."""

    def __init__(self, workflow: Workflow, repo: Path, *, lab: Lab | None, audit: AuditLog,
                 on_log: LogCallback | None, progress: bool, image: str, actor: str,
                 approval_timeout: float, junit: Path | None, event: str = "push") -> None:
        self.workflow = workflow
        self.repo = repo
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        self.audit = audit
        self.on_log = on_log or _print_log
        self.progress = progress
        self.image = image
        self.actor = actor
        self.approval_timeout = approval_timeout
        self.junit_path = junit
        self.event = event
        self.started_at = _now_iso()
        self.finished_at: str | None = None
        self.status = "running"
        self.waiting_for: str | None = None
        self.paused_at: float | None = None
        self.approvals: list[Approval] = []
        self.jobs: dict[str, JobResult] = {
            j: JobResult(j, workflow.jobs[j].name, environment=workflow.jobs[j].environment)
            for j in workflow.order()}
        self._pre_approved: str | None = None
        self._own_lab = lab is None
        self._lab = lab
        self._started_monotonic = time.monotonic()
        self._active_seconds = 0.0
        self.audit_entry_hash: str | None = None

    # -- public ---------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def seconds(self) -> float:
        """Time spent running jobs (a pause at a gate does not count)."""
        return self._active_seconds

    def decide(self, decision: str, *, who: str, note: str = "") -> PipelineRun:
        """Record a decision at the gate this run waits at, then continue (see approval.approve/deny)."""
        if self.status != "waiting-approval" or self.waiting_for is None:
            raise ApprovalError(f"run {self.run_id} is not waiting for an approval (it is {self.status})",
                                fix="approve a run whose summary says 'waiting-approval'")
        job = self.waiting_for
        if decision == "approved" and self.paused_at is not None \
                and time.monotonic() - self.paused_at > self.approval_timeout:
            decision, note = "expired", (f"approval by {who} came after the {self.approval_timeout:g} s limit; "
                                         + note).strip()
        self._record_approval(job, decision, who, note)
        res = self.jobs[job]
        if decision == "approved":
            res.status, res.message = "pending", ""
        else:
            res.status = "denied" if decision == "denied" else "not-approved"
            res.message = f"{decision} by {who}" + (f": {note}" if note else "")
        self.waiting_for, self.paused_at = None, None
        self.status = "running"
        return self._advance()

    def stop_waiting(self, reason: str = "no approval was given") -> PipelineRun:
        """End a run paused at a gate without a decision (the CLI without --approve): the job does not run."""
        if self.status == "waiting-approval" and self.waiting_for:
            res = self.jobs[self.waiting_for]
            res.status, res.message = "not-approved", reason
            self.waiting_for = None
            self.status = "running"
            return self._advance()
        return self

    # -- running --------------------------------------------------------------------------
    def _lab_for_jobs(self) -> Lab:
        if self._lab is None or self._lab.closed:
            # one lab per run: two runs (two notebooks, a test and a notebook) never reclaim each other's jobs
            # A network only for a staging deployment (published on this host): job containers need none, and
            # creating and removing a lab network costs more than the rest of a short job.
            self._lab = Lab(self.lab_name, workdir=self.repo, reclaim=False,  # a new name: nothing to reclaim
                            network=self._deploys_to_staging())
        return self._lab

    def _deploys_to_staging(self) -> bool:
        actions = (A.find_action(str(step.uses)) for job in self.workflow.jobs.values() for step in job.steps
                   if step.uses)
        return any(action is not None and action.name in A.NEEDS_LAB_NETWORK for action in actions)

    @property
    def lab_name(self) -> str:
        """The lab job containers run in: ``ci-<run id>`` unless a lab was given."""
        return self._lab.name if self._lab is not None and not self._own_lab else f"ci-{self.run_id}"

    def _advance(self) -> PipelineRun:
        bar = Progress(f"pipeline {self.run_id}", total=sum(len(self.workflow.jobs[j].steps) for j in self.jobs),
                       unit="step", enabled=self.progress, leave=True,
                       initial=sum(len(r.steps) for r in self.jobs.values() if r.status != "pending"))
        t0 = time.monotonic()
        ok = False
        try:
            for job_id, res in self.jobs.items():
                if res.status != "pending":
                    continue
                job = self.workflow.jobs[job_id]
                reason = self._should_skip(job)
                if reason:
                    res.status, res.message = "skipped", reason
                    res.steps = [StepResult(job_id, s.index, s.name, "skipped", line=s.line) for s in job.steps]
                    bar.advance(len(job.steps), f"{job_id}: skipped ({reason})")
                    continue
                if job.environment and not self._gate_open(job):
                    res.status = "waiting-approval"
                    res.message = (f"waits for approval to deploy to '{job.environment}': "
                                   f"approve(run, who=...) or deny(run, who=..., reason=...)")
                    self.status, self.waiting_for, self.paused_at = "waiting-approval", job_id, time.monotonic()
                    self.on_log(job_id, "", f"waiting for approval ({job.environment}); nothing runs until "
                                            "someone approves")
                    ok = True
                    return self
                self._run_job(job, res, bar)
            ok = True
        except BaseException:  # Ctrl-C / kernel interrupt, or the engine went away: record it, clean up, re-raise
            for r in self.jobs.values():
                if r.status in ("running", "pending"):
                    r.status, r.message = "cancelled", "the run was interrupted"
            with contextlib.suppress(Exception):
                self._finish(cancelled=True)
            raise
        finally:
            # the bar's verdict is the run's: a run whose jobs failed ends red, a paused one without a verdict
            failed = [j for j, r in self.jobs.items() if r.status in ("failure", "timed-out", "cancelled")]
            if self.status == "waiting-approval":
                bar.close(ok=None if ok else False, text="paused for approval")
            else:
                bar.close(ok=ok and not failed, text=f"{', '.join(failed)} failed" if failed else "")
            self._active_seconds += time.monotonic() - t0
        self._finish()
        return self

    def _should_skip(self, job: Job) -> str:
        needs = {n: self.jobs[n] for n in job.needs}
        failed = [n for n, r in needs.items() if r.status not in PASSED]
        # as on GitHub: failure() is true when any ancestor job failed; skipped ones alone make both false
        broken = any(self.jobs[a].status in ("failure", "cancelled") for a in self.workflow.ancestors(job.id))
        ctx = self._context(job, job_status="failure" if broken else "skipped" if failed else "success")
        try:
            run = evaluate_condition(job.data.get("if"), ctx)
        except ExpressionError as exc:
            return f"if: {exc.message}"
        if not run:
            return (f"needs {', '.join(f'{n} ({needs[n].status})' for n in failed)}" if failed
                    else f"if: {job.data.get('if')} is false")
        return ""

    def _gate_open(self, job: Job) -> bool:
        if any(a.job == job.id and a.decision == "approved" for a in self.approvals):
            return True
        if self._pre_approved:
            self._record_approval(job.id, "approved", self._pre_approved, "approved in advance (--approve)")
            return True
        return False

    def _record_approval(self, job_id: str, decision: str, who: str, note: str) -> None:
        env = self.workflow.jobs[job_id].environment or ""
        approval = Approval(job_id, env, who, decision, _now_iso(), note)
        self.approvals.append(approval)
        self.jobs[job_id].approval = approval
        self.audit.append(actor=who, role="approver", action="pipeline.approval",
                          resource=f"pipeline/{self.run_id}/{job_id}", outcome=decision,
                          purpose=f"deploy to {env}", source="careops pipeline (local runner)",
                          details={"run_id": self.run_id, "workflow": self.workflow.name, "job": job_id,
                                   "environment": env, "note": note})

    def _context(self, job: Job, *, job_status: str = "success", env: dict[str, str] | None = None,
                 steps: dict[str, dict[str, Any]] | None = None) -> Context:
        github = {"event_name": self.event, "ref": "refs/heads/main", "ref_name": "main", "sha": "0" * 40,
                  "repository": f"local/{self.repo.name}", "workspace": WORKSPACE, "run_id": self.run_id,
                  "run_number": 1, "run_attempt": 1, "job": job.id, "actor": self.actor,
                  "workflow": self.workflow.name, "server_url": "http://localhost"}
        needs = {n: {"result": self.jobs[n].status if self.jobs[n].status in ("success", "failure", "skipped")
                     else "skipped", "outputs": dict(self.jobs[n].outputs)} for n in job.needs}
        return Context(env=dict(env or {}), github=github, steps=steps or {}, needs=needs, job_status=job_status)

    def _base_env(self, job: Job) -> dict[str, str]:
        return {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": WORKSPACE, "GITHUB_RUN_ID": self.run_id,
                "GITHUB_JOB": job.id, "GITHUB_WORKFLOW": self.workflow.name, "GITHUB_EVENT_NAME": self.event,
                "GITHUB_REPOSITORY": f"local/{self.repo.name}", "GITHUB_REF": "refs/heads/main",
                "GITHUB_ACTOR": self.actor, "RUNNER_OS": "Linux", "RUNNER_TEMP": "/tmp"}

    def _run_job(self, job: Job, res: JobResult, bar: Progress) -> None:
        started = time.monotonic()
        deadline = started + job.timeout_minutes * 60
        res.status = "running"
        steps_ctx: dict[str, dict[str, Any]] = {}
        env: dict[str, str] = {}
        failed = False
        defaults = {**((self.workflow.data.get("defaults") or {}).get("run") or {}),
                    **((job.data.get("defaults") or {}).get("run") or {})}
        container = None
        try:
            ctx = self._context(job, env=env)
            for scope in (self.workflow.data.get("env") or {}, job.data.get("env") or {}):
                for k, v in scope.items():
                    env[k] = to_text(interpolate(v, ctx))
                    ctx.env = dict(env)
            container = start_job_container(self._lab_for_jobs(), job.id, repo=self.repo, image=self.image)
            for step in job.steps:
                bar.step(f"{job.id}: {step.name}")
                sr = StepResult(job.id, step.index, step.name, line=step.line)
                res.steps.append(sr)
                ctx = self._context(job, job_status="failure" if failed else "success", env=env, steps=steps_ctx)
                try:
                    should_run = evaluate_condition(step.data.get("if"), ctx)
                except ExpressionError as exc:
                    sr.status, sr.message, failed = "failure", f"if: {exc.message}", True
                    bar.advance(1)
                    continue
                left = deadline - time.monotonic()
                if not should_run or left <= 0:
                    sr.status = "skipped"
                    sr.message = "job time limit reached" if left <= 0 and should_run else "if: condition false"
                    if step.id:
                        steps_ctx[step.id] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
                    bar.advance(1)
                    continue
                outputs, new_env = self._run_step(job, step, sr, ctx, env, container, left, defaults)
                env.update(new_env)
                outcome = "success" if sr.status == "success" else "failure"
                conclusion = "success" if step.data.get("continue-on-error") is True else outcome
                if outcome != "success" and conclusion == "success":
                    sr.message = (sr.message + " (continue-on-error: the job goes on)").strip()
                if step.id:
                    steps_ctx[step.id] = {"outcome": outcome, "conclusion": conclusion, "outputs": outputs}
                if conclusion != "success":
                    failed = True
                bar.advance(1)
            if time.monotonic() > deadline and not failed:
                failed = True
                res.message = f"job exceeded its timeout-minutes ({job.timeout_minutes:g})"
            ctx = self._context(job, job_status="failure" if failed else "success", env=env, steps=steps_ctx)
            try:
                res.outputs = {k: to_text(interpolate(v, ctx)) for k, v in (job.data.get("outputs") or {}).items()}
            except ExpressionError as exc:
                failed, res.message = True, f"outputs: {exc.message}"
        except CareOpsError as exc:
            failed = True
            res.message = str(exc)
            self.on_log(job.id, "", f"the job could not run: {exc}")
        finally:
            if container is not None:
                container.remove()
            res.seconds = time.monotonic() - started
        if not res.message and failed:
            bad = next((s for s in res.steps if s.status in ("failure", "timed-out")), None)
            res.message = f"step {bad.index + 1} '{bad.name}' {bad.status}" if bad else "failed"
        res.status = "failure" if failed else "success"

    def _run_step(self, job: Job, step: Step, sr: StepResult, ctx: Context, env: dict[str, str], container: Any,
                  left: float, defaults: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
        started = time.monotonic()
        limit = left
        if step.timeout_minutes is not None:
            limit = min(limit, step.timeout_minutes * 60)
        kept: list[str] = []
        size = [0]

        def log(line: str) -> None:
            kept.append(line)
            size[0] += len(line) + 1
            while size[0] > LOG_KEEP and len(kept) > 1:
                size[0] -= len(kept.pop(0)) + 1
            self.on_log(job.id, step.name, line)

        outputs: dict[str, str] = {}
        new_env: dict[str, str] = {}
        try:
            step_env = dict(env)
            for k, v in (step.data.get("env") or {}).items():
                step_env[k] = to_text(interpolate(v, Context(**{**ctx.__dict__, "env": step_env})))
            ctx = Context(**{**ctx.__dict__, "env": step_env})
            workdir_rel = to_text(interpolate(step.data.get("working-directory", defaults.get("working-directory", "")),
                                              ctx))
            workdir = workdir_rel if workdir_rel.startswith("/") else f"{WORKSPACE}/{workdir_rel}".rstrip("/")
            full_env = {**self._base_env(job), **step_env}
            if step.run is not None:
                script = to_text(interpolate(step.run, ctx))
                shell = step.data.get("shell") or defaults.get("shell")
                # GitHub's own defaults: no shell given -> bash -e; `shell: bash` -> also pipefail
                argv = {None: ["bash", "-e", "-c", script],
                        "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                        "sh": ["sh", "-e", "-c", script], "python": ["python", "-c", script]}[shell]
                files = "GITHUB_OUTPUT" in script or "GITHUB_ENV" in script
                if files:
                    full_env["GITHUB_OUTPUT"] = f"/tmp/careops-step-{step.index}.output"
                    full_env["GITHUB_ENV"] = f"/tmp/careops-step-{step.index}.env"
                # cd in a wrapper (not the exec's workdir) so a missing folder is a clear step failure
                cd_script = ('cd "$1" 2>/dev/null || { echo "working-directory $1 does not exist" >&2; exit 2; }; '
                             'shift; exec "$@"')
                cd = ["sh", "-c", cd_script, "cd", workdir]
                result = container.exec_stream([*cd, *argv], env=full_env, timeout=limit, on_line=log)
                sr.exit_code = result.exit_code
                if result.timed_out:
                    sr.status = "timed-out"
                    sr.message = (f"killed at its time limit of {limit:g} s (timeout-minutes: "
                                  f"{step.timeout_minutes if step.timeout_minutes is not None else job.timeout_minutes:g})")
                    log(f"##[error] {sr.message}")
                elif result.exit_code != 0:
                    sr.status = "failure"
                    sr.message = f"exited {result.exit_code}, expected 0"
                    log(f"##[error] process completed with exit code {result.exit_code}")
                else:
                    sr.status = "success"
                if files and sr.status == "success":
                    outputs, new_env = self._read_step_files(container, step.index)
            else:
                action = A.find_action(str(step.uses))
                assert action is not None  # load_workflow refused unknown actions
                try:
                    log(f"{action.name}: the vendored commit {A.resolve_ref(action, str(step.uses))[:12]}")
                    inputs = A.resolve_inputs(action, interpolate(step.data.get("with") or {}, ctx))
                    call = A.ActionCall(inputs=inputs, container=container, lab=self._lab_for_jobs(), repo=self.repo,
                                        run_id=self.run_id, timeout=limit, env=full_env, workdir=workdir, log=log)
                    outputs = action.run(call)
                    sr.status = "success"
                except A.ActionFailed as exc:
                    sr.status = "timed-out" if "did not finish within" in exc.message else "failure"
                    sr.message = exc.message.splitlines()[0]
                    log(f"##[error] {exc}")
        except (ExpressionError, CareOpsError) as exc:
            sr.status, sr.message = "failure", exc.message.splitlines()[0]
            log(f"##[error] {exc}")
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            sr.status, sr.message = "failure", f"the engine failed this step: {type(exc).__name__}: {exc}"[:300]
            log(f"##[error] {sr.message}")
        sr.seconds = time.monotonic() - started
        sr.log = "\n".join(kept)
        return outputs, new_env

    @staticmethod
    def _read_step_files(container: Any, index: int) -> tuple[dict[str, str], dict[str, str]]:
        found: list[dict[str, str]] = []
        for suffix in ("output", "env"):
            res = container.exec_stream(["sh", "-c", f"cat /tmp/careops-step-{index}.{suffix} 2>/dev/null || true"],
                                        timeout=10)
            found.append(parse_key_values(res.output))
        return found[0], found[1]

    # -- finishing ------------------------------------------------------------------------
    def _finish(self, *, cancelled: bool = False) -> None:
        statuses = [r.status for r in self.jobs.values()]
        if cancelled:
            self.status = "cancelled"
        elif "failure" in statuses:
            self.status = "failure"
        elif "denied" in statuses:
            self.status = "denied"
        elif "not-approved" in statuses:
            self.status = "not-approved"
        else:
            self.status = "success"
        self.finished_at = _now_iso()
        if self._own_lab and self._lab is not None and not self._lab.closed:
            self._lab.close()
        entry = self.audit.append(
            actor=self.actor, role="developer", action="pipeline.run", resource=f"pipeline/{self.run_id}",
            outcome=self.status, purpose="continuous integration", source="careops pipeline (local runner)",
            details={"run_id": self.run_id, "workflow": self.workflow.name, "repo": self.repo.name,
                     "started": self.started_at, "seconds": round(self.seconds, 3),
                     "jobs": {j: {"status": r.status, "seconds": round(r.seconds, 3),
                                  "steps": [[s.name, s.status, round(s.seconds, 3)] for s in r.steps]}
                              for j, r in self.jobs.items()},
                     "approvals": [{"job": a.job, "who": a.who, "decision": a.decision} for a in self.approvals]})
        self.audit_entry_hash = entry.hash
        if self.junit_path is not None:
            write_junit(self, self.junit_path)

    # -- views ----------------------------------------------------------------------------
    def summary(self):  # -> pandas.DataFrame
        """One row per step: job, step, status, seconds, message."""
        import pandas as pd

        rows = [{"job": r.id, "job_status": r.status, "step": s.name, "status": s.status,
                 "seconds": round(s.seconds, 2), "message": s.message}
                for r in self.jobs.values() for s in (r.steps or [StepResult(r.id, -1, "(no steps run)", r.status,
                                                                               message=r.message)])]
        return pd.DataFrame(rows, columns=["job", "job_status", "step", "status", "seconds", "message"])

    def summary_text(self) -> str:
        """The run summary as plain text (what the CLI prints)."""
        lines = [f"pipeline {self.workflow.name} run {self.run_id}: {self.status.upper()} ({self.seconds:.1f} s)"]
        for r in self.jobs.values():
            lines.append(f"  {_MARK.get(r.status, '?')} {r.id:<20} {r.status:<16} {r.seconds:6.1f} s"
                         + (f"  {r.message}" if r.message else ""))
            for s in r.steps:
                lines.append(f"      {_MARK.get(s.status, '?')} {s.name[:48]:<48} {s.status:<10} {s.seconds:6.1f} s"
                             + (f"  {s.message}" if s.message else ""))
        for a in self.approvals:
            lines.append(f"  gate {a.job} ({a.environment}): {a.decision} by {a.who} at {a.at}"
                         + (f" -- {a.note}" if a.note else ""))
        if self.status == "waiting-approval":
            lines.append(f"  next: approve(run, who='Your Name') or deny(run, who=..., reason=...) for "
                         f"{self.waiting_for}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<PipelineRun {self.run_id} of {self.workflow.name}: {self.status}>"

    def _repr_html_(self) -> str:
        rows: list[list[Any]] = []
        for r in self.jobs.values():
            rows.append([theme.bold(r.id), theme.state(r.status), theme.seconds(r.seconds), r.message])
            rows += [[theme.indent(s.name), theme.state(s.status), theme.seconds(s.seconds), s.message]
                     for s in r.steps]
        body = theme.table(rows, header=["job / step", "status", "time", "note"])
        body += "".join(a._repr_html_() for a in self.approvals)
        if self.status == "waiting-approval":
            body += theme.para(theme.join([
                theme.bold("Waiting for approval"), " of ", theme.code(self.waiting_for or ""), ": run ",
                theme.code("approve(run, who='Your Name')"), " or ", theme.code("deny(run, who=..., reason=...)"), "."]))
        title = theme.join(["Pipeline ", self.workflow.name, " run ", theme.code(self.run_id)])
        status = theme.join([theme.state(self.status), " ", theme.muted(f"({self.seconds:.1f} s)")])
        ok = True if self.status in PASSED else None if self.status in ("running", "waiting-approval") else False
        return theme.card(title, body, status=status, ok=ok)


_MARK = {"success": "ok", "failure": "XX", "timed-out": "TO", "skipped": "--", "waiting-approval": "..",
         "denied": "NO", "not-approved": "NO", "pending": "  ", "running": ">>"}


def parse_key_values(text: str) -> dict[str, str]:
    """GitHub's $GITHUB_OUTPUT / $GITHUB_ENV format: ``name=value`` lines and ``name<<EOF`` blocks."""
    out: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_-]*)<<(.+)$", line)
        if m:
            end, block = m.group(2), []
            i += 1
            while i < len(lines) and lines[i] != end:
                block.append(lines[i])
                i += 1
            out[m.group(1)] = "\n".join(block)
        elif "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v
        i += 1
    return out


def run_pipeline(workflow: str | Path | Workflow, repo: str | Path, *, approve: str | None = None,
                 lab: Lab | None = None, audit: AuditLog | str | Path | None = None,
                 on_log: LogCallback | None = None, progress: bool = True, image: str = CI_RUNNER_IMAGE,
                 actor: str | None = None, approval_timeout: float = DEFAULT_APPROVAL_TIMEOUT,
                 junit: str | Path | None = None) -> PipelineRun:
    """Validate ``workflow`` and run it on ``repo``; returns the run (paused if a gate waits for approval).

    ``workflow`` is a path (relative paths are looked up in ``repo`` first) or a
    loaded Workflow. ``approve`` approves every gate in advance in that name
    (the CLI's ``--approve NAME``). ``lab``: run job containers (and the staging
    deployment) in this lab, which stays open; by default the run opens its
    own lab ``ci-<run id>`` on ``repo`` and closes it at the end.
    """
    repo_path = Path(repo).expanduser().resolve()
    if not repo_path.is_dir():
        raise CareOpsError(f"repo folder {repo_path} does not exist", fix="pass the folder of your repo copy")
    if isinstance(workflow, Workflow):
        wf = workflow
    else:
        wf_path = Path(workflow)
        if not wf_path.is_absolute() and (repo_path / wf_path).is_file():
            wf_path = repo_path / wf_path
        wf = load_workflow(wf_path)
    if approve is not None and not str(approve).strip():
        raise ApprovalError("--approve needs the approver's name, got an empty one", fix="--approve 'Your Name'")
    engine.client()  # a clear EngineUnavailable before anything else
    log = audit if isinstance(audit, AuditLog) else AuditLog(audit or default_audit_path())
    run = PipelineRun(wf, repo_path, lab=lab, audit=log, on_log=on_log, progress=progress, image=image,
                      actor=actor or _actor(), approval_timeout=approval_timeout,
                      junit=Path(junit) if junit else None)
    run._pre_approved = str(approve).strip() if approve else None
    return run._advance()


__all__ = ["JobResult", "PipelineRun", "StepResult", "default_audit_path", "parse_key_values", "run_pipeline"]
