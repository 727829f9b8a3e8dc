"""Remove the lab resources a graded run left behind.

Notebooks start containers through the careops Lab API, labelled with the
learner they belong to (``org.careops.learner``). Grading runs under a
throwaway learner id, so everything carrying that label is the grader's to
remove once the grades are in.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

LEARNER_LABEL = "org.careops.learner"


@dataclass
class CleanupReport:
    """What was removed for a learner, and how."""

    learner_id: str
    method: str  # "careops labs reset", "docker SDK" or "nothing to do: ..."
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. why the CLI was not used
    problems: list[str] = field(default_factory=list)  # resources that may be left


def _careops_cli() -> Path | None:
    candidate = Path(sys.executable).parent / "careops"
    if candidate.is_file():
        return candidate
    found = shutil.which("careops")
    return Path(found) if found else None


def remove_learner_labs(
    learner_id: str, *, prefer_cli: bool = True, timeout: float = 120
) -> CleanupReport:
    """Remove every container, network and volume of ``learner_id``.

    Uses ``careops labs reset --learner ID --yes`` when that command works;
    otherwise (it is not there yet, or failed) removes the resources labelled
    ``org.careops.learner=ID`` with the Docker SDK (``prefer_cli=False``: the
    SDK only). Never raises on engine trouble: a cleanup
    problem must not hide the grading result, so it is reported instead.
    """
    if not learner_id or learner_id.strip() != learner_id or "*" in learner_id:
        raise ValueError(f"refusing to clean up learner id {learner_id!r}: expected one exact id")
    report = CleanupReport(learner_id, "careops labs reset")
    cli = _careops_cli() if prefer_cli else None
    if cli is not None:
        try:
            proc = subprocess.run(
                [str(cli), "labs", "reset", "--learner", learner_id, "--yes"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            if proc.returncode == 0:
                return report
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            report.notes.append(f"careops labs reset exited {proc.returncode}: {last}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            report.notes.append(f"careops labs reset did not run: {exc}")
    report.method = "docker SDK"
    _remove_with_docker_sdk(report)
    return report


def _remove_with_docker_sdk(report: CleanupReport) -> None:
    try:
        import docker
        from docker.errors import DockerException, NotFound
    except ImportError as exc:  # pragma: no cover - docker is a course dependency
        report.problems.append(f"docker SDK missing: {exc}")
        return
    label = f"{LEARNER_LABEL}={report.learner_id}"
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except DockerException as exc:
        # No engine answering: nothing can have been started either.
        report.method = f"nothing to do: no container engine answered ({exc.__class__.__name__})"
        return
    try:
        for c in client.containers.list(all=True, filters={"label": label}):
            try:
                c.remove(force=True, v=True)
                report.removed.append(f"container {c.name}")
            except NotFound:
                pass
        for n in client.networks.list(filters={"label": label}):
            try:
                n.remove()
                report.removed.append(f"network {n.name}")
            except NotFound:
                pass
        for v in client.volumes.list(filters={"label": label}):
            try:
                v.remove(force=True)
                report.removed.append(f"volume {v.name}")
            except NotFound:
                pass
    except DockerException as exc:
        report.problems.append(f"could not remove {label} resources: {exc}")
    finally:
        client.close()
