"""One container per job, like a GitHub-hosted runner, but a Lab container on this machine.

Why a Lab container: it carries the lab's labels (``careops labs ls/reset``
find it after a crash), its limits, its private network without a route
out, dropped capabilities and no engine socket. The repo enters only as a
read-only bind mount; ``actions/checkout`` copies it to a writable workspace.
"""
from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Queue

import docker.errors

from careops.images.catalog import CI_RUNNER_IMAGE
from careops.lab import Lab, LabContainer

#: Where the repo is bind-mounted read-only in every job container.
REPO_MOUNT = "/careops/repo"
#: The job's writable workspace ($GITHUB_WORKSPACE), filled by actions/checkout.
WORKSPACE = "/github/workspace"
JOB_MEMORY = "1g"
JOB_CPUS = 1.0
JOB_PIDS = 256
#: Characters of a command's output kept in its StreamResult (the tail; on_line sees every line).
OUTPUT_KEEP = 512 * 1024
#: Seconds the host waits beyond a step's limit for the in-container `timeout` to fire.
KILL_GRACE = 5.0

LineCallback = Callable[[str], None]


@dataclass
class StreamResult:
    """What one command in a job container did; ``timed_out``: killed at its limit."""

    exit_code: int
    output: str
    seconds: float
    timed_out: bool


def start_job_container(lab: Lab, job_id: str, *, repo: Path, image: str = CI_RUNNER_IMAGE,
                        env: dict[str, str] | None = None) -> LabContainer:
    """A fresh job container in ``lab`` with the repo mounted read-only at REPO_MOUNT."""
    return lab.run(image, name=f"job-{job_id}"[:40].rstrip("-"), command=["sleep", "infinity"],
                   binds={repo: REPO_MOUNT}, env=env or {}, memory=JOB_MEMORY, cpus=JOB_CPUS, pids=JOB_PIDS,
                   labels={"org.careops.pipeline.job": job_id})


def exec_stream(container: LabContainer, argv: list[str], *, env: dict[str, str] | None = None,
                workdir: str | None = None, timeout: float, on_line: LineCallback | None = None) -> StreamResult:
    """Run ``argv`` in the container, streaming lines to ``on_line``; kill it (and its children) at ``timeout``.

    The kill happens inside the container (``timeout -s KILL`` signals the whole
    process group); if the engine stream still does not end, the host gives up
    KILL_GRACE seconds later and reports a timeout too.
    """
    limit = max(1, int(timeout + 0.999))
    wrapped = ["timeout", "-s", "KILL", str(limit), *argv]
    api = container.raw.client.api
    started = time.monotonic()
    exec_id = api.exec_create(container.id, wrapped, environment=env or {}, workdir=workdir, stdout=True,
                              stderr=True)["Id"]
    chunks: list[str] = []
    kept = [0]
    queue: Queue[str | None] = Queue()
    partial = [""]

    def emit(text: str, final: bool = False) -> None:
        partial[0] += text
        *lines, partial[0] = partial[0].split("\n")
        if final and partial[0]:
            lines.append(partial[0])
            partial[0] = ""
        for line in lines:
            if on_line:
                on_line(line.rstrip("\r"))

    def pump() -> None:
        """Reads the engine's stream; the caller's thread handles the lines (callbacks, notebook output)."""
        try:
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            for chunk in api.exec_start(exec_id, stream=True):
                queue.put(decoder.decode(chunk))
        except (docker.errors.DockerException, OSError):
            pass
        finally:
            queue.put(None)

    threading.Thread(target=pump, daemon=True, name=f"exec-{exec_id[:8]}").start()
    deadline = started + timeout + KILL_GRACE
    finished = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            text = queue.get(timeout=min(left, 1.0))
        except Empty:
            continue
        if text is None:
            finished = True
            break
        chunks.append(text)
        kept[0] += len(text)
        if kept[0] > OUTPUT_KEEP * 2:  # a step that floods its output must not exhaust memory: keep the tail
            tail_text = "".join(chunks)[-OUTPUT_KEEP:]
            chunks[:] = [tail_text]
            kept[0] = len(tail_text)
        emit(text)
    emit("", final=True)
    seconds = time.monotonic() - started
    try:
        code = api.exec_inspect(exec_id).get("ExitCode")
    except docker.errors.DockerException:
        code = None
    timed_out = not finished or (code in (124, 137) and seconds >= timeout - 0.5)
    return StreamResult(int(code) if code is not None else -1, "".join(chunks), seconds, timed_out)
