"""Find and remove lab resources by their labels -- also after a kernel crashed.

A resource is "leaked" when the process that created it is gone (its creator
pid no longer runs on this host) but the resource is still there.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import docker

from careops.lab import labels as L
from careops.lab.backend import LabBackend, ResourceRecord
from careops.lab.connect import lab_backend
from careops.report import theme


@dataclass(frozen=True)
class Resource:
    """One container, network or volume that carries careops lab labels."""

    kind: str  # container | network | volume
    name: str
    lab: str
    learner: str
    session: str
    status: str
    creator_alive: bool

    @property
    def leaked(self) -> bool:
        return not self.creator_alive


def _pid_alive(host: str, pid: str) -> bool:
    if host != socket.gethostname():
        return True  # another machine's process: we cannot tell, assume alive
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def resource_from(record: ResourceRecord) -> Resource:
    """A Resource from the engine's record; whether its creator lives is judged here, where the labs' kernels run."""
    lbl = record.labels
    alive = _pid_alive(lbl.get(L.CREATOR_HOST, ""), lbl.get(L.CREATOR_PID, ""))
    return Resource(record.kind, record.name, lbl.get(L.LAB, "?"), lbl.get(L.LEARNER, "?"), lbl.get(L.SESSION, "?"),
                    record.status, alive)


def find(lab: str | None = None, learner: str | None = None, *,
         client: docker.DockerClient | None = None, backend: LabBackend | None = None,
         creator_pid: int | None = None) -> list[Resource]:
    """Every lab resource matching ``lab`` and ``learner`` (None: any; through the broker: only your own), only
    those made by the process ``creator_pid`` of this host when given."""
    records = (backend or lab_backend(client)).find(lab, learner)
    if creator_pid is not None:
        here = socket.gethostname()
        records = [r for r in records if r.labels.get(L.CREATOR_PID) == str(creator_pid)
                   and r.labels.get(L.CREATOR_HOST) == here]
    found = [resource_from(r) for r in records]
    return sorted(found, key=lambda r: (r.learner, r.lab, ["container", "network", "volume"].index(r.kind), r.name))


@dataclass
class RemovalReport:
    """What a reset removed, and what it could not (with the engine's reason)."""

    removed: list[Resource] = field(default_factory=list)
    failed: list[tuple[Resource, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"removed {len(self.removed)} lab resource(s)"]
        lines += [f"  - {r.kind} {r.name}" for r in self.removed]
        lines += [f"  ! could not remove {r.kind} {r.name}: {why}" for r, why in self.failed]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        entries = [(True, theme.join([f"{r.kind} ", theme.code(r.name)])) for r in self.removed]
        entries += [(False, theme.join([f"{r.kind} ", theme.code(r.name), f": {w}"])) for r, w in self.failed]
        status = theme.verdict(not self.failed, f"removed {len(self.removed)} lab resource(s)",
                               f"{len(self.failed)} could not be removed")
        return theme.card("Lab clean-up", theme.items(entries), status=status, ok=not self.failed)


def remove(resources: list[Resource], *, client: docker.DockerClient | None = None,
           backend: LabBackend | None = None) -> RemovalReport:
    """Remove containers first (they hold networks and volumes), then networks, then volumes."""
    by_key = {(r.kind, r.name): r for r in resources}
    removed, failed = (backend or lab_backend(client)).remove(
        [ResourceRecord(r.kind, r.name, {}, r.status) for r in resources])
    return RemovalReport([by_key[(r.kind, r.name)] for r in removed],
                         [(by_key[(r.kind, r.name)], why) for r, why in failed])


def reset(lab: str | None = None, learner: str | None = None, *,
          client: docker.DockerClient | None = None) -> RemovalReport:
    """Remove every resource of ``lab`` (None: all labs) of ``learner`` (None: you)."""
    backend = lab_backend(client)
    return remove(find(lab, backend.learner(learner), backend=backend), backend=backend)


def as_dataframe(resources: list[Resource]):  # -> pandas.DataFrame
    """A table for notebooks: one row per resource, with a `leaked` column."""
    import pandas as pd

    cols = ["kind", "name", "lab", "learner", "status", "leaked"]
    return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in resources], columns=cols)
