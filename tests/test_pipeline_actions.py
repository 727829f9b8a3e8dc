"""careops.pipeline.actions: the vendored actions, the reference pipeline end to end, the PHI gate."""
from __future__ import annotations

import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from careops import engine
from careops.audit import AuditLog
from careops.lab import Lab, resources
from careops.phi import ALLOW_MARKER, PHI_FIX
from careops.phi.__main__ import main as phi_main
from careops.pipeline import check_policy, run_pipeline
from careops.pipeline.actions import (
    LABEL_PIPELINE_REPO,
    ActionFailed,
    find_action,
    remove_pipeline_images,
    resolve_inputs,
)

FIXTURES = Path(__file__).parent / "fixtures" / "pipeline"
SOLUTION = Path(__file__).resolve().parents[1] / "grading" / "references" / "ci-pipeline" / "ci.yml"
KEY = b"test-key-for-the-pipeline-audit"


def real_looking_ssn() -> str:
    """Built from parts so no SSN-shaped value sits in this file (repo PHI guard)."""
    return "-".join(["123", "45", "6789"])


@pytest.fixture
def repo(tmp_path: Path):
    target = tmp_path / "adt-repo"
    shutil.copytree(FIXTURES / "repo-ok", target)
    yield target
    remove_pipeline_images(target)  # the images this test's pipelines built


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl", key=KEY)


def lines_of(run) -> str:
    return "\n".join(s.log for j in run.jobs.values() for s in j.steps)


# -- no engine needed -----------------------------------------------------------------------
def test_find_action_accepts_any_ref_and_refuses_others():
    assert find_action("actions/checkout@v4").name == "actions/checkout"
    assert find_action("careops/build-image@0123456789abcdef0123456789abcdef01234567") is not None
    assert find_action("actions/setup-python@v5") is None


def test_the_runner_resolves_the_vendored_commit_or_its_tags_offline_and_nothing_else():
    from careops.pipeline.actions import ACTIONS, resolve_ref

    checkout = ACTIONS["actions/checkout"]
    assert checkout.commit == "11bd71901bbe5b1630ceea73d27597364c9af683" and checkout.version == "v4.2.2"
    for ref in (checkout.commit, "v4", "v4.2.2"):
        assert resolve_ref(checkout, f"actions/checkout@{ref}") == checkout.commit
    for action in ACTIONS.values():
        assert re.fullmatch(r"[0-9a-f]{40}", action.commit) and action.pinned.startswith(f"{action.name}@")
    with pytest.raises(ActionFailed, match="cannot be resolved here") as info:
        resolve_ref(checkout, "actions/checkout@0123456789abcdef0123456789abcdef01234567")
    assert checkout.pinned in (info.value.fix or "")
    with pytest.raises(ActionFailed, match="@main cannot be resolved"):
        resolve_ref(ACTIONS["careops/phi-scan"], "careops/phi-scan@main")


def test_required_input_missing_is_a_clear_error():
    with pytest.raises(ActionFailed, match="needs the input 'image'"):
        resolve_inputs(find_action("careops/deploy-staging@v1"), {})
    assert resolve_inputs(find_action("careops/deploy-staging@v1"), {"image": "x"})["port"] == "8081"


def test_phi_command_exit_codes(tmp_path, capsys):
    clean = tmp_path / "clean.hl7"
    clean.write_text("PID|1||SYN-0001||Testperson^Alex||||||||555-0100\n")
    assert phi_main([str(clean)]) == 0
    dirty = tmp_path / "dirty.log"
    dirty.write_text(f"patient ssn {real_looking_ssn()}\n")
    assert phi_main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 possible PHI" in out and real_looking_ssn() not in out  # reported masked
    assert phi_main([str(tmp_path / "missing")]) == 2


# -- real engine ----------------------------------------------------------------------------
@pytest.mark.docker
@pytest.mark.slow
def test_reference_pipeline_runs_end_to_end_and_deploys_to_staging(repo, audit, tmp_path):
    assert check_policy(SOLUTION).ok
    with Lab("pipeline-staging-test", workdir=repo) as lab:
        run = run_pipeline(SOLUTION, repo, audit=audit, approve="Dr. Chen (change board)", lab=lab, progress=False,
                           on_log=lambda *a: None, junit=tmp_path / "junit.xml")
        assert run.ok, run.summary_text()
        assert list(run.jobs) == ["lint", "test", "phi-scan", "build-image", "deploy-staging"]
        image = run.jobs["build-image"].outputs["image"]
        labels = engine.client().images.get(image).labels
        assert labels[LABEL_PIPELINE_REPO].startswith("adt-repo-")
        url = f"http://127.0.0.1:{lab.container('staging').port(8081)}/health"
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.status == 200
        assert "staging is healthy at http://127.0.0.1:" in lines_of(run)
    assert remove_pipeline_images(repo) == [image]  # the run's image, and only it
    assert remove_pipeline_images(repo) == []
    assert [e.action for e in audit.entries()] == ["pipeline.approval", "pipeline.run"]
    assert lab.closed and not resources.find(lab.name)


@pytest.mark.docker
@pytest.mark.slow
def test_phi_in_fixtures_stops_the_pipeline_before_the_build(repo, audit):
    leaked = f"PID|1||SYN-0002||Doe^Jane||||||||555-0101|||||||{real_looking_ssn()}\n"
    (repo / "tests" / "fixtures" / "adt_a08.hl7").write_text(leaked)
    run = run_pipeline(SOLUTION, repo, audit=audit, approve="Dr. Chen", progress=False, on_log=lambda *a: None)
    assert run.status == "failure"
    assert run.jobs["lint"].status == run.jobs["test"].status == "success"
    scan = run.jobs["phi-scan"]
    assert scan.status == "failure" and "possible PHI" in scan.steps[-1].message
    assert "adt_a08.hl7" in scan.steps[-1].log and real_looking_ssn() not in lines_of(run)
    # the fix is said once, in one wording, and it is to fix the data, not to weaken the gate
    assert scan.steps[-1].log.count("fix:") == 1 and PHI_FIX in scan.steps[-1].log
    assert ALLOW_MARKER not in scan.steps[-1].log
    assert run.jobs["build-image"].status == "skipped" and run.jobs["deploy-staging"].status == "skipped"
    assert [e.action for e in audit.entries()] == ["pipeline.run"]  # the gate was never reached


ENGINE_ACTIONS = """\
name: engine-actions
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: 2
    outputs:
      image: ${{ steps.build.outputs.image }}
    steps:
      - id: build
        uses: careops/build-image@v1
        timeout-minutes: BUILD_MINUTES
      - uses: careops/scan-image@v1
        with:
          image: ${{ steps.build.outputs.image }}
  deploy:
    needs: build
    runs-on: ubuntu-latest
    timeout-minutes: 0.15
    steps:
      - uses: careops/deploy-staging@v1
        with:
          image: ${{ needs.build.outputs.image }}
          port: "8081"
"""


def run_engine_actions(repo: Path, audit: AuditLog, dockerfile: str, build_minutes: float = 1.5):
    (repo / "Dockerfile").write_text(dockerfile)
    wf = repo.parent / "engine.yml"
    wf.write_text(ENGINE_ACTIONS.replace("BUILD_MINUTES", str(build_minutes)))
    return run_pipeline(wf, repo, audit=audit, progress=False, on_log=lambda *a: None)


@pytest.mark.docker
def test_build_without_its_base_image_fails_clearly(repo, audit):
    run = run_engine_actions(repo, audit, "FROM careops/not-on-this-engine:1\nCMD [\"true\"]\n")
    step = run.jobs["build"].steps[0]
    assert step.status == "failure" and "build failed" in step.message
    assert "FROM image must be on this engine" in step.log
    assert run.jobs["build"].steps[1].status == "skipped" and run.jobs["deploy"].status == "skipped"


@pytest.mark.docker
def test_scan_image_refuses_a_root_image(repo, audit):
    run = run_engine_actions(repo, audit, "FROM careops/base:bookworm\nENV API_TOKEN=abc\nCMD [\"sleep\", \"60\"]\n")
    build, scan = run.jobs["build"].steps
    assert build.status == "success" and scan.status == "failure"
    assert "runs as root" in scan.message and "API_TOKEN" in scan.message
    assert run.jobs["deploy"].status == "skipped"


@pytest.mark.docker
@pytest.mark.slow
def test_deploy_fails_when_health_never_answers(repo, audit):
    run = run_engine_actions(repo, audit, "FROM careops/base:bookworm\nUSER 10001\nCMD [\"sleep\", \"600\"]\n")
    assert run.jobs["build"].status == "success"
    deploy = run.jobs["deploy"].steps[0]
    assert deploy.status in ("failure", "timed-out") and "did not answer 200 on /health" in deploy.message
    assert not resources.find(run.lab_name)  # the run's own lab (and the staging container) is gone


@pytest.mark.docker
def test_build_is_stopped_at_its_time_limit(repo, audit):
    run = run_engine_actions(repo, audit, "FROM careops/base:bookworm\nRUN sleep 121\n", build_minutes=0.1)
    step = run.jobs["build"].steps[0]
    assert step.status == "timed-out" and "did not finish within 6 s" in step.message
    assert run.jobs["build"].status == "failure"
    still_building = [c for c in engine.client().containers.list()
                      if "sleep 121" in " ".join(c.attrs["Config"].get("Cmd") or [])]
    assert still_building == []  # the RUN step was killed, not left running in the engine
