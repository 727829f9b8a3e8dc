"""The Lab: a sandbox that owns every container, network and volume it starts.

A learner opens one per exercise (``lab = Lab("orientation")``); everything it
starts is labelled with the lab and learner, joins the lab's private network,
runs with memory/CPU/pids limits, never privileged, with all capabilities
dropped but an allowlist, and with no host folder but the lab's explicit work
folder. Closing the lab (or leaving its ``with`` block) removes all of it;
what a crashed kernel leaves behind, ``careops labs reset`` or the next
``Lab(...)`` of the same name removes.

Where it runs is the backend's business (careops.lab.connect): this machine's
engine, or the workshop's lab broker, which applies the same policy server-side.
"""
from __future__ import annotations

import atexit
import hashlib
import uuid
import weakref
from pathlib import Path
from typing import Any, Iterable

import docker

from careops.errors import LabError, PolicyViolation
from careops.images.catalog import LAB_IMAGE
from careops.lab import labels as L
from careops.lab import resources
from careops.lab.backend import LabRef, RunRequest
from careops.lab.connect import lab_backend
from careops.lab.container import LabContainer
from careops.lab.policy import Limits, check_bind_mount, format_bytes
from careops.lab.spec import ContainerSpec, parse_spec
from careops.report import theme

DEFAULT_IMAGE = LAB_IMAGE
#: Bytes of a work folder a lab copies into a volume (through the broker, where no folder can be mounted)
COPY_LIMIT = 32 * 1024**2
_open_labs: "weakref.WeakSet[Lab]" = weakref.WeakSet()


class Lab:
    """A learner's sandbox on the container engine; use as a context manager or close()."""

    def __init__(self, name: str, *, learner: str | None = None, workdir: str | Path | None = None,
                 client: docker.DockerClient | None = None, reclaim: bool = True, network: bool = True) -> None:
        """``network=False``: the lab has no network and its containers none at all (network mode none: no ports,
        no names of each other); for work that needs no network, such as a CI job, it saves creating one."""
        self.backend = lab_backend(client)
        self.name = L.slug(name, what="lab name")
        self.learner = self.backend.learner(learner)
        self.session = uuid.uuid4().hex[:12]
        self.workdir = Path(workdir).resolve() if workdir else None
        self.ref = LabRef.new(self.name, self.learner, self.session)
        self.labels = self.ref.labels()
        self.network_name = self.ref.network_name
        self.closed = False
        self.networked = network
        network_name, reclaimed = self.backend.open_lab(self.ref, reclaim=reclaim, network=network)
        self.network_name = network_name
        self.reclaimed: list[resources.Resource] = [resources.resource_from(r) for r in reclaimed]
        _open_labs.add(self)

    @property
    def client(self) -> docker.DockerClient:
        """The docker SDK client of this lab's engine (on this machine only: not through the workshop's broker)."""
        found = getattr(self.backend, "client", None)
        if found is None:
            raise LabError(f"lab {self.name} runs through the workshop's lab broker: there is no engine client here",
                           fix="use the lab's own methods (lab.run, container.exec, ...); they work in both places")
        return found

    # -- lifecycle ------------------------------------------------------
    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> resources.RemovalReport:
        """Remove everything this lab owns (containers, network, volumes)."""
        report = resources.remove(self.resources(), backend=self.backend)
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
        return self.backend.volume(self.ref, name, size=size, owner=owner)

    def run(self, image: str = DEFAULT_IMAGE, *, name: str, command: str | list[str] | None = None,
            env: dict[str, str] | None = None, ports: Iterable[int] = (), user: str | None = None,
            read_only: bool = False, tmpfs: Iterable[str] = (), limits: Limits | None = None,
            memory: str | int | None = None, cpus: float | None = None, pids: int | None = None,
            labels: dict[str, str] | None = None, volumes: dict[str, str] | None = None,
            binds: dict[str | Path, str] | None = None, cap_add: Iterable[str] = (),
            healthcheck: dict[str, Any] | None = None, wait: bool = True) -> LabContainer:
        """Start a container in this lab under the sandbox rules.

        ``volumes`` maps lab volume names to container paths; ``binds`` maps host
        folders (inside the lab's work folder only) to container paths, read-only
        (through the workshop's lab broker: a read-only copy of the folder in a lab volume).
        A container of the same name in this lab is replaced, so re-running a
        notebook cell works.
        """
        self._require_open()
        lim = limits or Limits.from_values(memory, cpus, pids)
        mounted, copies = dict(volumes or {}), []
        if binds and self.backend.via_broker:  # no folder of this machine reaches the workshop host: copies do
            for host, target in binds.items():
                volume = self._copy_into_volume(check_bind_mount(host, self.workdir))
                mounted[volume] = target
                copies.append(volume)
            binds = {}
        request = RunRequest(
            name=name, image=image, command=command, env=dict(env or {}), ports=[int(p) for p in ports],
            user=user, read_only=read_only, tmpfs=list(tmpfs), limits=lim, labels=dict(labels or {}),
            volumes=mounted, read_only_volumes=copies, binds={str(k): v for k, v in (binds or {}).items()},
            cap_add=list(cap_add), healthcheck=healthcheck, wait=wait, offline=not self.networked)
        lc = LabContainer(self.backend.run(self.ref, request, workdir=str(self.workdir) if self.workdir else None))
        if wait and lc.state(reload=False).status != "running":  # as the engine answered the start
            lc.wait_until("running", timeout=30, done_ok=True)
        return lc

    def run_spec(self, spec: str | dict[str, Any] | ContainerSpec) -> LabContainer:
        """Run a declarative container spec (YAML text, a dict, or a parsed spec)."""
        parsed = spec if isinstance(spec, ContainerSpec) else parse_spec(spec)
        return self.run(**parsed.run_kwargs())

    def _copy_into_volume(self, folder: Path) -> str:
        """A lab volume holding a copy of ``folder`` (through the broker, in place of mounting it); its short name."""
        short = f"copy-{hashlib.sha256(str(folder).encode()).hexdigest()[:10]}"
        self.volume(short)
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        if sum(len(data) for data in files.values()) > COPY_LIMIT:
            raise LabError(f"{folder} holds more than {format_bytes(COPY_LIMIT)}: too much to copy into the lab",
                           fix="keep only what the container needs in that folder")
        filler = LabContainer(self.backend.run(self.ref, RunRequest(
            name=f"{short}-filler", image=DEFAULT_IMAGE, command=["sleep", "60"], volumes={short: "/copy"},
            limits=Limits.from_values("16m", 0.2, 16))))
        try:
            filler.put_files("/copy", files)
        finally:
            filler.remove()
        return short

    def container(self, name: str) -> LabContainer:
        """A container of this lab by its short name."""
        found = self.backend.container(self.ref, name)
        if found is None:
            raise LabError(f"lab {self.name} has no container {name}", fix="start it with lab.run(...)")
        return LabContainer(found)

    def containers(self) -> list[LabContainer]:
        return [LabContainer(c) for c in self.backend.containers(self.ref)]

    def resources(self) -> list[resources.Resource]:
        return [r for r in resources.find(self.name, self.learner, backend=self.backend) if r.session == self.session]

    def image_config(self, image: str) -> dict[str, Any]:
        """The ``Config`` part of an image's inspect data (env, volumes, user, healthcheck, labels)."""
        info = self.backend.image_inspect(image)
        if info is None:
            raise LabError(f"image {image} is not on this engine", fix="build it first (make images, or its build cell)")
        return info.get("Config") or {}

    def engine(self) -> str:
        """The engine the lab runs on: 'Docker Engine 24.0.7' (through the broker: the workshop host's)."""
        return self.backend.describe()

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
