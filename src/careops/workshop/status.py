"""Who is on the workshop and how their servers are: the engine's view joined with the hub's and the roster's."""
from __future__ import annotations

from dataclasses import dataclass, field

import docker

from careops import engine
from careops.report import theme
from careops.workshop.api import HubAPI, HubAPIError
from careops.workshop.hub import (
    HubState,
    hub_state,
    server_containers,
    workspace_volumes,
)
from careops.workshop.labels import LABEL_HUB_USER
from careops.workshop.roster import Enrolled
from careops.workshop.settings import WorkshopSettings


@dataclass
class MemberStatus:
    """One roster member: their role, their server (none, pending, ready) and container, last activity."""

    username: str
    role: str
    server: str = "none"
    container: str = ""
    container_state: str = ""
    last_activity: str = ""
    has_workspace: bool = False


@dataclass
class WorkshopStatus:
    """A workshop at one moment; ``problem`` says why the hub's side is missing, if it is."""

    name: str
    url: str
    hub: HubState
    members: list[MemberStatus] = field(default_factory=list)
    problem: str = ""

    @property
    def running_servers(self) -> int:
        return sum(1 for m in self.members if m.container_state == "running")

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        return [(m.username, m.role, m.server, m.container or "-", m.last_activity or "-") for m in self.members]

    def __str__(self) -> str:
        head = [f"workshop {self.name}: hub {self.hub.state}" + (f" at {self.url}" if self.hub.running else ""),
                f"  {len(self.members)} on the roster, {self.running_servers} server(s) running"]
        if self.problem:
            head.append(f"  {self.problem}")
        if not self.members:
            return "\n".join(head)
        width = max(len(m.username) for m in self.members) + 2
        lines = [f"  {'USER':<{width}}{'ROLE':<12}{'SERVER':<10}{'CONTAINER':<36}LAST ACTIVITY"]
        lines += [f"  {u:<{width}}{r:<12}{s:<10}{c:<36}{a}" for u, r, s, c, a in self.rows()]
        return "\n".join(head + lines)

    def _repr_html_(self) -> str:
        status = theme.state("running" if self.hub.running else "down", self.hub.state)
        body = theme.fields({"hub": self.url, "on the roster": len(self.members),
                             "servers running": self.running_servers})
        if self.problem:
            body += theme.hint(self.problem)
        body += theme.table(self.rows(), ["user", "role", "server", "container", "last activity"])
        return theme.card(f"Workshop {self.name}", body, status=status, ok=self.hub.running)


def workshop_status(settings: WorkshopSettings, enrolled: dict[str, Enrolled], *,
                    cl: docker.DockerClient | None = None, api: HubAPI | None = None) -> WorkshopStatus:
    """The roster's members with their servers (engine) and activity (hub API, when the hub answers)."""
    cl = cl or engine.client()
    state = hub_state(settings, cl)
    status = WorkshopStatus(settings.name, settings.url, state)
    containers = {c.labels.get(LABEL_HUB_USER, ""): c for c in server_containers(settings, cl)}
    volumes = {v.attrs.get("Labels", {}).get(LABEL_HUB_USER, "") for v in workspace_volumes(settings, cl)}
    hub_users: dict[str, dict] = {}
    if state.running:
        try:
            hub_users = {u["name"]: u for u in (api or HubAPI.for_workshop(settings)).users()}
        except HubAPIError as exc:
            status.problem = f"the hub's API did not answer: {exc.message}"
    for username, e in sorted(enrolled.items(), key=lambda kv: (kv[1].role != "instructor", kv[0])):
        m = MemberStatus(username, e.role, has_workspace=username in volumes)
        u = hub_users.get(username)
        if u is not None:
            server = (u.get("servers") or {}).get("")
            m.server = "ready" if server and server.get("ready") else "pending" if server else "none"
            m.last_activity = (u.get("last_activity") or "")[:19].replace("T", " ")
        c = containers.get(username)
        if c is not None:
            m.container, m.container_state = c.name, c.status
        status.members.append(m)
    return status
