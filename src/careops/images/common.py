"""Helpers shared by the image builders: throwaway containers, disk checks,
commands with a live status line, and one lock so two builds never race.
"""
from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import docker
import docker.errors

from careops import paths
from careops.dockerops import tracked_container
from careops.errors import CareOpsError, ImageBuildError
from careops.images.catalog import COURSE, LABEL_COURSE
from careops.progress import Progress

GIB = 1024**3
#: Free space a base bootstrap or an image build needs (rootfs + layers + wheels).
NEED_FREE = int(1.5 * GIB)
#: Seconds between two progress lines of a long command in a log (a terminal shows its latest line live).
STREAMING_EVERY = 10.0


def state_dir() -> Path:
    """build/images: the build lock and temporary build contexts (removed after each build)."""
    d = paths.build_dir() / "images"
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """Serialise image builds of this checkout (e.g. `make test` and `make lab` at once)."""
    lock = state_dir() / ".lock"
    with open(lock, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("careops: another image build of this checkout is running; waiting for it ...", file=sys.stderr)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def check_free_space(cl: docker.DockerClient | None, *, what: str, need: int = NEED_FREE) -> None:
    """Fail early, with the numbers, when build/ or the engine's data root is too full."""
    places = [(paths.build_dir(), "build/ (wheelhouse, rootfs)")]
    if cl is not None:
        try:
            root = cl.info().get("DockerRootDir")
        except docker.errors.DockerException:
            root = None
        if root and os.path.isdir(root):  # a remote or VM engine's root is not on this host
            places.append((Path(root), "the container engine's data root"))
    for place, role in places:
        probe = place if place.exists() else place.parent
        try:
            free = shutil.disk_usage(probe).free
        except OSError:
            continue
        if free < need:
            raise ImageBuildError(
                f"not enough disk space to {what}: {role} {place} has {free / GIB:.2f} GiB free, "
                f"expected at least {need / GIB:.1f} GiB",
                fix="free disk space ('docker system prune' removes unused images and build cache; "
                    "'make clean' removes build/), then run 'careops images build' again",
            )


@dataclass
class RunResult:
    exit_code: int
    stdout: str
    stderr: str


def run_throwaway(cl: docker.DockerClient, image: str, command: Sequence[str], *, entrypoint: Sequence[str] | None = None,
                  user: str | None = None, read_only: bool = False, timeout: float = 120) -> RunResult:
    """Run one command in a new container without network and always remove it (even when it cannot start)."""
    try:
        with tracked_container(cl, image, list(command),
                               entrypoint=list(entrypoint) if entrypoint is not None else None,
                               user=user, read_only=read_only, network_mode="none",
                               labels={LABEL_COURSE: COURSE, "org.careops.role": "image-probe"}) as container:
            container.start()
            status = container.wait(timeout=timeout)
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            err = container.logs(stdout=False, stderr=True).decode(errors="replace")
            return RunResult(int(status.get("StatusCode", -1)), out, err)
    except docker.errors.APIError as exc:
        return RunResult(-1, "", str(exc.explanation or exc))
    except Exception as exc:  # a wait() timeout surfaces as a requests exception
        return RunResult(-1, "", f"{type(exc).__name__}: {exc}")


def run_streaming(cmd: Sequence[str], *, desc: str, progress: bool, env: Mapping[str, str] | None = None,
                  cwd: Path | None = None, keep: int = 40) -> tuple[int, list[str]]:
    """Run a command, showing elapsed time and its latest line; return (exit code, last ``keep`` lines).

    In a log (no terminal) the latest line is printed at most every STREAMING_EVERY seconds.
    """
    tail: collections.deque[str] = collections.deque(maxlen=keep)
    shown = Progress(desc, unit=" lines", enabled=progress, every=STREAMING_EVERY, leave=True,
                     bar_format="{desc}: {elapsed} {postfix}", mininterval=0.5)
    try:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(env) if env is not None else None, cwd=cwd, bufsize=1)
    except OSError as exc:
        shown.close(ok=False)
        raise CareOpsError(f"could not run {cmd[0]}: {exc}", fix=f"install {cmd[0]} or check PATH") from None
    assert proc.stdout is not None
    code = -1
    try:
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            tail.append(line)
            shown.advance(1, line)
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        shown.close(ok=code == 0)
    return code, list(tail)


class Timer:
    """Seconds since creation (ImageResult.seconds)."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self.start, 2)
