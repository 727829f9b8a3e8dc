"""Declarative container specs: what a learner writes instead of Docker calls.

Learners describe a container in YAML (an artifact cell); careops' own code
validates it and runs it, in the learner's lab and in the grader alike, so
learner code never drives the engine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from careops.errors import PolicyViolation
from careops.lab import labels as L
from careops.lab.policy import Limits, check_capabilities

ALLOWED_KEYS = {
    "name": "a short name, e.g. triage-probe",
    "image": "the image to run",
    "command": "the command, as a list",
    "env": "environment variables",
    "ports": "container ports to publish on 127.0.0.1",
    "user": "the user to run as (uid or name)",
    "read_only": "true for a read-only root filesystem",
    "tmpfs": "writable in-memory folders for a read-only container",
    "limits": "memory, cpus and pids",
    "labels": "your own labels",
    "volumes": "named volumes: {volume: /path/in/container}",
    "cap_add": "capabilities to add back",
    "healthcheck": "test, interval, timeout, retries",
}
REFUSED_KEYS = {
    "privileged": "lab containers never run privileged",
    "network_mode": "lab containers always join their lab's own network",
    "pid_mode": "lab containers never share the host's processes",
    "binds": "host folders are mounted only by the lab itself, from its work folder",
    "devices": "lab containers get no host devices",
}


@dataclass
class ContainerSpec:
    """A validated container spec; ``run_kwargs`` feeds Lab.run."""

    name: str
    image: str | None = None
    command: list[str] | str | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    user: str | None = None
    read_only: bool = False
    tmpfs: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    labels: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, str] = field(default_factory=dict)
    cap_add: list[str] = field(default_factory=list)
    healthcheck: dict[str, Any] | None = None

    def run_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = dict(
            name=self.name, command=self.command, env=self.env, ports=self.ports, user=self.user,
            read_only=self.read_only, tmpfs=self.tmpfs, limits=self.limits, labels=self.labels,
            volumes=self.volumes, cap_add=self.cap_add, healthcheck=self.healthcheck,
        )
        if self.image:
            kw["image"] = self.image
        return kw


def parse_spec(source: str | dict[str, Any]) -> ContainerSpec:
    """Parse and validate a spec; every problem names the key and the fix."""
    if isinstance(source, str):
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise PolicyViolation(f"the container spec is not valid YAML{where}: {exc}",
                                  fix="check the indentation and the colons of that line") from None
    else:
        data = source
    if not isinstance(data, dict):
        raise PolicyViolation(f"the container spec must be a YAML mapping (key: value lines), got {type(data).__name__}",
                              fix="start with lines such as 'name: triage-probe'")
    for key in data:
        if key in REFUSED_KEYS:
            raise PolicyViolation(f"key '{key}' is refused: {REFUSED_KEYS[key]}", fix=f"remove '{key}'")
        if key not in ALLOWED_KEYS:
            raise PolicyViolation(f"unknown key '{key}' in the container spec",
                                  fix="use only: " + ", ".join(ALLOWED_KEYS))
    if not data.get("name"):
        raise PolicyViolation("the container spec has no 'name'", fix="add e.g. 'name: triage-probe'")
    limits = data.get("limits") or {}
    if not isinstance(limits, dict) or set(limits) - {"memory", "cpus", "pids"}:
        raise PolicyViolation("'limits' takes memory, cpus and pids", fix="e.g. limits: {memory: 128m, cpus: 0.5, pids: 64}")
    labels = {str(k): str(v) for k, v in (data.get("labels") or {}).items()}
    own = [k for k in labels if k.startswith(L.PREFIX + ".")]
    if own:
        raise PolicyViolation(f"labels {own} are careops' own and set by the lab", fix="choose other label names")
    user = data.get("user")
    return ContainerSpec(
        name=str(data["name"]),
        image=data.get("image"),
        command=data.get("command"),
        env={str(k): str(v) for k, v in (data.get("env") or {}).items()},
        ports=[int(p) for p in data.get("ports") or []],
        user=None if user is None else str(user),
        read_only=bool(data.get("read_only", False)),
        tmpfs=[str(t) for t in data.get("tmpfs") or []],
        limits=Limits.from_values(limits.get("memory"), limits.get("cpus"), limits.get("pids")),
        labels=labels,
        volumes={str(k): str(v) for k, v in (data.get("volumes") or {}).items()},
        cap_add=check_capabilities(data.get("cap_add") or []),
        healthcheck=data.get("healthcheck"),
    )
