"""A lab container as a learner sees it: exec with timeouts, files in and out, state, logs, limits, health.

``LabContainer`` is the one wrapper of a lab container in careops: code
outside ``careops.lab`` asks it (``exec``, ``exec_stream``, ``wait``,
``state``, ``put_files``, ``get_file``, ``processes`` ...). What it wraps is a
backend's handle (careops.lab.backend.ContainerHandle): the docker SDK object
on this machine's engine, or the container's address at the workshop's lab
broker. ``raw`` stays as a documented escape hatch for tests and for a learner
exploring the SDK in a notebook (on this machine's engine only).
"""
from __future__ import annotations

import codecs
import io
import tarfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from queue import Empty, Queue
from typing import Any, Self

import docker.errors
import requests
from docker.models.containers import Container

from careops.errors import ExecFailed, ExecTimeout, LabError
from careops.lab import labels as L
from careops.lab.backend import ContainerHandle
from careops.lab.direct import DirectContainer
from careops.lab.policy import format_bytes
from careops.report import theme


@dataclass
class ExecResult:
    """What a command inside a container did."""

    command: list[str]
    exit_code: int
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def _repr_html_(self) -> str:
        status = theme.join([theme.state("success" if self.ok else "failure", f"exit {self.exit_code}"), " ",
                             theme.muted(f"({self.seconds:.2f} s)")])
        return theme.card(theme.code(f"$ {' '.join(self.command)}"), theme.pre(self.output[-4000:]) if self.output
                          else "", status=status, ok=self.ok)


#: Characters of a command's output an ``exec_stream`` result keeps (the tail; ``on_line`` sees every line).
OUTPUT_KEEP = 512 * 1024
#: Seconds the host waits beyond a command's limit for the in-container ``timeout`` to fire.
KILL_GRACE = 5.0

LineCallback = Callable[[str], None]


@dataclass
class StreamResult:
    """What one streamed command did; ``timed_out``: killed at its limit (``output``: its tail)."""

    exit_code: int
    output: str
    seconds: float
    timed_out: bool


@dataclass(frozen=True)
class RunState:
    """The engine's state of a container: ``exit_code`` is None until it exited (or died)."""

    status: str
    exit_code: int | None
    oom_killed: bool
    health: str | None

    @property
    def killed(self) -> bool:
        """Killed by SIGKILL (exit 137) or by the kernel's out-of-memory killer."""
        return self.exit_code == 137 or self.oom_killed


def files_tar(files: Mapping[str, bytes], *, mode: int = 0o644, uid: int = 0, gid: int = 0,
              mtime: float | None = None) -> bytes:
    """A tar of ``files`` (relative name -> content), in order, with a folder entry (0755) before each new folder."""
    stamp = int(time.time() if mtime is None else mtime)
    buf = io.BytesIO()
    made: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            parts = name.strip("/").split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in made:
                    made.add(folder)
                    info = tarfile.TarInfo(folder)
                    info.type, info.mode, info.uid, info.gid, info.mtime = tarfile.DIRTYPE, 0o755, uid, gid, stamp
                    tar.addfile(info)
            info = tarfile.TarInfo("/".join(parts))
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, uid, gid, stamp
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class LabContainer:
    """A container that belongs to a Lab; wraps its backend's handle (a docker SDK Container is wrapped too).

    ``with lab.run(...) as c:`` removes the container when the block ends, whatever happens in it.
    """

    def __init__(self, container: ContainerHandle | Container) -> None:
        self._c: ContainerHandle = DirectContainer(container) if isinstance(container, Container) else container

    # -- identity -------------------------------------------------------
    @property
    def name(self) -> str:
        return self._c.name

    @property
    def id(self) -> str:
        return self._c.id

    @property
    def labels(self) -> dict[str, str]:
        return dict((self._c.attrs.get("Config") or {}).get("Labels") or {})

    @property
    def raw(self) -> Container:
        """The docker SDK object: an escape hatch for tests and exploration. careops' own code outside
        ``careops.lab`` does not use it (tests/test_lab.py guards that); add what is missing here instead."""
        found = getattr(self._c, "raw", None)
        if found is None:
            raise LabError(f"{self.name} runs through the workshop's lab broker: there is no docker SDK object here",
                           fix="use the container's own methods (exec, logs, state, put_files, ...)")
        return found

    @property
    def attrs(self) -> dict[str, Any]:
        """The engine's inspect data as last read (``reload()`` first for fresh data)."""
        return self._c.attrs

    @property
    def image_name(self) -> str:
        """The image it was started from, as named then (``careops/legacy-adt:v1``), else the image's first tag."""
        return self._c.attrs.get("Config", {}).get("Image") or (self._c.image_tags() or [""])[0]

    def reload(self) -> "LabContainer":
        try:
            self._c.reload()
        except docker.errors.NotFound:
            raise LabError(
                f"container {self.name} is gone (removed outside this lab, or its lab was reset)",
                fix="run the cell that starts it again",
            ) from None
        return self

    @property
    def status(self) -> str:
        self.reload()
        return self._c.status

    def state(self, *, reload: bool = True) -> RunState:
        """Status, exit code (once exited), OOM kill and health; ``reload=False`` reads the last inspect data."""
        if reload:
            self.reload()
        raw = self._c.attrs.get("State") or {}
        state = raw if isinstance(raw, dict) else {"Status": raw}  # a container list gives the status alone
        status = str(state.get("Status") or "")
        code = state.get("ExitCode") if status in ("exited", "dead") else None
        return RunState(status, None if code is None else int(code), bool(state.get("OOMKilled")),
                        (state.get("Health") or {}).get("Status"))

    @property
    def exit_code(self) -> int | None:
        """Its exit code, or None while it has not exited."""
        return self.state().exit_code

    @property
    def health(self) -> str | None:
        """'healthy', 'unhealthy', 'starting', or None when the image has no HEALTHCHECK."""
        return self.state().health

    def port(self, container_port: int | str, proto: str = "tcp") -> int:
        """The 127.0.0.1 port on the host that reaches ``container_port``."""
        key = f"{container_port}/{proto}" if "/" not in str(container_port) else str(container_port)
        found = self.reload()._c.host_port(key)
        if not found:
            raise LabError(
                f"container {self.name} publishes no port {key}",
                fix=f"start it with ports=[{container_port}]",
            )
        return found

    def ip(self) -> str:
        """Its address on the lab network (reachable from other lab containers)."""
        nets = self.reload()._c.attrs["NetworkSettings"]["Networks"]
        return next(iter(nets.values()))["IPAddress"]

    # -- limits ---------------------------------------------------------
    def limits(self) -> dict[str, object]:
        """The limits the engine actually enforces (read back, not what was asked)."""
        hc = self.reload()._c.attrs["HostConfig"]
        cfg = self._c.attrs["Config"]
        return {
            "memory": hc.get("Memory") or 0,
            "cpus": (hc.get("NanoCpus") or 0) / 1e9,
            "pids": hc.get("PidsLimit") or 0,
            "read_only": bool(hc.get("ReadonlyRootfs")),
            "privileged": bool(hc.get("Privileged")),
            "user": cfg.get("User") or "root",
            "network": hc.get("NetworkMode"),
            "cap_drop": hc.get("CapDrop") or [],
            "cap_add": hc.get("CapAdd") or [],
            "security_opt": hc.get("SecurityOpt") or [],
            "mounts": [m.get("Source") for m in self._c.attrs.get("Mounts", [])],
        }

    # -- running things -------------------------------------------------
    def exec_stream(self, argv: list[str], *, on_line: LineCallback | None = None, env: dict[str, str] | None = None,
                    timeout: float = 30, user: str | None = None, workdir: str | None = None,
                    keep: int | None = OUTPUT_KEEP) -> StreamResult:
        """Run ``argv`` inside, handing each output line to ``on_line`` (in this thread); kill it at ``timeout``.

        The kill happens inside the container (``timeout -s KILL`` signals the
        command's whole process group); if the engine's stream still does not end,
        the host gives up KILL_GRACE seconds later and reports a timeout too. The
        result keeps the last ``keep`` characters of output (None: all of it).
        """
        started = time.monotonic()
        session = self._c.exec_open(list(argv), timeout=timeout, env=env or {}, user=user or "", workdir=workdir)
        queue: Queue[str | None] = Queue()

        def pump() -> None:
            """Reads the engine's stream; the caller's thread handles the text (callbacks, notebook output)."""
            try:
                decoder = codecs.getincrementaldecoder("utf-8")("replace")
                for chunk in session.chunks():
                    queue.put(decoder.decode(chunk))
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError, LabError):
                pass
            finally:
                queue.put(None)

        threading.Thread(target=pump, daemon=True, name=f"exec-{self.name[-20:]}").start()
        chunks: list[str] = []
        kept = 0
        partial = ""
        deadline = started + timeout + KILL_GRACE
        finished = False
        while (left := deadline - time.monotonic()) > 0:
            try:
                text = queue.get(timeout=min(left, 1.0))
            except Empty:
                continue
            if text is None:
                finished = True
                break
            chunks.append(text)
            kept += len(text)
            if keep is not None and kept > keep * 2:  # output that floods must not exhaust memory: keep the tail
                chunks[:] = ["".join(chunks)[-keep:]]
                kept = len(chunks[0])
            if on_line:
                *lines, partial = (partial + text).split("\n")
                for line in lines:
                    on_line(line.rstrip("\r"))
        if on_line and partial:
            on_line(partial.rstrip("\r"))
        seconds = time.monotonic() - started
        code = session.exit_code()
        timed_out = not finished or (code in (124, 137) and seconds >= timeout - 0.5)
        return StreamResult(int(code) if code is not None else -1, "".join(chunks), seconds, timed_out)

    def exec(self, command: str | list[str], *, timeout: float = 30, check: bool = True,
             user: str | None = None, workdir: str | None = None, env: dict[str, str] | None = None) -> ExecResult:
        """Run ``command`` inside; a timeout and a failure are two different errors.

        On timeout the command's processes are killed (with the exec's own
        `timeout` wrapper inside the container) so nothing keeps running.
        """
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        res = self.exec_stream(argv, env=env, timeout=timeout, user=user, workdir=workdir, keep=None)
        shown = " ".join(argv)
        if res.timed_out:
            raise ExecTimeout(
                f"`{shown}` in {self.name} did not finish within {timeout:g} s (output so far: {res.output[-300:]!r})",
                fix="make the command finish sooner, or pass a larger timeout=",
            )
        result = ExecResult(argv, res.exit_code, res.output, res.seconds)
        if check and not result.ok:
            raise ExecFailed(
                f"`{shown}` in {self.name} exited {result.exit_code}, expected 0. Its output:\n{res.output[-2000:]}",
                fix="read the output above; run the command with check=False to inspect it",
            )
        return result

    # -- files ----------------------------------------------------------
    def put_archive(self, path: str, tar: bytes) -> None:
        """Unpack the tar ``tar`` into the folder ``path`` inside (docker.errors.APIError when the engine refuses)."""
        if not self._c.put_archive(path, tar):
            raise LabError(f"the engine did not copy the files into {self.name}:{path}", fix="run the cell again")

    def put_files(self, path: str, files: Mapping[str, bytes], *, mode: int = 0o644, uid: int = 0,
                  gid: int = 0) -> None:
        """Copy ``files`` (name relative to ``path`` -> content) into the folder ``path`` inside, in order,
        owned by ``uid``:``gid`` with ``mode``; folders in the names are made (0755, same owner)."""
        self.put_archive(path, files_tar(files, mode=mode, uid=uid, gid=gid))

    def get_archive(self, path: str) -> bytes:
        """A tar of ``path`` inside (a file or a folder); docker.errors.NotFound when it does not exist."""
        return self._c.get_archive(path)

    def get_file(self, path: str) -> bytes:
        """The content of the file ``path`` inside (b"" when it is not a regular file)."""
        with tarfile.open(fileobj=io.BytesIO(self.get_archive(path))) as tar:
            member = tar.extractfile(path.rstrip("/").rsplit("/", 1)[-1])
            return member.read() if member else b""

    # -- processes and logs ---------------------------------------------
    def processes(self, ps_args: str = "-o pid,uid,comm") -> list[dict[str, str]]:
        """Its processes as the engine's `top` lists them, keyed by column title in capitals (PID, UID, ...).

        An engine without `top` raises docker.errors.APIError.
        """
        top = self._c.top(ps_args)
        titles = [t.upper() for t in top.get("Titles") or []]
        return [dict(zip(titles, map(str, row))) for row in top.get("Processes") or []]

    def logs(self, tail: int | None = 200, *, stdout: bool = True, stderr: bool = True) -> str:
        """Its last ``tail`` log lines (None: all), of stdout and stderr or of one of them."""
        return self._c.logs(tail, stdout, stderr).decode("utf-8", "replace")

    def wait_until(self, status: str = "running", *, timeout: float = 30, done_ok: bool = False) -> "LabContainer":
        """Poll until the container reaches ``status`` (or 'healthy'), or explain why not.

        ``done_ok``: a container that already ran to completion (exit code 0) counts as having got there (a
        short command may be over before the first look, the more so through the workshop's lab broker).
        """
        deadline = time.monotonic() + timeout
        while True:
            current = self.health if status == "healthy" else self.status
            if current == status:
                return self
            if done_ok and self._c.status == "exited" and self._c.attrs["State"].get("ExitCode") == 0:
                return self
            if self._c.status in ("exited", "dead") and status != "exited":
                raise LabError(
                    f"container {self.name} {self._c.status} (exit code "
                    f"{self._c.attrs['State'].get('ExitCode')}) while waiting for '{status}'. "
                    f"Last log lines:\n{self.logs(20)}",
                    fix="read the log lines; fix the command or image and start it again",
                )
            if time.monotonic() > deadline:
                raise LabError(
                    f"container {self.name} is '{current}', expected '{status}' within {timeout:g} s",
                    fix="check its logs with .logs(); a slow start may need a larger timeout=",
                )
            time.sleep(0.2)

    def wait(self, timeout: float | None = None) -> int:
        """Block until it exits; its exit code. Not exited within ``timeout`` seconds: LabError."""
        code = self._c.wait(timeout)
        if code is None:
            within = f"within {timeout:g} s" if timeout is not None else "(the engine stopped answering)"
            raise LabError(f"container {self.name} did not exit {within}",
                           fix="read its logs (.logs()); a command that never ends needs fixing")
        return code

    def start(self) -> None:
        """Start it again (after it stopped, exited or was killed), with its configuration as it was."""
        self._c.start()

    def stop(self, timeout: int = 10) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        self._c.stop(timeout)

    def restart(self, timeout: int = 10) -> None:
        self._c.restart(timeout)

    def kill(self, signal: str | int | None = None) -> None:
        """Send ``signal`` (default SIGKILL) to its main process."""
        self._c.kill(signal)

    def remove(self) -> None:
        self._c.remove()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- display --------------------------------------------------------
    def __repr__(self) -> str:
        return f"<LabContainer {self.name} ({self._c.status})>"

    def _repr_html_(self) -> str:
        lim = self.limits()
        rows = {
            "name": self.name,
            "status": theme.join([theme.state(self._c.status), f" / {self.health}" if self.health else ""]),
            "image": ", ".join(self._c.image_tags()) or self.image_name,
            "memory": theme.num(format_bytes(int(lim["memory"]))) if lim["memory"] else "unlimited",
            "cpus": theme.num(lim["cpus"]),
            "pids": theme.num(lim["pids"]),
            "read-only root": "yes" if lim["read_only"] else "no",
            "user": str(lim["user"]),
            "lab / learner": f"{self.labels.get(L.LAB)} / {self.labels.get(L.LEARNER)}",
        }
        return theme.card(theme.join(["Container ", theme.code(self.name)]), theme.fields(rows))
