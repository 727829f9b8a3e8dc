"""Grading hosts on one machine, for the tests, the bench and a trial run: a Redis server, a second Docker engine,
workers as processes. Each is a context manager that always stops what it started.

* :class:`RedisServer` runs Debian's ``redis-server`` on a free loopback port with its own folder (no
  persistence, protected mode);
* :class:`DockerEngine` runs a second ``dockerd`` with its own ``--data-root``, ``--exec-root``, ``--pidfile``
  and unix socket, no bridge (``--bridge none``: sandboxes have no network anyway) and no iptables rules, so it
  cannot disturb the machine's own engine; its data root may be kept between runs to keep loaded images;
* :class:`WorkerProcess` runs ``careops worker`` in its own process group (``kill`` sends SIGKILL to all of it,
  as when a worker's host dies).

Missing programs are errors with the fix, never a reason to skip.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from careops.errors import CareOpsError
from careops.grading.queue.app import QueueError, ping

REDIS_FIX = "install Debian's redis-server: make test-tools (or scripts/ensure-tools.sh redis-server:redis-server)"


def default_engine_url() -> str:
    """The URL of the engine careops uses here (DOCKER_HOST, the Docker socket, Podman's), for --images-from."""
    import docker
    import docker.errors

    from careops import engine

    for cand in engine.candidates():
        client = docker.DockerClient(base_url=cand.url, timeout=5)
        try:
            if client.ping():
                return cand.url
        except docker.errors.DockerException:
            pass
        finally:
            client.close()
    engine.connect()  # raises with every place tried and the fix
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(what: str, ready: Any, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if ready():
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
    proc.kill()
    raise QueueError(f"{what} did not answer within {timeout:.0f} s (exit code {proc.poll()}); its log ends:\n{tail}",
                     fix=f"read {log}")


def _stop(proc: subprocess.Popen | None, *, grace: float = 20.0) -> None:
    """SIGTERM to the process (it stops its children itself: a worker its pool, dockerd its containerd), then
    SIGKILL to its whole group after ``grace`` seconds."""
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of its group is left
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


class RedisServer:
    """Debian's redis-server on 127.0.0.1:<free port>, its files in ``folder``."""

    def __init__(self, folder: Path, *, port: int | None = None) -> None:
        self.folder = Path(folder)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.database(0)

    def database(self, number: int) -> str:
        """The URL of one of the server's databases (tests keep apart that way)."""
        return f"redis://127.0.0.1:{self.port}/{number}"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise QueueError("redis-server is not installed: the grading queue's tests and bench need it",
                             fix=REDIS_FIX)
        self.folder.mkdir(parents=True, exist_ok=True)
        log = self.folder / "redis.log"
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder), "--save", "",
             "--appendonly", "no", "--protected-mode", "yes", "--logfile", str(log), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)

        def answers() -> bool:
            try:
                ping(self.url, timeout=0.5)
                return True
            except QueueError:
                return False

        _wait(f"redis-server on port {self.port}", answers, self.proc, log, 20)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def __enter__(self) -> RedisServer:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class DockerEngine:
    """A second dockerd on this machine (root only): its own data root, exec root, pid file and socket.

    ``folder`` holds the data root (keep it between runs to keep the images loaded there) and the log; the exec
    root and the socket live under /run (a socket path must be short).
    """

    def __init__(self, folder: Path, *, name: str | None = None) -> None:
        self.folder = Path(folder).resolve()
        # one name per data root: two checkouts' engines never share an exec root, socket or cgroup
        self.name = name or f"careops-engine-{hashlib.sha256(str(self.folder).encode()).hexdigest()[:8]}"
        self.exec_root = Path("/run") / self.name
        self.socket = self.exec_root / "docker.sock"
        self.pidfile = self.exec_root / "dockerd.pid"
        self.log = self.folder / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self.images_from = ""  # the engine the course images were loaded from (load_images)
        self.grader_id = ""

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def command(self) -> list[str]:
        # In a network namespace of its own: a dockerd started with ``--bridge none`` removes the host's default
        # bridge interface (docker0) at start, which the first engine's containers need. Its sandboxes have no
        # network, and it is reached through its unix socket, so it needs none of this host's interfaces.
        isolate = ["unshare", "--net"] if shutil.which("unshare") else []
        return [*isolate, "dockerd", "--data-root", str(self.folder / "data"), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pidfile), "-H", self.url, "--bridge", "none", "--iptables=false",
                "--ip-masq=false", "--cgroup-parent", self.name, "--log-level", "warn"]

    def start(self) -> DockerEngine:
        if shutil.which("dockerd") is None:
            raise CareOpsError("dockerd is not installed: a second engine needs Docker Engine's daemon",
                               fix="make engine (installs Debian's docker.io as root)")
        if os.geteuid() != 0:
            raise CareOpsError("a second Docker engine needs root (dockerd manages mounts and cgroups)",
                               fix="run the queue's tests and bench as root, or give workers engines of their own")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.exec_root.mkdir(parents=True, exist_ok=True)
        self._stale_daemon()
        self._unmount_data_root()  # a killed daemon's (after _stale_daemon: none of ours runs now)
        self._log = open(self.log, "ab")  # noqa: SIM115 - the daemon writes it until stop()
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _wait(f"the second dockerd ({self.socket})", self._answers, self.proc, self.log, 60)
        return self

    def _answers(self) -> bool:
        import docker
        import docker.errors

        if not self.socket.exists():
            return False
        try:  # the client asks the engine its API version as it is made: a socket not yet accepting refuses it
            client = docker.DockerClient(base_url=self.url, timeout=2)
        except docker.errors.DockerException:
            return False
        try:
            return bool(client.ping())
        except docker.errors.DockerException:
            return False
        finally:
            client.close()

    def _stale_daemon(self) -> None:
        """A dockerd a killed run left on this socket: stop it (its pid file names it) before starting ours."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        if str(self.exec_root).encode() not in cmdline:
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(200):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def load_images(self, images_from: str) -> str:
        """Make this engine's course images those of the engine at ``images_from`` (loaded where they differ);
        returns the grader image's id."""
        from careops.grading.queue.worker import ensure_course_images

        client = self.client()
        try:
            self.grader_id = ensure_course_images(client, images_from=images_from)
        finally:
            client.close()
        self.images_from = images_from
        return self.grader_id

    def client(self) -> Any:
        import docker

        return docker.DockerClient(base_url=self.url, timeout=600)

    def stop(self) -> None:
        _stop(self.proc, grace=30)
        if self._log:
            self._log.close()
        self._unmount_data_root()

    def _unmount_data_root(self) -> None:
        """dockerd mounts its data root on itself; one that died before cleaning up leaves the mount behind, and
        the folder (a clone's build/) can then not be removed. Only ever after our daemon is gone."""
        data = self.folder / "data"
        if data.is_dir() and os.path.ismount(data):
            subprocess.run(["umount", "--lazy", str(data)], check=False, capture_output=True)

    def __enter__(self) -> DockerEngine:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WorkerProcess:
    """``careops worker`` in a process group of its own; ``kill()`` is SIGKILL to all of it."""

    def __init__(self, queue: str, *, engine_url: str, name: str, log: Path, concurrency: int = 1,
                 images_from: str | None = None, redeliver_after: float | None = None,
                 course_dir: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = Path(log)
        self.engine_url = engine_url
        self.args = [sys.executable, "-m", "careops.cli", "worker", "--queue", queue, "--engine", engine_url,
                     "--concurrency", str(concurrency), "--name", name]
        if images_from:
            self.args += ["--images-from", images_from]
        if redeliver_after:
            self.args += ["--redeliver-after", str(redeliver_after)]
        if course_dir:
            self.args += ["--course-dir", str(course_dir)]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> WorkerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log, "ab")  # noqa: SIM115 - the daemon writes it until stop()
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=self.env,
                                     start_new_session=True)
        return self

    def wait_ready(self, timeout: float = 300) -> WorkerProcess:
        """Until the worker says it is ready (its engine prepared, the grader image loaded or found)."""
        assert self.proc is not None
        _wait(f"worker {self.name}", lambda: b" ready." in self.log.read_bytes(), self.proc, self.log, timeout)
        return self

    def children(self) -> list[int]:
        """Pids of the worker's grading processes (its pool)."""
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == self.proc.pid:
                    found.append(int(entry.name))
        return found

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as when its host dies; its sandboxes stay."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop the worker (its tasks go back to the queue) and remove the sandboxes its processes left."""
        import docker

        from careops.grading.queue.worker import reclaim_leftovers

        _stop(self.proc, grace=30)
        if self._log:
            self._log.close()
        client = docker.DockerClient(base_url=self.engine_url)
        try:
            reclaim_leftovers(client)
        finally:
            client.close()

    def __enter__(self) -> WorkerProcess:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
