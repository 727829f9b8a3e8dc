"""Where lab operations run: on the engine itself, or through the workshop's lab broker.

``Lab`` and ``LabContainer`` are what a learner's cells call; they hand every
operation to a backend, chosen by the environment:

* ``DirectBackend`` (careops.lab.direct): the docker SDK on this machine's
  engine, as on a laptop (``make lab``) and in the grader. It applies the
  sandbox policy (careops.lab.policy) to every request.
* ``BrokerBackend`` (careops.lab.broker): HTTP to the workshop's lab broker,
  when ``CAREOPS_BROKER_URL`` is set (the hub's spawner sets it in each
  learner's server, which has no engine socket). The broker runs the same
  ``DirectBackend`` for the learner its hub token names, with names, labels,
  networks, images and quotas forced server-side; nothing the client sends is
  trusted.

The requests that cross the wire are plain data (``LabRef``, ``RunRequest``),
parsed strictly on arrival: an unknown or refused key is an error, never ignored.
"""
from __future__ import annotations

import os
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from careops.errors import PolicyViolation
from careops.lab import labels as L
from careops.lab.policy import Limits
from careops.lab.spec import ContainerSpec

#: Set by the workshop's spawner in every learner's server: the lab broker's base URL.
BROKER_URL_ENV = "CAREOPS_BROKER_URL"
#: The token the client shows the broker; JupyterHub's own for the server (JUPYTERHUB_API_TOKEN) by default.
BROKER_TOKEN_ENV = "CAREOPS_BROKER_TOKEN"
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"

_SESSION_OK = re.compile(r"^[0-9a-f]{6,32}$")
_HOST_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_PID_OK = re.compile(r"^[0-9]{1,10}$")


def _refuse(what: str, fix: str) -> PolicyViolation:
    return PolicyViolation(what, fix=fix)


def _str_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _refuse(f"{what} must map text to text, got {type(value).__name__}", f"e.g. {what}: {{KEY: value}}")
    return dict(value)


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _refuse(f"{what} must be a list of text, got {type(value).__name__}", f"e.g. {what}: [a, b]")
    return list(value)


def _container_path(path: str, what: str) -> str:
    if not path.startswith("/") or any(c in path for c in ":,\0\n") or len(path) > 255:
        raise _refuse(f"{what} {path!r} is not an absolute path inside the container",
                      "write it like /data (no colons or commas)")
    return path


@dataclass(frozen=True)
class LabRef:
    """Which lab a request is about: its name, its learner, the session (one Lab object) and who made it.

    ``creator_host``/``creator_pid`` are the process that opened the lab (a notebook's kernel): labels that
    tell later whether it is still alive (careops.lab.resources), never used to decide what a request may do.
    """

    name: str
    learner: str
    session: str
    creator_host: str
    creator_pid: str

    @classmethod
    def new(cls, name: str, learner: str, session: str) -> LabRef:
        return cls(name, learner, session, socket.gethostname(), str(os.getpid()))

    def labels(self) -> dict[str, str]:
        return L.lab_labels(self.name, self.learner, self.session, host=self.creator_host, pid=self.creator_pid)

    @property
    def network_name(self) -> str:
        return L.resource_name(self.learner, self.name)

    def resource_name(self, short: str) -> str:
        return L.resource_name(self.learner, self.name, short)

    def to_wire(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: Any) -> LabRef:
        """A LabRef from a request's JSON, checked: names are careops slugs, the rest plain tokens."""
        if not isinstance(data, dict) or set(data) != {"name", "learner", "session", "creator_host", "creator_pid"}:
            raise _refuse("a lab reference must have exactly name, learner, session, creator_host, creator_pid",
                          "use careops.lab.Lab: it sends these itself")
        values = {k: data[k] for k in data}
        if not all(isinstance(v, str) for v in values.values()):
            raise _refuse("every field of a lab reference is text", "use careops.lab.Lab")
        for key in ("name", "learner"):
            try:
                clean = L.slug(values[key], what=f"lab {key}")
            except ValueError:
                clean = ""
            if clean != values[key]:
                raise _refuse(f"lab {key} {values[key]!r} is not a lab name (lowercase letters, digits, dashes)",
                              "use careops.lab.Lab: it makes safe names itself")
        checks = ((_SESSION_OK, "session"), (_HOST_OK, "creator_host"), (_PID_OK, "creator_pid"))
        for pattern, key in checks:
            if not pattern.match(values[key]):
                raise _refuse(f"lab {key} {values[key]!r} is malformed", "use careops.lab.Lab")
        return cls(**values)


@dataclass(frozen=True)
class ResourceRecord:
    """One container, network or volume with careops lab labels, as the engine lists it."""

    kind: str  # container | network | volume
    name: str
    labels: dict[str, str]
    status: str

    def to_wire(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_wire(cls, data: Any) -> ResourceRecord:
        if not isinstance(data, dict) or data.get("kind") not in ("container", "network", "volume"):
            raise _refuse("a resource is {kind: container|network|volume, name: ...}", "use careops.lab.reset")
        return cls(str(data["kind"]), str(data.get("name", "")), _str_map(data.get("labels"), "labels"),
                   str(data.get("status", "-")))


#: What a lab container may be asked for; everything else is refused by name (or as unknown).
RUN_REFUSED = {
    "privileged": "lab containers never run privileged",
    "network_mode": "lab containers always join their lab's own network",
    "network": "lab containers always join their lab's own network",
    "pid_mode": "lab containers never share the host's processes",
    "ipc_mode": "lab containers never share the host's memory",
    "userns_mode": "lab containers keep the engine's user namespace",
    "devices": "lab containers get no host devices",
    "mounts": "only lab volumes (and, on your own machine, folders of the lab's work folder) are mounted",
    "volumes_from": "only lab volumes are mounted",
    "security_opt": "the lab sets no-new-privileges itself",
    "cap_drop": "every capability is dropped; ask for some back with cap_add",
    "sysctls": "lab containers keep the engine's kernel settings",
    "runtime": "lab containers use the engine's default runtime",
    "cgroup_parent": "lab containers stay in the engine's own cgroups",
    "extra_hosts": "lab containers resolve only their lab's names",
}


@dataclass
class RunRequest(ContainerSpec):
    """One ``Lab.run``: a container spec plus what only Lab.run says (host folders, read-only volumes, waiting),
    before the sandbox policy turns it into an engine call. Its ``image`` is always given."""

    #: the names in ``volumes`` mounted read-only
    read_only_volumes: list[str] = field(default_factory=list)
    #: host folder -> container path (read-only); the host is the engine's, so only a local lab has them
    binds: dict[str, str] = field(default_factory=dict)
    wait: bool = True
    #: no network at all (a lab opened without one): more confined than the lab's network, never less
    offline: bool = False

    def to_wire(self) -> dict[str, Any]:
        data = asdict(self)
        data["limits"] = {"memory": self.limits.memory, "cpus": self.limits.cpus, "pids": self.limits.pids}
        return data

    @classmethod
    def from_wire(cls, data: Any) -> RunRequest:
        """A RunRequest from JSON: refused keys named with the reason, unknown keys refused, every type checked."""
        if not isinstance(data, dict):
            raise _refuse(f"a run request is a JSON object, got {type(data).__name__}", "use careops.lab.Lab.run")
        known = {f for f in cls.__dataclass_fields__}
        for key in data:
            if key in RUN_REFUSED:
                raise _refuse(f"'{key}' is refused: {RUN_REFUSED[key]}", f"remove '{key}'")
            if key not in known:
                raise _refuse(f"the lab API has no option '{key}'", "use only: " + ", ".join(sorted(known)))
        if not isinstance(data.get("name"), str) or not isinstance(data.get("image"), str):
            raise _refuse("a run request needs a name and an image (text)", "e.g. lab.run(image, name='probe')")
        command = data.get("command")
        if command is not None and not isinstance(command, str):
            command = _str_list(command, "command")
        ports = data.get("ports") or []
        if not isinstance(ports, list) or not all(isinstance(p, int) and 1 <= p <= 65535 for p in ports):
            raise _refuse(f"ports must be container port numbers 1-65535, got {ports!r}", "e.g. ports: [8080]")
        lim = data.get("limits") or {}
        if not isinstance(lim, dict) or set(lim) - {"memory", "cpus", "pids"}:
            raise _refuse("limits take memory, cpus and pids", "e.g. limits: {memory: 128m, cpus: 0.5, pids: 64}")
        health = data.get("healthcheck")
        if health is not None and (not isinstance(health, dict) or
                                   set(health) - {"test", "interval", "timeout", "retries", "start_period"}):
            raise _refuse("healthcheck takes test, interval, timeout, retries, start_period",
                          "e.g. healthcheck: {test: 'curl -f http://127.0.0.1/', interval: 2s}")
        user = data.get("user")
        for flag in ("read_only", "wait", "offline"):
            if not isinstance(data.get(flag, False), bool):
                raise _refuse(f"{flag} must be true or false", f"{flag}: true")
        return cls(
            name=data["name"], image=data["image"], command=command,
            env=_str_map(data.get("env"), "env"), ports=list(ports),
            user=None if user is None else str(user), read_only=bool(data.get("read_only", False)),
            tmpfs=[_container_path(p, "tmpfs folder") for p in _str_list(data.get("tmpfs"), "tmpfs")],
            limits=Limits.from_values(lim.get("memory"), lim.get("cpus"), lim.get("pids")),
            labels=_str_map(data.get("labels"), "labels"),
            volumes={k: _container_path(v, f"volume {k}'s target")
                     for k, v in _str_map(data.get("volumes"), "volumes").items()},
            read_only_volumes=_str_list(data.get("read_only_volumes"), "read_only_volumes"),
            binds={k: _container_path(v, f"folder {k}'s target") for k, v in _str_map(data.get("binds"), "binds").items()},
            cap_add=_str_list(data.get("cap_add"), "cap_add"), healthcheck=health,
            wait=bool(data.get("wait", True)), offline=bool(data.get("offline", False)),
        )


class ExecSession(Protocol):
    """A command started in a container: its output as it comes, then its exit code."""

    def chunks(self) -> Iterator[bytes]: ...

    def exit_code(self) -> int | None: ...


class ContainerHandle(Protocol):
    """What ``LabContainer`` needs of one container; each backend has its own (docker SDK object, broker URL)."""

    @property
    def name(self) -> str: ...

    @property
    def id(self) -> str: ...

    @property
    def attrs(self) -> dict[str, Any]: ...

    @property
    def status(self) -> str: ...

    def reload(self) -> None: ...  # docker.errors.NotFound when it is gone

    def image_tags(self) -> list[str]: ...

    def host_port(self, key: str) -> int | None: ...  # where this machine reaches a container port

    def exec_open(self, argv: list[str], *, timeout: float, env: dict[str, str], user: str,
                  workdir: str | None) -> ExecSession: ...

    def put_archive(self, path: str, data: bytes) -> bool: ...

    def get_archive(self, path: str) -> bytes: ...

    def top(self, ps_args: str) -> dict[str, Any]: ...

    def logs(self, tail: int | None, stdout: bool, stderr: bool) -> bytes: ...

    def wait(self, timeout: float | None) -> int | None: ...  # None: not exited within timeout

    def start(self) -> None: ...

    def stop(self, timeout: int) -> None: ...

    def restart(self, timeout: int) -> None: ...

    def kill(self, signal: str | int | None) -> None: ...

    def remove(self) -> None: ...


class LabBackend(ABC):
    """The operations of the lab API; every one is checked against the sandbox policy where it runs."""

    #: True when requests leave this process for the broker (no engine here, no host folders to mount)
    via_broker: bool = False

    @abstractmethod
    def describe(self) -> str:
        """'Docker Engine 24.0.7' (through the broker: what the broker runs on)."""

    @abstractmethod
    def learner(self, asked: str | None) -> str:
        """The learner id labs are opened for: ``asked`` (or this machine's learner); the broker's own otherwise."""

    @abstractmethod
    def open_lab(self, ref: LabRef, *, reclaim: bool, network: bool = True) -> tuple[str, list[ResourceRecord]]:
        """Remove what an earlier session of the lab left (``reclaim``) and create its network (``network``: a lab
        whose containers get none at all has none); (network name or "none", reclaimed)."""

    @abstractmethod
    def volume(self, ref: LabRef, name: str, *, size: str | None = None, owner: int | None = None) -> str:
        """A named volume of the lab (made when missing); its engine name. ``size``: a small tmpfs disk of its own
        that fills up at that size, its root owned by uid/gid ``owner``."""

    @abstractmethod
    def run(self, ref: LabRef, request: RunRequest, *, workdir: str | None = None) -> ContainerHandle:
        """Start a container under the sandbox policy (a container of the same name in the lab is replaced)."""

    @abstractmethod
    def container(self, ref: LabRef, short: str) -> ContainerHandle | None:
        """The lab's container called ``short``, or None."""

    @abstractmethod
    def containers(self, ref: LabRef) -> list[ContainerHandle]:
        """The containers of this lab session."""

    @abstractmethod
    def find(self, lab: str | None, learner: str | None) -> list[ResourceRecord]:
        """Lab resources by lab and learner (None: any that this backend may show)."""

    @abstractmethod
    def remove(self, records: list[ResourceRecord]) -> tuple[list[ResourceRecord], list[tuple[ResourceRecord, str]]]:
        """Remove containers, then networks, then volumes; (removed, [(not removed, why)])."""

    @abstractmethod
    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        """The engine's inspect data of an image a lab may use, or None when it is not there."""


def via_broker() -> bool:
    """True when this process reaches the engine through the workshop's lab broker (CAREOPS_BROKER_URL)."""
    return bool(os.environ.get(BROKER_URL_ENV))
