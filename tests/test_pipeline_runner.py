"""careops.pipeline.runner on a real engine: ordering, if:, failure propagation, timeouts, approvals, JUnit, audit."""
from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from careops.apps import pipeline as app
from careops.audit import AuditLog
from careops.lab import resources
from careops.pipeline import (
    ApprovalError,
    WorkflowError,
    approve,
    deny,
    history,
    job_durations,
    plot_durations,
    run_pipeline,
    runner,
)
from careops.pipeline.junit import junit_xml

pytestmark = pytest.mark.docker
FIXTURES = Path(__file__).parent / "fixtures" / "pipeline"
KEY = b"test-key-for-the-pipeline-audit"

SEMANTICS = """\
name: semantics
on: push
permissions:
  contents: read
env:
  LEVEL: workflow
  SHARED: from-workflow
jobs:
  report:
    needs: [build]
    runs-on: ubuntu-latest
    timeout-minutes: 2
    env:
      SHARED: from-job
    steps:
      - run: echo "order report got=${{ needs.build.outputs.answer }}"
      - run: echo "env $LEVEL $SHARED $STEP"
        env:
          STEP: from-step
      - uses: actions/checkout@v4
      - working-directory: sub
        run: echo "pwd $(pwd) note=$(cat note.txt)"
      - run: print("python shell", 6 * 7)
        shell: python
      - run: false | true; echo "no-pipefail-by-default"
      - shell: bash
        continue-on-error: true
        run: false | true; echo "MUST-NOT-RUN-pipefail"
      - run: echo "FROM_ENV_FILE=yes" >> "$GITHUB_ENV"
      - run: echo "env file $FROM_ENV_FILE"
      - name: sandbox
        run: |
          grep -q '^CapEff:\\s*0000000000000000' /proc/self/status
          test ! -e /var/run/docker.sock
          ! touch /careops/repo/written 2>/dev/null
          touch /github/workspace/written
          ! python -c "import socket; socket.create_connection(('192.0.2.1', 53), 2)" 2>/dev/null
          echo sandbox-ok
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    outputs:
      answer: ${{ steps.compute.outputs.value }}
    steps:
      - id: compute
        run: echo "order build"; echo "value=42" >> "$GITHUB_OUTPUT"
"""

FAILURES = """\
name: failures
on: push
jobs:
  first:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo one
      - id: broken
        run: echo "about to fail"; exit 7
      - run: echo "MUST-NOT-RUN-1"
      - if: failure()
        run: echo "failure-handler saw ${{ steps.broken.outcome }}"
      - if: always()
        run: echo always-ran
      - if: success()
        run: echo "MUST-NOT-RUN-2"
  tolerant:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: exit 1
        continue-on-error: true
      - working-directory: no-such-dir
        run: echo "MUST-NOT-RUN-5"
        continue-on-error: true
      - run: echo after-tolerated
  downstream:
    needs: first
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo "MUST-NOT-RUN-3"
  after-downstream:
    needs: downstream
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo "MUST-NOT-RUN-4"
  notify:
    needs: downstream
    if: failure()
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo "notified because an ancestor failed"
  cleanup:
    needs: first
    if: always()
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo "cleanup saw ${{ needs.first.result }}"
"""

TIMEOUTS = """\
name: timeouts
on: push
jobs:
  step-limit:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - timeout-minutes: 0.05
        run: sleep 120 & sleep 120; echo "MUST-NOT-RUN-1"
      - run: echo "MUST-NOT-RUN-2"
  job-limit:
    runs-on: ubuntu-latest
    timeout-minutes: 0.05
    steps:
      - run: sleep 120
      - run: echo "MUST-NOT-RUN-3"
  next:
    needs: step-limit
    runs-on: ubuntu-latest
    timeout-minutes: 1
    steps:
      - run: echo "MUST-NOT-RUN-4"
"""

GATED = """\
name: gated
on: push
permissions:
  contents: read
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo built
  deploy-staging:
    needs: build
    environment: staging
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo "DEPLOYED-TO-STAGING"
"""


class Recorder:
    """Collects streamed log lines in order."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(self, job: str, step: str, line: str) -> None:
        self.lines.append((job, line))

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def index(self, needle: str) -> int:
        return next(i for i, (_, line) in enumerate(self.lines) if needle in line)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    (r / "sub").mkdir(parents=True)
    (r / "sub" / "note.txt").write_text("from-the-repo\n")
    return r


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit" / "pipeline.jsonl", key=KEY)


def run_text(text: str, repo: Path, audit: AuditLog, **kw):
    wf = repo.parent / "ci.yml"
    wf.write_text(text)
    rec = Recorder()
    run = run_pipeline(wf, repo, audit=audit, on_log=rec, progress=False, **kw)
    RUN_LABS.append(run.lab_name)
    return run, rec


def no_pipeline_containers(run=None) -> bool:
    """No job container of ``run`` (or of any run of this test) is left on the engine."""
    labs = {run.lab_name} if run is not None else set(RUN_LABS)
    return not [r for lab in labs for r in resources.find(lab) if r.kind == "container"]


RUN_LABS: list[str] = []


def test_needs_order_env_workdir_outputs_and_sandbox(repo, audit):
    run, rec = run_text(SEMANTICS, repo, audit)
    assert run.ok, run.summary_text()
    assert list(run.jobs) == ["build", "report"]
    assert rec.index("order build") < rec.index("order report got=42")
    assert "env workflow from-job from-step" in rec.text
    assert "pwd /github/workspace/sub note=from-the-repo" in rec.text
    assert "python shell 42" in rec.text
    assert "env file yes" in rec.text
    assert "no-pipefail-by-default" in rec.text and "MUST-NOT-RUN-pipefail" not in rec.text
    assert "sandbox-ok" in rec.text
    assert not (repo / "written").exists()
    assert run.jobs["build"].outputs == {"answer": "42"}
    assert run.lab_name.startswith("ci-") and no_pipeline_containers(run)


def test_failure_stops_the_job_and_skips_dependents(repo, audit, tmp_path):
    run, rec = run_text(FAILURES, repo, audit, junit=tmp_path / "out" / "junit.xml")
    assert run.status == "failure"
    jobs = run.jobs
    assert jobs["first"].status == "failure" and "step 2" in jobs["first"].message
    statuses = [s.status for s in jobs["first"].steps]
    assert statuses == ["success", "failure", "skipped", "success", "success", "skipped"]
    assert jobs["first"].steps[1].exit_code == 7 and "exited 7" in jobs["first"].steps[1].message
    assert "failure-handler saw failure" in rec.text and "always-ran" in rec.text
    assert jobs["tolerant"].status == "success" and "after-tolerated" in rec.text
    assert "working-directory /github/workspace/no-such-dir does not exist" in rec.text
    assert jobs["downstream"].status == "skipped" and "first (failure)" in jobs["downstream"].message
    assert jobs["after-downstream"].status == "skipped"
    assert jobs["notify"].status == "success" and "notified because an ancestor failed" in rec.text
    assert jobs["cleanup"].status == "success" and "cleanup saw failure" in rec.text
    assert "MUST-NOT-RUN" not in rec.text
    # JUnit: a suite per job, a case per step, the failure carries the log tail
    root = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == set(jobs)
    first = suites["first"]
    assert first.get("tests") == "6" and first.get("failures") == "1" and first.get("skipped") == "2"
    failure = first.find("testcase/failure")
    assert failure is not None and "exited 7" in failure.get("message") and "about to fail" in failure.text
    assert suites["downstream"].find("testcase/skipped") is not None
    assert suites["tolerant"].get("failures") == "2"  # a tolerated failure is still reported
    assert root.get("failures") == "3"
    # the audit log has the run with its outcome
    (entry,) = list(audit.entries())
    assert entry.action == "pipeline.run" and entry.outcome == "failure"
    assert entry.details["jobs"]["first"]["status"] == "failure"


def test_steps_and_jobs_are_killed_at_their_timeouts(repo, audit):
    run, rec = run_text(TIMEOUTS, repo, audit)
    step_job, job_job = run.jobs["step-limit"], run.jobs["job-limit"]
    assert step_job.status == "failure"
    assert [s.status for s in step_job.steps] == ["timed-out", "skipped"]
    assert "killed at its time limit of 3 s" in step_job.steps[0].message
    assert job_job.status == "failure" and job_job.steps[0].status == "timed-out"
    assert job_job.steps[1].status == "skipped"
    assert run.jobs["next"].status == "skipped"
    assert "MUST-NOT-RUN" not in rec.text
    assert no_pipeline_containers(run)
    assert "timed-out" in junit_xml(run)


@pytest.mark.parametrize("fixture", ["unsupported-uses.yml", "cycle.yml", "missing-job.yml", "unsupported-key.yml",
                                     "not-yaml.yml"])
def test_bad_workflows_run_nothing(fixture, repo, audit, monkeypatch):
    opened: list[str] = []
    real_lab = runner.Lab
    monkeypatch.setattr(runner, "Lab", lambda name, **kw: opened.append(name) or real_lab(name, **kw))
    with pytest.raises(WorkflowError) as info:
        run_pipeline(FIXTURES / fixture, repo, audit=audit, progress=False)
    assert "line " in str(info.value)
    assert not audit.path.exists()  # no run was recorded: nothing ran
    assert opened == []  # no lab, so no container, was started
    assert app.main(workflow=FIXTURES / fixture, repo=repo, audit=audit.path, progress=False) == 2


def test_approval_gate_waits_then_runs_when_approved(repo, audit):
    run, rec = run_text(GATED, repo, audit)
    assert run.status == "waiting-approval" and run.waiting_for == "deploy-staging"
    assert run.jobs["build"].status == "success"
    assert "DEPLOYED-TO-STAGING" not in rec.text
    assert "approve(run, who=" in run._repr_html_()
    with pytest.raises(ApprovalError):
        approve(run, who="  ")
    approve(run, who="J. Rivera (change board)", note="CAB-42")
    assert run.ok and run.jobs["deploy-staging"].status == "success"
    assert "DEPLOYED-TO-STAGING" in rec.text
    assert run.jobs["deploy-staging"].approval.who == "J. Rivera (change board)"
    with pytest.raises(ApprovalError, match="not waiting"):
        approve(run, who="someone else")
    entries = list(audit.entries())
    assert [(e.action, e.outcome) for e in entries] == [("pipeline.approval", "approved"), ("pipeline.run", "success")]
    assert entries[0].actor == "J. Rivera (change board)" and entries[0].details["note"] == "CAB-42"
    assert entries[1].details["approvals"] == [{"job": "deploy-staging", "who": "J. Rivera (change board)",
                                                "decision": "approved"}]
    assert audit.verify().ok


def test_denied_or_expired_gate_does_not_run_the_job(repo, audit):
    run, rec = run_text(GATED, repo, audit)
    deny(run, who="Privacy Officer", reason="no change ticket")
    assert run.status == "denied" and run.jobs["deploy-staging"].status == "denied"
    assert "no change ticket" in run.jobs["deploy-staging"].message
    assert "DEPLOYED-TO-STAGING" not in rec.text
    run2, rec2 = run_text(GATED, repo, audit, approval_timeout=0)
    approve(run2, who="Late Approver")
    assert run2.status == "not-approved" and run2.jobs["deploy-staging"].approval.decision == "expired"
    assert "DEPLOYED-TO-STAGING" not in rec2.text
    outcomes = [(e.action, e.outcome) for e in audit.entries()]
    assert outcomes == [("pipeline.approval", "denied"), ("pipeline.run", "denied"),
                        ("pipeline.approval", "expired"), ("pipeline.run", "not-approved")]


def test_cli_main_approve_flag_and_missing_approval(repo, audit, tmp_path, capsys):
    wf = tmp_path / "gated.yml"
    wf.write_text(GATED)
    assert app.main(workflow=wf, repo=repo, audit=audit.path, progress=False, quiet=True) == 1
    out = capsys.readouterr().out
    assert "not-approved" in out and "--approve" in out
    summary = tmp_path / "summary.json"
    assert app.main(workflow=wf, repo=repo, audit=audit.path, approve="Dr. Chen", progress=False, quiet=True,
                    junit=tmp_path / "j.xml", summary=summary) == 0
    rows = json.loads(summary.read_text())
    assert {r["job"] for r in rows} == {"build", "deploy-staging"} and all(r["status"] == "success" for r in rows)
    approvals = [e for e in audit.entries() if e.action == "pipeline.approval"]
    assert [(a.actor, a.outcome) for a in approvals] == [("Dr. Chen", "approved")]


def test_history_and_audit_tamper_detection(repo, audit):
    run_text(GATED, repo, audit, approve="Dr. Chen")
    run_text(FAILURES.replace("exit 7", "exit 0"), repo, audit)
    frame = history(audit)
    assert list(frame["outcome"]) == ["success", "success"]
    assert list(frame["workflow"]) == ["gated", "failures"] and frame["approved_by"][0] == "Dr. Chen"
    durations = job_durations(audit)
    assert {"build", "deploy-staging", "first", "cleanup"} <= set(durations["job"])
    fig = plot_durations(audit)
    assert len(fig.axes[0].lines) == len(set(durations[durations["status"] == "success"]["job"]))
    assert audit.verify().ok
    lines = audit.path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3  # approval, run, run

    def verdict(new_lines: list[bytes]) -> list[str]:
        audit.path.write_bytes(b"".join(new_lines))
        return audit.verify().problems

    edited = lines[1].replace(b'"outcome":"success"', b'"outcome":"failure"')
    assert edited != lines[1]
    assert any("line 2" in p and "edited" in p for p in verdict([lines[0], edited, lines[2]]))
    assert any("line 2" in p for p in verdict([lines[0], lines[2]]))  # removed
    assert verdict([lines[0], lines[2], lines[1]])  # reordered
    assert verdict(lines) == []  # the original is fine again


def test_interrupted_run_is_recorded_and_cleaned_up(repo, audit):
    def interrupt(job: str, step: str, line: str) -> None:
        if "order build" in line:
            raise KeyboardInterrupt  # what a notebook's stop button does mid-step

    wf = repo.parent / "ci.yml"
    wf.write_text(SEMANTICS)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(wf, repo, audit=audit, on_log=interrupt, progress=False)
    (entry,) = list(audit.entries())
    assert entry.outcome == "cancelled" and entry.details["jobs"]["report"]["status"] == "cancelled"
    assert not resources.find(f"ci-{entry.details['run_id']}")  # job container and lab network removed


NETWORK_PROBE = """\
name: probe
on: push
permissions:
  contents: read
jobs:
  probe:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    steps:
      - run: echo "interfaces $(ls /sys/class/net | tr '\\n' ' ')"
STAGING
"""


@pytest.mark.docker
def test_a_job_container_has_no_network_unless_the_workflow_deploys_to_staging(repo, audit, monkeypatch):
    """A CI job needs no network (the lab's had no route out anyway): its run's lab gets none, which saves creating
    and removing one per run. A workflow that deploys to staging keeps the lab network (the staging container's
    port is published on this host)."""
    from careops.pipeline import actions

    run, rec = run_text(NETWORK_PROBE.replace("STAGING", ""), repo, audit)
    assert run.ok, run.summary_text()
    assert "interfaces lo " in rec.text, rec.text
    networks: list[str] = []

    def look(call):  # the staging step sees its lab's network, then deploys nothing (the deployment: test_pipeline_actions)
        networks.append(call.lab.network_name)
        return {}

    staging = actions.ACTIONS["careops/deploy-staging"]
    monkeypatch.setitem(actions.ACTIONS, staging.name, dataclasses.replace(staging, run=look))
    staged, rec = run_text(NETWORK_PROBE.replace("STAGING", "      - uses: careops/deploy-staging@v1\n"
                                                            "        with: {image: careops/legacy-adt:v2}"), repo, audit)
    assert staged.ok, staged.summary_text()
    assert "interfaces eth0 lo " in rec.text and networks == [staged._lab.ref.network_name]
    assert no_pipeline_containers(run) and no_pipeline_containers(staged)
