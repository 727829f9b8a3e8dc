"""One container per job, like a GitHub-hosted runner, but a Lab container on this machine.

Why a Lab container: it carries the lab's labels (``careops labs ls/reset``
find it after a crash), its limits, no network at all (the run's lab has a
private network without a route out only when the workflow deploys to
staging), dropped capabilities and no engine socket. The repo enters only as a
read-only bind mount; ``actions/checkout`` copies it to a writable workspace.
Steps run with ``LabContainer.exec_stream`` (lines streamed, killed at the limit).
"""
from __future__ import annotations

from pathlib import Path

from careops.images.catalog import CI_RUNNER_IMAGE
from careops.lab import Lab, LabContainer

#: Where the repo is bind-mounted read-only in every job container.
REPO_MOUNT = "/careops/repo"
#: The job's writable workspace ($GITHUB_WORKSPACE), filled by actions/checkout.
WORKSPACE = "/github/workspace"
JOB_MEMORY = "1g"
JOB_CPUS = 1.0
JOB_PIDS = 256


def start_job_container(lab: Lab, job_id: str, *, repo: Path, image: str = CI_RUNNER_IMAGE,
                        env: dict[str, str] | None = None) -> LabContainer:
    """A fresh job container in ``lab`` with the repo mounted read-only at REPO_MOUNT."""
    return lab.run(image, name=f"job-{job_id}"[:40].rstrip("-"), command=["sleep", "infinity"],
                   binds={repo: REPO_MOUNT}, env=env or {}, memory=JOB_MEMORY, cpus=JOB_CPUS, pids=JOB_PIDS,
                   labels={"pipeline-job": job_id})  # a lab sets every org.careops.* label itself
