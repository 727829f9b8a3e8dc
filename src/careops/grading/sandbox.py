"""Grading sandboxes: one fresh, sealed container per submission.

A learner's notebook is untrusted code. It runs only here: in a container
from the grader image with no network, no engine socket, a non-root user, a
read-only root with small tmpfs folders, memory/pids/CPU limits, no
capabilities and no-new-privileges, and a wall-time budget the host enforces
by killing it. Nothing of the host is mounted: the cells travel in over the
container's stdin and the results come back over its stdout, as JSON lines
that are size-capped and parsed strictly (:class:`Sandbox.request`). A
container is never reused: :class:`SandboxFactory` pre-starts the *next* one
while the current one works, so the start-up cost is hidden, not shared.

Containers carry the lab labels (lab ``grade-<assignment>``, learner
``grader``), so ``careops labs ls`` lists them and ``careops labs reset``
reclaims what a killed grader left behind; the grader's next run of the
assignment does so itself (:func:`remove_leftovers`), and a grader that is
stopped (SIGTERM, Ctrl-C) removes its own at once (:meth:`SandboxFactory.abort`,
:func:`remove_run`).
"""
from __future__ import annotations

import json
import os
import queue
import socket
import struct
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.types import LogConfig, Ulimit

from careops import engine
from careops.errors import CareOpsError
from careops.images.catalog import GRADER_IMAGE
from careops.lab import labels as L
from careops.lab import resources
from careops.lab.policy import Limits

AGENT_SOURCE = Path(__file__).with_name("agent.py")
GRADER_LEARNER = "grader"
WORKDIR = "/home/grader/work"


class SandboxError(CareOpsError):
    """The sandbox died, timed out or answered something that is not a valid answer."""

    def __init__(self, message: str, *, fix: str | None = None, reason: str = "crashed") -> None:
        super().__init__(message, fix=fix)
        self.reason = reason  # timeout | memory | crashed | output | protocol | stopped


@dataclass(frozen=True)
class SandboxPolicy:
    """Limits of one grading sandbox; tight by default (a notebook needs little)."""

    image: str = GRADER_IMAGE
    limits: Limits = field(default_factory=lambda: Limits(memory=512 * 1024**2, cpus=1.0, pids=64))
    tmpfs_size: str = "64m"
    cell_timeout: float = 20.0  # one cell or one call of a learner's function
    wall_time: float = 180.0  # the whole submission
    output_cap: int = 64 * 1024  # per cell / call, characters of printed output
    answer_cap: int = 4 * 1024**2  # one protocol line, bytes
    total_cap: int = 32 * 1024**2  # everything read from one sandbox, bytes
    start_timeout: float = 60.0

    def create_kwargs(self, *, name: str, labels: dict[str, str]) -> dict[str, Any]:
        """The docker SDK arguments of a sandbox container (also what the tests inspect)."""
        self.limits.validate()
        opts = f"rw,nosuid,nodev,size={self.tmpfs_size}"
        return dict(
            image=self.image,
            command=["python", "-c", AGENT_SOURCE.read_text(encoding="utf-8")],
            name=name,
            hostname="sandbox",
            stdin_open=True,
            tty=False,
            detach=True,
            user="1000:1000",
            working_dir=WORKDIR,
            environment={
                "HOME": "/home/grader",
                "CAREOPS_AGENT_WORKDIR": WORKDIR,
                "CAREOPS_AGENT_OUTPUT_CAP": str(self.output_cap),
                "CAREOPS_AGENT_VALUE_CAP": str(self.answer_cap // 4),
                "CAREOPS_LEARNER": "sandbox",
                "NBGRADER_EXECUTION": "autograde",  # nbgrader's own signal to notebooks
                "DOCKER_HOST": "unix:///run/careops-grader/no-engine.sock",  # none here: fail fast
                "MPLBACKEND": "Agg",
                "MPLCONFIGDIR": "/tmp/matplotlib",
                "IPYTHONDIR": "/tmp/ipython",
            },
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": opts, "/home/grader": opts},
            privileged=False,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=[Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=256, hard=256)],
            labels=labels,
            # stdout is the protocol: never let the engine write it to the host's disk
            log_config=LogConfig(type="none", config={}),
            **self.limits.host_config(),
        )


def lab_name(assignment: str) -> str:
    """The lab label of an assignment's sandboxes: ``grade-<assignment>``."""
    return L.slug(f"grade-{assignment}", what="lab name")


class _Stream:
    """Reads the container's multiplexed attach stream into lines on a queue (a thread)."""

    def __init__(self, sock: Any, policy: SandboxPolicy) -> None:
        self.sock = sock
        self.raw = getattr(sock, "_sock", sock)
        self.policy = policy
        self.lines: queue.Queue[bytes | None | SandboxError] = queue.Queue()
        self.total = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.raw.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def _read(self) -> None:
        over = False  # past a cap: keep draining (a blocked writer can wedge the engine's kill), keep nothing
        try:
            while True:
                header = self._recv_exactly(8)
                kind, size = header[0], struct.unpack(">I", header[4:])[0]
                payload = self._recv_exactly(size) if size else b""
                if over or kind != 1:  # only stdout carries the protocol
                    self.total += size
                    continue
                over = not self._take(payload)
        except (EOFError, OSError, ValueError):
            self.lines.put(None)

    def _take(self, payload: bytes) -> bool:
        """Count ``payload`` (the agent's stdout) and cut it into lines; False once past a cap (said on the queue)."""
        self.total += len(payload)
        if self.total > self.policy.total_cap:
            self.lines.put(SandboxError(
                f"the notebook wrote more than {self.policy.total_cap // 1024**2} MiB to the grader",
                reason="output"))
            return False
        self._buf = getattr(self, "_buf", b"") + payload
        while b"\n" in self._buf:
            line, self._buf = self._buf.split(b"\n", 1)
            self.lines.put(line)
        if len(self._buf) > self.policy.answer_cap:
            self._buf = b""
            self.lines.put(SandboxError(
                f"the notebook sent an answer larger than {self.policy.answer_cap // 1024**2} MiB",
                reason="output"))
            return False
        return True

    def close(self) -> None:
        try:
            self.raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class Sandbox:
    """One sealed container running the agent; ask it things with :meth:`request`."""

    def __init__(self, client: docker.DockerClient, policy: SandboxPolicy, *, assignment: str,
                 session: str) -> None:
        self.client = client
        self.policy = policy
        self.labels = {**L.lab_labels(lab_name(assignment), GRADER_LEARNER, session),
                       L.ROLE: "sandbox"}
        self.name = L.resource_name(GRADER_LEARNER, lab_name(assignment), uuid.uuid4().hex[:10])
        self._next_id = 0
        self.started = time.monotonic()
        self.dead: SandboxError | None = None
        self.removed = False
        self.learner: str | None = None
        self.incidents: list[str] = []  # what went wrong on the way (timeouts), for the summary
        kwargs = policy.create_kwargs(name=self.name, labels=self.labels)
        try:
            self.container = client.containers.create(**kwargs)
        except docker.errors.ImageNotFound:
            raise SandboxError(f"the grading image {policy.image} is not on this engine",
                               fix="build it: make images (or careops images build grader)") from None
        except docker.errors.APIError as exc:
            raise SandboxError(f"could not create a grading sandbox: {exc.explanation or exc}",
                               fix="careops doctor checks the engine") from None
        try:
            sock = self.container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self.stream = _Stream(sock, policy)
            self.container.start()
        except Exception:
            self.remove()
            raise

    # -- protocol -------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> int:
        self._next_id += 1
        message = {**message, "id": self._next_id}
        data = json.dumps(message).encode() + b"\n"
        try:
            self.stream.raw.sendall(data)
        except OSError:
            raise self._died("while the grader was sending it a cell") from None
        return self._next_id

    def _died(self, when: str) -> SandboxError:
        if self.dead is not None:
            return self.dead
        state: dict[str, Any] = {}
        deadline = time.monotonic() + 5  # the stream may close before the engine marks the container exited
        while True:
            try:
                self.container.reload()
                state = self.container.attrs.get("State") or {}
            except docker.errors.DockerException:
                break
            if state.get("Status") != "running" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if state.get("OOMKilled"):
            err = SandboxError(f"the notebook ran out of memory ({self.policy.limits.memory // 1024**2} MiB) {when}",
                               reason="memory")
        else:
            code = state.get("ExitCode")
            err = SandboxError(f"the notebook's process ended {when} (exit code {code}): "
                               "sys.exit/os._exit, a killed kernel or a crash", reason="crashed")
        self.dead = err
        return err

    def request(self, op: str, timeout: float | None = None, *, label: str = "", **fields: Any) -> dict[str, Any]:
        """Send one request and return the agent's answer (a dict), strictly checked.

        On timeout the agent is interrupted (SIGINT, like Jupyter's interrupt);
        if it does not answer within a grace period the container is killed.
        """
        if self.dead is not None:
            raise self.dead
        timeout = self.policy.cell_timeout if timeout is None else timeout
        remaining = self.policy.wall_time - (time.monotonic() - self.started)
        if remaining <= 0:
            self.kill()
            self.dead = SandboxError(f"the notebook used up its {self.policy.wall_time:.0f} s wall time",
                                     reason="timeout")
            raise self.dead
        rid = self._send({"op": op, **fields})
        deadline = time.monotonic() + min(timeout, remaining)
        interrupted = False
        while True:
            wait = deadline - time.monotonic()
            try:
                line = self.stream.lines.get(timeout=max(wait, 0.01))
            except queue.Empty:
                if not interrupted and remaining > timeout:
                    interrupted = True
                    self.interrupt()
                    deadline = time.monotonic() + 3.0
                    continue
                self.kill()
                what = f"{timeout:.0f} s" if remaining > timeout else f"its {self.policy.wall_time:.0f} s wall time"
                self.dead = SandboxError(f"{label or op} did not finish within {what} and the sandbox was stopped",
                                         reason="timeout")
                raise self.dead
            if isinstance(line, SandboxError):
                self.kill()
                self.dead = line
                raise line
            if line is None:
                raise self._died("while it was running")
            answer = self._parse(line)
            if answer.get("id") != rid:
                continue  # a stale answer (after an interrupt) or noise: not ours
            if interrupted:
                self.incidents.append(f"{label or op} did not finish within {timeout:.0f} s (interrupted)")
                answer = {"id": rid, "ok": False, "timed_out": True,
                          "error": {"ename": "TimeoutError",
                                    "evalue": f"did not finish within {timeout:.0f} s and was interrupted",
                                    "traceback": ""}, "outputs": answer.get("outputs") or []}
            return answer

    def _parse(self, line: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(line.decode("ascii"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return {}
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            return {}
        return answer

    def interrupt(self) -> None:
        try:
            self.container.kill(signal="SIGINT")
        except Exception:  # noqa: BLE001, S110 - best effort; the deadline still kills it
            pass

    def kill(self) -> None:
        try:
            self.container.kill()
        except Exception:  # noqa: BLE001, S110 - gone already, or the engine is slow: remove() follows
            pass

    def remove(self) -> None:
        """Remove the container, whatever state it is in (always called)."""
        self.removed = True
        try:
            self.stream.close()
        except AttributeError:
            pass
        try:
            self.container.remove(force=True, v=True)
        except Exception:  # noqa: BLE001, S110 - leftovers are reclaimed by label (remove_leftovers)
            pass

    def wait_ready(self) -> None:
        """Block until the agent answers (its imports are done)."""
        self.request("hello", timeout=self.policy.start_timeout)

    def __enter__(self) -> Sandbox:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class SandboxFactory:
    """Hands out fresh sandboxes; the next one is already starting while you use this one.

    Never reuses a container: ``take()`` returns a new one every time and
    starts its successor in the background; ``release()`` cuts a used one off
    at once and removes its container in the background (the grading thread
    goes on to the next submission). ``close()`` removes the spare and waits
    for those removals; ``abort()`` (the grader is being stopped) also removes
    every sandbox still in use, and any ``take()`` after it fails instead of
    starting one.
    """

    def __init__(self, policy: SandboxPolicy, *, assignment: str, session: str,
                 client: docker.DockerClient | None = None, prestart: bool = True) -> None:
        self.policy = policy
        self.assignment = assignment
        self.session = session
        self.client = client or engine.client()
        self.prestart = prestart
        self._lock = threading.Lock()
        self._spares: list[queue.Queue[Sandbox | BaseException]] = []
        self._made: list[Sandbox] = []
        self._closed = False
        self._reaper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-removal")

    def _stopped(self) -> SandboxError:
        return SandboxError("the grader is stopping: no new sandbox is started", reason="stopped")

    def _start(self) -> queue.Queue[Sandbox | BaseException]:
        box: queue.Queue[Sandbox | BaseException] = queue.Queue(maxsize=1)

        def run() -> None:
            try:
                sb = Sandbox(self.client, self.policy, assignment=self.assignment, session=self.session)
            except BaseException as exc:  # noqa: BLE001 - handed to take()
                box.put(exc)
                return
            with self._lock:
                closed = self._closed
                if not closed:
                    self._made = [m for m in self._made if not m.removed] + [sb]
            if closed:  # started while the grader was stopping
                sb.remove()
                box.put(self._stopped())
            else:
                box.put(sb)

        threading.Thread(target=run, daemon=True).start()
        return box

    def take(self) -> Sandbox:
        with self._lock:
            if self._closed:
                raise self._stopped()
            box = self._spares.pop(0) if self._spares else self._start()
            if self.prestart:
                self._spares.append(self._start())
        got = box.get()
        if isinstance(got, BaseException):
            raise got
        return got

    def release(self, sandbox: Sandbox) -> None:
        """Done with ``sandbox``: its connection is closed now and its container removed in the background
        (:meth:`close` waits until it is gone)."""
        sandbox.removed = True  # abort() leaves it to the removal queued here
        sandbox.stream.close()
        try:
            self._reaper.submit(sandbox.remove)
        except RuntimeError:  # closed already (the grader is stopping): remove it here
            sandbox.remove()

    def close(self) -> None:
        """No more sandboxes; remove the spare (waits for one that is still starting) and wait for the removals
        :meth:`release` queued."""
        with self._lock:
            self._closed = True
            spares, self._spares = self._spares, []
        for box in spares:
            got = box.get()
            if isinstance(got, Sandbox):
                got.remove()
        self._reaper.shutdown(wait=True)

    def abort(self) -> None:
        """Stop now: every sandbox this factory made and has not removed yet is removed (killing the notebook
        in it; the thread grading it gets a SandboxError), then the spare as :meth:`close` does."""
        with self._lock:
            self._closed = True
            doomed, self._made = [m for m in self._made if not m.removed], []
        for sb in doomed:
            sb.remove()
        self.close()


def remove_leftovers(assignment: str, *, client: docker.DockerClient | None = None,
                     session: str | None = None) -> int:
    """Remove grading sandboxes of ``assignment`` whose grader died (or of one ``session``)."""
    cl = client or engine.client()
    found = resources.find(lab_name(assignment), GRADER_LEARNER, client=cl)
    doomed = [r for r in found if (r.session == session if session else r.leaked)]
    if not session:  # and the throwaway labs of live checks a killed grader left (lab grade-*, learner g-*)
        doomed += [r for r in resources.find(client=cl)
                   if r.leaked and r.lab.startswith("grade-") and r.learner.startswith("g-")]
    if doomed:
        resources.remove(doomed, client=cl)
    return len(doomed)


def remove_run(assignment: str, session: str, *, client: docker.DockerClient | None = None) -> int:
    """Remove what one grading run of this process started: the sandboxes of ``session`` and the throwaway labs
    of its live checks (lab ``grade-*``, made by this process). For a grader that is stopping."""
    cl = client or engine.client()
    doomed = [r for r in resources.find(lab_name(assignment), GRADER_LEARNER, client=cl) if r.session == session]
    doomed += [r for r in resources.find(client=cl, creator_pid=os.getpid())
               if r.lab.startswith("grade-") and r.learner.startswith("g-")]
    if doomed:
        resources.remove(doomed, client=cl)
    return len(doomed)
