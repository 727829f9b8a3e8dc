"""Find and remove lab resources by their labels -- also after a kernel crashed.

A resource is "leaked" when the process that created it is gone (its creator
pid no longer runs on this host) but the resource is still there.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

import docker
import docker.errors

from careops import engine
from careops.lab import labels as L
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


def _filters(lab: str | None, learner: str | None, creator_pid: int | None = None) -> dict[str, list[str]]:
    wanted = [f"{L.MANAGED}=true"]
    if creator_pid is not None:
        wanted += [f"{L.CREATOR_PID}={creator_pid}", f"{L.CREATOR_HOST}={socket.gethostname()}"]
    if lab:
        wanted.append(f"{L.LAB}={lab}")
    if learner:
        wanted.append(f"{L.LEARNER}={learner}")
    return {"label": wanted}


def find(lab: str | None = None, learner: str | None = None, *,
         client: docker.DockerClient | None = None, creator_pid: int | None = None) -> list[Resource]:
    """Every lab resource matching ``lab`` and ``learner`` (None: any), only those made by the process
    ``creator_pid`` of this host when given."""
    cl = client or engine.client()
    flt = _filters(lab, learner, creator_pid)
    found: list[Resource] = []

    def add(kind: str, name: str, lbl: dict[str, str], status: str) -> None:
        alive = _pid_alive(lbl.get(L.CREATOR_HOST, ""), lbl.get(L.CREATOR_PID, ""))
        found.append(Resource(kind, name, lbl.get(L.LAB, "?"), lbl.get(L.LEARNER, "?"),
                              lbl.get(L.SESSION, "?"), status, alive))

    for c in cl.containers.list(all=True, filters=flt, ignore_removed=True):  # one may go while we look
        add("container", c.name, c.labels, c.status)
    for n in cl.networks.list(filters=flt):
        add("network", n.name, n.attrs.get("Labels") or {}, "-")
    for v in cl.volumes.list(filters=flt):
        add("volume", v.name, v.attrs.get("Labels") or {}, "-")
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


def remove(resources: list[Resource], *, client: docker.DockerClient | None = None) -> RemovalReport:
    """Remove containers first (they hold networks and volumes), then networks, then volumes."""
    cl = client or engine.client()
    report = RemovalReport()
    order = {"container": 0, "network": 1, "volume": 2}
    for res in sorted(resources, key=lambda r: order[r.kind]):
        try:
            if res.kind == "container":
                cl.containers.get(res.name).remove(force=True, v=True)
            elif res.kind == "network":
                cl.networks.get(res.name).remove()
            else:
                cl.volumes.get(res.name).remove(force=True)
            report.removed.append(res)
        except docker.errors.NotFound:
            report.removed.append(res)  # already gone is what we wanted
        except docker.errors.APIError as exc:
            report.failed.append((res, exc.explanation or str(exc)))
    return report


def reset(lab: str | None = None, learner: str | None = None, *,
          client: docker.DockerClient | None = None) -> RemovalReport:
    """Remove every resource of ``lab`` (None: all labs) of ``learner`` (None: you)."""
    return remove(find(lab, learner or L.learner_id(), client=client), client=client)


def as_dataframe(resources: list[Resource]):  # -> pandas.DataFrame
    """A table for notebooks: one row per resource, with a `leaked` column."""
    import pandas as pd

    cols = ["kind", "name", "lab", "learner", "status", "leaked"]
    return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in resources], columns=cols)
