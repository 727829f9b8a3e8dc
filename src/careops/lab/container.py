"""A lab container as a learner sees it: exec with timeouts, logs, limits, health."""
from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass

import docker.errors
from docker.models.containers import Container

from careops.errors import ExecFailed, ExecTimeout, LabError
from careops.lab import labels as L
from careops.lab.policy import format_bytes


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
        colour = "#2e7d32" if self.ok else "#c62828"
        return (
            f"<div><code>$ {html.escape(' '.join(self.command))}</code> "
            f"<span style='color:{colour}'>exit {self.exit_code}</span> ({self.seconds:.2f} s)"
            f"<pre>{html.escape(self.output[-4000:])}</pre></div>"
        )


class LabContainer:
    """A container that belongs to a Lab; wraps docker-py's Container."""

    def __init__(self, container: Container) -> None:
        self._c = container

    # -- identity -------------------------------------------------------
    @property
    def name(self) -> str:
        return self._c.name

    @property
    def id(self) -> str:
        return self._c.id

    @property
    def labels(self) -> dict[str, str]:
        return dict(self._c.labels)

    @property
    def raw(self) -> Container:
        """The docker SDK object, for what this wrapper does not cover."""
        return self._c

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
        return self.reload()._c.status

    @property
    def health(self) -> str | None:
        """'healthy', 'unhealthy', 'starting', or None when the image has no HEALTHCHECK."""
        state = self.reload()._c.attrs.get("State", {})
        return (state.get("Health") or {}).get("Status")

    def port(self, container_port: int | str, proto: str = "tcp") -> int:
        """The 127.0.0.1 port on the host that reaches ``container_port``."""
        key = f"{container_port}/{proto}" if "/" not in str(container_port) else str(container_port)
        bindings = (self.reload()._c.attrs["NetworkSettings"].get("Ports") or {}).get(key)
        if not bindings:
            raise LabError(
                f"container {self.name} publishes no port {key}",
                fix=f"start it with ports=[{container_port}]",
            )
        return int(bindings[0]["HostPort"])

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
    def exec(self, command: str | list[str], *, timeout: float = 30, check: bool = True,
             user: str | None = None, workdir: str | None = None) -> ExecResult:
        """Run ``command`` inside; a timeout and a failure are two different errors.

        On timeout the command's processes are killed (with the exec's own
        `timeout` wrapper inside the container) so nothing keeps running.
        """
        argv = ["sh", "-c", command] if isinstance(command, str) else list(command)
        wrapped = ["timeout", "-s", "KILL", str(max(1, int(timeout + 0.999))), *argv]
        api = self._c.client.api
        started = time.monotonic()
        exec_id = api.exec_create(self.id, wrapped, user=user or "", workdir=workdir, stdout=True, stderr=True)["Id"]
        chunks: list[bytes] = []
        done = threading.Event()

        def pump() -> None:
            try:
                for chunk in api.exec_start(exec_id, stream=True):
                    chunks.append(chunk)
            finally:
                done.set()

        threading.Thread(target=pump, daemon=True).start()
        finished = done.wait(timeout + 5)
        seconds = time.monotonic() - started
        output = b"".join(chunks).decode("utf-8", "replace")
        code = api.exec_inspect(exec_id).get("ExitCode")
        shown = " ".join(argv)
        if not finished or code in (124, 137) and seconds >= timeout - 0.5:
            raise ExecTimeout(
                f"`{shown}` in {self.name} did not finish within {timeout:g} s (output so far: {output[-300:]!r})",
                fix="make the command finish sooner, or pass a larger timeout=",
            )
        result = ExecResult(argv, int(code if code is not None else -1), output, seconds)
        if check and not result.ok:
            raise ExecFailed(
                f"`{shown}` in {self.name} exited {result.exit_code}, expected 0. Its output:\n{output[-2000:]}",
                fix="read the output above; run the command with check=False to inspect it",
            )
        return result

    def logs(self, tail: int = 200) -> str:
        return self._c.logs(tail=tail).decode("utf-8", "replace")

    def wait_until(self, status: str = "running", *, timeout: float = 30) -> "LabContainer":
        """Poll until the container reaches ``status`` (or 'healthy'), or explain why not."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.health if status == "healthy" else self.status
            if current == status:
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

    def stop(self, timeout: int = 10) -> None:
        self._c.stop(timeout=timeout)

    def remove(self) -> None:
        try:
            self._c.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass

    # -- display --------------------------------------------------------
    def __repr__(self) -> str:
        return f"<LabContainer {self.name} ({self._c.status})>"

    def _repr_html_(self) -> str:
        lim = self.limits()
        rows = {
            "name": self.name,
            "status": self._c.status + (f" / {self.health}" if self.health else ""),
            "image": ", ".join(self._c.image.tags) or self._c.image.short_id,
            "memory": format_bytes(int(lim["memory"])) if lim["memory"] else "unlimited",
            "cpus": f"{lim['cpus']:g}",
            "pids": str(lim["pids"]),
            "read-only root": "yes" if lim["read_only"] else "no",
            "user": str(lim["user"]),
            "lab / learner": f"{self.labels.get(L.LAB)} / {self.labels.get(L.LEARNER)}",
        }
        body = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in rows.items()
        )
        return f"<table>{body}</table>"
