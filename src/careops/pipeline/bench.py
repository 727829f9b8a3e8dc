"""How much the local runner costs per job compared with `docker run` of the same steps.

Why: the runner adds a lab (network, limits, labels), one exec per step,
expression evaluation, log streaming and an audit entry. The course promises
that this costs at most 1.5x a plain ``docker run`` doing the same work.
For ``careops bench``: ``bench_overhead()`` returns medians and their ratio.
"""
from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from careops import engine
from careops.audit import AuditLog
from careops.lab.policy import Limits
from careops.pipeline.jobcontainer import (
    CI_RUNNER_IMAGE,
    JOB_CPUS,
    JOB_MEMORY,
    JOB_PIDS,
    REPO_MOUNT,
    WORKSPACE,
)

#: The job both sides run: checkout, then a few small steps of typical CI work.
BENCH_STEPS = ("python -c 'import sys; print(sys.version)'", "ls -la", "python -m careops.phi --help > /dev/null",
               "echo done")


@dataclass(frozen=True)
class OverheadResult:
    """Median seconds of one job through the runner vs `docker run` of the same steps."""

    runner_seconds: float
    docker_run_seconds: float
    repeats: int
    steps: int

    @property
    def ratio(self) -> float:
        return self.runner_seconds / self.docker_run_seconds if self.docker_run_seconds else float("nan")

    def __str__(self) -> str:
        return (f"pipeline job ({self.steps} steps, median of {self.repeats}): {self.runner_seconds:.3f} s vs "
                f"docker run {self.docker_run_seconds:.3f} s = ratio {self.ratio:.2f} (target <= 1.5)")


def _workflow_text() -> str:
    steps = "\n".join(f"      - run: {json.dumps(s)}" for s in BENCH_STEPS)
    return ("name: bench\non: push\npermissions:\n  contents: read\njobs:\n  bench:\n    runs-on: ubuntu-latest\n"
            "    timeout-minutes: 5\n    steps:\n      - uses: actions/checkout@v4\n" + steps + "\n")


def bench_overhead(repeats: int = 5, *, image: str = CI_RUNNER_IMAGE) -> OverheadResult:
    """Median wall time of a one-job pipeline run vs ``docker run --rm`` with the same checkout, steps and limits.

    Runs alternate (reference, runner, reference, ...) so a busy machine slows both alike.
    """
    from careops.pipeline.runner import run_pipeline
    from careops.pipeline.workflow import load_workflow

    cl = engine.client()
    # the same resource limits as a job container: the ratio is the runner's overhead, not the sandbox's quota
    job_limits = Limits.from_values(JOB_MEMORY, JOB_CPUS, JOB_PIDS)
    with tempfile.TemporaryDirectory(prefix="careops-bench-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        (repo / "README.md").write_text("bench repo\n")
        (repo / "app.py").write_text("print('hello')\n")
        script = " && ".join([f"cp -a {REPO_MOUNT}/. {WORKSPACE}/", f"cd {WORKSPACE}", *BENCH_STEPS])

        def plain() -> None:
            out = cl.containers.run(image, ["bash", "-eo", "pipefail", "-c", script], remove=True,
                                    volumes={str(repo): {"bind": REPO_MOUNT, "mode": "ro"}},
                                    labels={"org.careops.bench": "1"}, stdout=True, stderr=True,
                                    **job_limits.host_config())
            assert out is not None

        wf = load_workflow("bench.yml", text=_workflow_text())
        audit = AuditLog(Path(tmp) / "audit.jsonl", key=b"bench")

        def through_runner() -> None:
            run = run_pipeline(wf, repo, audit=audit, progress=False, on_log=lambda *a: None, image=image)
            if not run.ok:
                raise RuntimeError(f"bench pipeline failed:\n{run.summary_text()}")

        plain()  # warm the page cache for both sides
        through_runner()
        reference, measured = [], []
        for _ in range(repeats):
            t = time.perf_counter()
            plain()
            reference.append(time.perf_counter() - t)
            t = time.perf_counter()
            through_runner()
            measured.append(time.perf_counter() - t)
    return OverheadResult(statistics.median(measured), statistics.median(reference), repeats, len(BENCH_STEPS) + 1)
