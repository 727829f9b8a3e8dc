"""Start, find and stop a workshop's hub on the engine: its container, networks and volumes.

The hub runs in a careops/hub container (jupyterhub-deploy-docker's pattern):

* the engine socket is mounted into the hub container only (with the socket's
  group added): spawning needs it, and the hub is trusted code; learners'
  servers never get it;
* two networks: ``<name>-hub-private`` is internal and its bridge has no
  address on this host (no route out of it, not even to this host's own
  services): the hub and the learners' servers, nothing else;
  ``<name>-hub-public`` carries the published port (``bind:port`` on this host);
* the hub's database and cookie secret live in the ``<name>-hub-state`` volume,
  so a restarted hub keeps its users, sessions and running servers (the servers
  are not stopped with the hub: ``down`` removes them explicitly);
* the hub container itself runs as uid 1000, read-only, without capabilities;
* ``down`` also removes the lab containers and networks the lab broker started
  for this workshop's learners (labelled with the workshop), and their lab
  volumes with ``remove_volumes``.

``up`` is idempotent: an unchanged, running hub is left alone; a changed
configuration restarts the hub container, not the learners' servers.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors

from careops import engine
from careops.errors import PortInUse
from careops.lab.labels import MANAGED as LAB_MANAGED
from careops.workshop.labels import (
    API_TOKEN_ENV,
    HUB_CONFIG_DIR,
    HUB_STATE_DIR,
    LABEL_ROLE,
    LABEL_WORKSHOP,
    PROXY_PORT,
    ROLE_HUB,
    ROLE_NETWORK,
    ROLE_SERVER,
    ROLE_STATE,
    ROLE_WORKSPACE,
)
from careops.workshop.settings import WorkshopError, WorkshopSettings

#: Label on the hub container: hash of what it was started with (config, image, socket, port).
LABEL_HUB_INPUTS = "org.careops.hub-inputs"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30
#: The hub container's own limits (JupyterHub + the proxy + the culler: ~200 MiB for a class of 40).
HUB_MEM = "1g"
HUB_PIDS = 512


def engine_socket() -> Path:
    """The engine's unix socket on this host (what careops.engine connects to), to mount into the hub."""
    for cand in engine.candidates():
        if cand.url.startswith("unix://") and Path(cand.url[len("unix://"):]).exists():
            return Path(cand.url[len("unix://"):])
        if cand.source == "DOCKER_HOST":
            break
    raise WorkshopError("the hub needs the engine's unix socket to start learners' servers, and none was found "
                        f"(tried: {', '.join(c.url for c in engine.candidates())})",
                        fix="run the workshop on the machine that runs the engine, with a local socket "
                            "(unset DOCKER_HOST if it points to a TCP address)")


@dataclass
class HubState:
    """The hub container as the engine has it."""

    name: str
    state: str  # running, exited, created, absent
    url: str
    image: str = ""
    started_at: str = ""

    @property
    def running(self) -> bool:
        return self.state == "running"


def _find_container(cl: docker.DockerClient, name: str):
    try:
        return cl.containers.get(name)
    except docker.errors.NotFound:
        return None


def hub_state(settings: WorkshopSettings, cl: docker.DockerClient | None = None) -> HubState:
    cl = cl or engine.client()
    c = _find_container(cl, settings.hub_container)
    if c is None:
        return HubState(settings.hub_container, "absent", settings.url)
    return HubState(settings.hub_container, c.status, settings.url, (c.image.tags or [c.image.id])[0],
                    c.attrs.get("State", {}).get("StartedAt", ""))


def _require_image(cl: docker.DockerClient, tag: str, what: str) -> str:
    try:
        return str(cl.images.get(tag).id)
    except docker.errors.ImageNotFound:
        raise WorkshopError(f"the {what} image {tag} is not on this engine",
                            fix="build it: make workshop (or: careops release && careops images build learner hub)") from None


#: The private network's bridge gets no address on this host: an internal network still lets containers
#: reach the host itself (any service listening on 0.0.0.0) through its gateway address; without one they cannot.
NO_HOST_ADDRESS = {"com.docker.network.bridge.inhibit_ipv4": "true"}


def _ensure_network(cl: docker.DockerClient, settings: WorkshopSettings, name: str, *, private: bool):
    options = NO_HOST_ADDRESS if private else {}
    for n in cl.networks.list(names=[name]):
        if n.name == name:
            got = (bool(n.attrs.get("Internal")), {k: (n.attrs.get("Options") or {}).get(k) for k in options})
            if got != (private, options):
                raise WorkshopError(f"network {name} exists with internal={got[0]}, options {got[1]}; "
                                    f"expected internal={private}, options {options}",
                                    fix=f"careops workshop down --name {settings.name}, then up again")
            return n
    return cl.networks.create(name, driver="bridge", internal=private, options=options,
                              labels=settings.labels(ROLE_NETWORK))


def _inputs(settings: WorkshopSettings, config_text: str, image_id: str, socket: Path, socket_gid: int) -> str:
    h = hashlib.sha256()
    for part in (config_text, image_id, str(socket), str(socket_gid), settings.bind, str(settings.port),
                 settings.private_network, settings.public_network, settings.state_volume, "hub-container-v1"):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _answering(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "hub/api/", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _logs_tail(container, lines: int = 25) -> str:
    with contextlib.suppress(docker.errors.DockerException):
        return container.logs(tail=lines).decode(errors="replace").strip()
    return "(no logs)"


def _port_taken(settings: WorkshopSettings) -> PortInUse:
    from careops.ports import suggest_port

    other = suggest_port(settings.port)
    return PortInUse(f"cannot start the hub: port {settings.port} on {settings.bind} is already taken by another "
                     "program (expected a free port, got one in use)",
                     fix=f"run 'careops workshop up --port {other}' (make workshop HUB_PORT={other}), "
                         f"or stop the program that uses port {settings.port}")


def up(settings: WorkshopSettings, *, config_text: str, token: str, cl: docker.DockerClient | None = None,
       timeout: float = START_TIMEOUT) -> tuple[HubState, bool]:
    """Make the hub run with ``config_text``; returns its state and whether it was (re)started."""
    from careops.ports import port_free

    cl = cl or engine.client()
    hub_image = _require_image(cl, settings.hub_image, "hub")
    _require_image(cl, settings.learner_image, "learner")
    socket = engine_socket()
    socket_gid = os.stat(socket).st_gid
    inputs = _inputs(settings, config_text, hub_image, socket, socket_gid)
    current = _find_container(cl, settings.hub_container)
    if current is not None and current.status == "running" and current.labels.get(LABEL_HUB_INPUTS) == inputs:
        return hub_state(settings, cl), False
    if current is not None:
        with contextlib.suppress(docker.errors.DockerException):
            current.stop(timeout=STOP_TIMEOUT)
        with contextlib.suppress(docker.errors.NotFound):
            current.remove(force=True)
    if not port_free(settings.port, "0.0.0.0" if settings.bind in ("", "0.0.0.0") else settings.bind):
        raise _port_taken(settings)
    private = _ensure_network(cl, settings, settings.private_network, private=True)
    _ensure_network(cl, settings, settings.public_network, private=False)
    try:
        cl.volumes.get(settings.state_volume)
    except docker.errors.NotFound:
        cl.volumes.create(settings.state_volume, labels=settings.labels(ROLE_STATE))
    container = cl.containers.create(
        settings.hub_image, name=settings.hub_container, hostname=settings.hub_container,
        labels={**settings.labels(ROLE_HUB), LABEL_HUB_INPUTS: inputs},
        environment={API_TOKEN_ENV: token},
        volumes={str(socket): {"bind": "/var/run/docker.sock", "mode": "rw"},
                 str(settings.config_dir): {"bind": HUB_CONFIG_DIR, "mode": "ro"},
                 settings.state_volume: {"bind": HUB_STATE_DIR, "mode": "rw"}},
        ports={f"{PROXY_PORT}/tcp": (settings.bind or "0.0.0.0", settings.port)},
        network=settings.public_network, group_add=[str(socket_gid)],
        cap_drop=["ALL"], security_opt=["no-new-privileges:true"], read_only=True,
        tmpfs={"/tmp": "rw,nosuid,nodev,size=64m"}, mem_limit=HUB_MEM, pids_limit=HUB_PIDS,
        restart_policy={"Name": "unless-stopped"},
    )
    try:
        private.connect(container, aliases=["hub"])
        container.start()
    except docker.errors.APIError as exc:
        with contextlib.suppress(docker.errors.DockerException):
            container.remove(force=True)
        text = str(exc.explanation or exc)
        if "address already in use" in text or "port is already allocated" in text:
            raise _port_taken(settings) from None
        raise WorkshopError(f"the engine could not start the hub container: {text}",
                            fix="read the engine's explanation above; `careops doctor` checks the engine") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("created", "running"):
            raise WorkshopError(f"the hub stopped while starting (state {container.status}); its last lines:\n    "
                                + _logs_tail(container).replace("\n", "\n    "),
                                fix=f"read the hub's log above (docker logs {settings.hub_container}); "
                                    "`careops workshop down` then `up` starts afresh")
        if _answering(settings.url):
            return hub_state(settings, cl), True
        time.sleep(0.5)
    raise WorkshopError(f"the hub did not answer at {settings.url} within {timeout:.0f} s; its last lines:\n    "
                        + _logs_tail(container).replace("\n", "\n    "),
                        fix=f"read the hub's log (docker logs {settings.hub_container}); a slow disk may need "
                            "another try: careops workshop up")


@dataclass
class DownReport:
    """What ``down`` removed and what it kept (learners' work, unless asked)."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"removed {len(self.removed)}: " + (", ".join(self.removed) or "nothing")]
        if self.kept:
            lines.append(f"kept {len(self.kept)} volume(s) with learners' work and the hub's state: "
                         + ", ".join(self.kept) + " (remove them with --remove-volumes)")
        lines += [f"FAILED to remove {f}" for f in self.failed]
        return "\n".join(lines)


def _mine(settings: WorkshopSettings, role: str) -> dict[str, list[str]]:
    return {"label": [f"{LABEL_WORKSHOP}={settings.name}", f"{LABEL_ROLE}={role}"]}


def server_containers(settings: WorkshopSettings, cl: docker.DockerClient | None = None) -> list:
    """The learners' server containers of this workshop (running or not)."""
    cl = cl or engine.client()
    return cl.containers.list(all=True, filters=_mine(settings, ROLE_SERVER))


def workspace_volumes(settings: WorkshopSettings, cl: docker.DockerClient | None = None) -> list:
    """The learners' workspace volumes of this workshop."""
    cl = cl or engine.client()
    return cl.volumes.list(filters=_mine(settings, ROLE_WORKSPACE))


def down(settings: WorkshopSettings, *, remove_volumes: bool = False,
         cl: docker.DockerClient | None = None) -> DownReport:
    """Remove the hub, every learner's server and both networks; keep the volumes unless ``remove_volumes``."""
    cl = cl or engine.client()
    report = DownReport()

    def remove(what: str, action) -> None:
        try:
            action()
            report.removed.append(what)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            report.failed.append(f"{what}: {exc.explanation or exc}")

    hub = _find_container(cl, settings.hub_container)
    if hub is not None:
        with contextlib.suppress(docker.errors.DockerException):
            hub.stop(timeout=STOP_TIMEOUT)
        remove(f"container {hub.name}", lambda: hub.remove(force=True))
    for c in server_containers(settings, cl):
        remove(f"container {c.name}", lambda c=c: c.remove(force=True))
    labs = {"label": [f"{LABEL_WORKSHOP}={settings.name}", f"{LAB_MANAGED}=true"]}  # what the lab broker started
    for c in cl.containers.list(all=True, filters=labs):
        remove(f"lab container {c.name}", lambda c=c: c.remove(force=True, v=True))
    for n in cl.networks.list(filters=labs):
        remove(f"lab network {n.name}", n.remove)
    for name in (settings.private_network, settings.public_network):
        for n in cl.networks.list(names=[name]):
            if n.name == name:
                remove(f"network {name}", n.remove)
    volumes = workspace_volumes(settings, cl) + cl.volumes.list(filters=labs)
    with contextlib.suppress(docker.errors.NotFound):
        volumes.append(cl.volumes.get(settings.state_volume))
    for v in volumes:
        if remove_volumes:
            remove(f"volume {v.name}", lambda v=v: v.remove(force=True))
        else:
            report.kept.append(v.name)
    return report
