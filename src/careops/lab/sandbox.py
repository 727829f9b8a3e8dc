"""The Lab: a sandbox that owns every container, network and volume it starts.

A learner opens one per exercise (``lab = Lab("orientation")``); everything it
starts is labelled with the lab and learner, joins the lab's private network,
runs with memory/CPU/pids limits, never privileged, with all capabilities
dropped but an allowlist, and with no host folder but the lab's explicit work
folder. Closing the lab (or leaving its ``with`` block) removes all of it;
what a crashed kernel leaves behind, ``careops labs reset`` or the next
``Lab(...)`` of the same name removes.
"""
from __future__ import annotations

import atexit
import uuid
import weakref
from pathlib import Path
from typing import Any, Iterable

import docker
import docker.errors
from docker.types import Healthcheck, LogConfig

from careops import engine
from careops.errors import LabError, PolicyViolation
from careops.images.catalog import LAB_IMAGE
from careops.lab import labels as L
from careops.lab import resources
from careops.lab.container import LabContainer
from careops.lab.policy import Limits, check_bind_mount, check_capabilities, format_bytes
from careops.lab.spec import ContainerSpec, parse_spec
from careops.report import theme

DEFAULT_IMAGE = LAB_IMAGE
_open_labs: "weakref.WeakSet[Lab]" = weakref.WeakSet()


def _duration_ns(value: str | int | float | None, default: float) -> int:
    if value is None:
        return int(default * 1e9)
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    text = str(value).strip().lower()
    scale = {"ms": 1e-3, "s": 1, "m": 60}
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * scale[suffix] * 1e9)
    return int(float(text) * 1e9)


def _healthcheck(spec: dict[str, Any] | None) -> Healthcheck | None:
    if not spec:
        return None
    test = spec.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    return Healthcheck(
        test=test,
        interval=_duration_ns(spec.get("interval"), 2),
        timeout=_duration_ns(spec.get("timeout"), 2),
        retries=int(spec.get("retries", 3)),
        start_period=_duration_ns(spec.get("start_period"), 0),
    )


class Lab:
    """A learner's sandbox on the container engine; use as a context manager or close()."""

    def __init__(self, name: str, *, learner: str | None = None, workdir: str | Path | None = None,
                 client: docker.DockerClient | None = None, reclaim: bool = True) -> None:
        self.name = L.slug(name, what="lab name")
        self.learner = L.slug(learner, what="learner id") if learner else L.learner_id()
        self.session = uuid.uuid4().hex[:12]
        self.workdir = Path(workdir).resolve() if workdir else None
        self.client = client or engine.client()
        self.labels = L.lab_labels(self.name, self.learner, self.session)
        self.network_name = L.resource_name(self.learner, self.name)
        self.reclaimed: list[resources.Resource] = []
        self.closed = False
        if reclaim:
            leftovers = resources.find(self.name, self.learner, client=self.client)
            if leftovers:
                resources.remove(leftovers, client=self.client)
                self.reclaimed = leftovers
        self.network = self._create_network()
        _open_labs.add(self)

    # -- lifecycle ------------------------------------------------------
    def _create_network(self):
        try:
            return self.client.networks.create(
                self.network_name,
                driver="bridge",
                labels=self.labels,
                # No NAT to the outside: lab containers talk to each other and to
                # 127.0.0.1-published ports, not to the hospital network or internet.
                options={"com.docker.network.bridge.enable_ip_masquerade": "false"},
                check_duplicate=True,
            )
        except docker.errors.APIError as exc:
            raise LabError(f"could not create the lab network {self.network_name}: {exc.explanation or exc}",
                           fix=f"run 'careops labs reset {self.name}' and open the lab again") from None

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> resources.RemovalReport:
        """Remove everything this lab owns (containers, network, volumes)."""
        report = resources.remove(self.resources(), client=self.client)
        self.closed = True
        return report

    def _require_open(self) -> None:
        if self.closed:
            raise LabError(f"lab {self.name} is closed", fix=f"open it again: lab = Lab({self.name!r})")

    # -- resources ------------------------------------------------------
    def volume(self, name: str, *, size: str | None = None, owner: int | None = None) -> str:
        """A named volume owned by this lab; returns its engine name.

        ``size`` (e.g. ``"16m"``) makes it a small disk of its own that fills up at that size (a tmpfs,
        its root owned by uid/gid ``owner``); its data lasts while a container mounts it.
        """
        self._require_open()
        full = L.resource_name(self.learner, self.name, L.slug(name, what="volume name"))
        try:
            self.client.volumes.get(full)
        except docker.errors.NotFound:
            opts = None
            if size:
                who = f",uid={owner},gid={owner}" if owner is not None else ""
                opts = {"type": "tmpfs", "device": "tmpfs", "o": f"size={size},mode=0750{who}"}
            self.client.volumes.create(full, labels=self.labels, driver="local", driver_opts=opts)
        return full

    def run(self, image: str = DEFAULT_IMAGE, *, name: str, command: str | list[str] | None = None,
            env: dict[str, str] | None = None, ports: Iterable[int] = (), user: str | None = None,
            read_only: bool = False, tmpfs: Iterable[str] = (), limits: Limits | None = None,
            memory: str | int | None = None, cpus: float | None = None, pids: int | None = None,
            labels: dict[str, str] | None = None, volumes: dict[str, str] | None = None,
            binds: dict[str | Path, str] | None = None, cap_add: Iterable[str] = (),
            healthcheck: dict[str, Any] | None = None, wait: bool = True) -> LabContainer:
        """Start a container in this lab under the sandbox rules.

        ``volumes`` maps lab volume names to container paths; ``binds`` maps host
        folders (inside the lab's work folder only) to container paths, read-only.
        A container of the same name in this lab is replaced, so re-running a
        notebook cell works.
        """
        self._require_open()
        short = L.slug(name, what="container name")
        lim = limits or Limits.from_values(memory, cpus, pids)
        lim.validate()
        caps = check_capabilities(list(cap_add))
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            raise LabError(f"image {image} is not on this engine", fix="build the course images: make images") from None
        mounts: dict[str, dict[str, str]] = {}
        for vol, target in (volumes or {}).items():
            mounts[self.volume(vol)] = {"bind": target, "mode": "rw"}
        for host, target in (binds or {}).items():
            mounts[str(check_bind_mount(host, self.workdir))] = {"bind": target, "mode": "ro"}
        full = L.resource_name(self.learner, self.name, short)
        try:
            self.client.containers.get(full).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        tmpfs_map = {path: "rw,nosuid,nodev,size=16m" for path in tmpfs}
        if read_only and not tmpfs_map:
            tmpfs_map = {"/tmp": "rw,nosuid,nodev,size=16m"}
        try:
            container = self.client.containers.run(
                image,
                command=command,
                name=full,
                hostname=short,
                detach=True,
                environment=env or {},
                user=user or "",
                read_only=read_only,
                tmpfs=tmpfs_map,
                labels={**(labels or {}), **self.labels, L.ROLE: short},
                network=self.network_name,
                networking_config={self.network_name: self.client.api.create_endpoint_config(aliases=[short])},
                ports={f"{p}/tcp": ("127.0.0.1", None) for p in ports},
                volumes=mounts,
                privileged=False,
                cap_drop=["ALL"],
                cap_add=caps or None,
                security_opt=["no-new-privileges"],
                healthcheck=_healthcheck(healthcheck),
                log_config=LogConfig(type="json-file", config={"max-size": "10m", "max-file": "1"}),
                **lim.host_config(),
            )
        except docker.errors.APIError as exc:
            raise LabError(f"could not start {short} from {image}: {exc.explanation or exc}",
                           fix="read the engine's explanation above; 'careops doctor' checks the engine") from None
        lc = LabContainer(container)
        if wait:
            lc.wait_until("running", timeout=30)
        return lc

    def run_spec(self, spec: str | dict[str, Any] | ContainerSpec) -> LabContainer:
        """Run a declarative container spec (YAML text, a dict, or a parsed spec)."""
        parsed = spec if isinstance(spec, ContainerSpec) else parse_spec(spec)
        return self.run(**parsed.run_kwargs())

    def container(self, name: str) -> LabContainer:
        """A container of this lab by its short name."""
        full = L.resource_name(self.learner, self.name, L.slug(name, what="container name"))
        try:
            return LabContainer(self.client.containers.get(full))
        except docker.errors.NotFound:
            raise LabError(f"lab {self.name} has no container {name}", fix="start it with lab.run(...)") from None

    def containers(self) -> list[LabContainer]:
        flt = {"label": [f"{L.LAB}={self.name}", f"{L.LEARNER}={self.learner}", f"{L.SESSION}={self.session}"]}
        return [LabContainer(c) for c in self.client.containers.list(all=True, filters=flt)]

    def resources(self) -> list[resources.Resource]:
        return [r for r in resources.find(self.name, self.learner, client=self.client) if r.session == self.session]

    # -- display --------------------------------------------------------
    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self.containers())} container(s)"
        return f"<Lab {self.name} of {self.learner}: {state}>"

    def _repr_html_(self) -> str:
        title = theme.join(["Lab ", theme.code(self.name)])
        if self.closed:
            return theme.card(title, status=theme.muted("closed"))
        rows = []
        for c in self.containers():
            lim = c.limits()
            rows.append([c.name, theme.state(c.state(reload=False).status), theme.num(format_bytes(int(lim["memory"]))),
                         theme.num(lim["cpus"]), theme.num(lim["pids"]), str(lim["user"])])
        table = (theme.table(rows, header=["container", "status", "memory", "cpus", "pids", "user"]) if rows
                 else theme.muted("no containers yet"))
        note = (theme.para(theme.esc(f"Removed {len(self.reclaimed)} leftover resource(s) of an earlier session."))
                if self.reclaimed else "")
        head = theme.para(theme.join(["of ", theme.code(self.learner), ", network ", theme.code(self.network_name)]))
        return theme.card(title, head + note + table)


@atexit.register
def _close_open_labs() -> None:
    """A kernel that exits normally leaves nothing behind."""
    for lab in list(_open_labs):
        if not lab.closed:
            try:
                lab.close()
            except Exception:  # the engine may be gone already; reset finds leftovers later
                pass


__all__ = ["Lab", "DEFAULT_IMAGE", "PolicyViolation"]
