"""What an instructor chooses for a workshop, and every name derived from it.

One workshop runs on one engine under one ``name`` (default ``careops``): its
hub container, its two networks, its state volume and each learner's server and
workspace volume are named and labelled from it, so ``careops workshop down``
finds exactly its own resources (and never a lab's: labs carry
``org.careops.managed``, workshop resources do not).

The settings live in build/workshop/<name>/settings.json; ``up`` writes them,
``status``, ``down`` and ``add-learners`` read them.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from careops import paths
from careops.errors import CareOpsError
from careops.images.catalog import HUB_IMAGE, LEARNER_IMAGE
from careops.workshop.labels import BROKER_PORT, BROKER_SERVICE, COURSE, LABEL_COURSE, LABEL_ROLE, LABEL_WORKSHOP

_NAME_OK = re.compile(r"^[a-z][a-z0-9-]{0,23}$")
_SIZE_OK = re.compile(r"^[1-9][0-9]*[kmgKMG]$")


class WorkshopError(CareOpsError):
    """The workshop cannot be set up, reached or taken down as asked."""


@dataclass(frozen=True)
class WorkshopSettings:
    """One workshop's choices; every resource name follows from ``name``."""

    name: str = "careops"
    #: where the hub listens on this host (127.0.0.1: only this machine; 0.0.0.0: the room's network)
    bind: str = "127.0.0.1"
    port: int = 8000
    #: limits of each learner's server (its kernels included)
    mem_limit: str = "1G"
    cpu_limit: float = 1.0
    pids_limit: int = 512
    tmp_size: str = "512m"
    home_size: str = "256m"
    #: seconds without activity before the idle culler stops a learner's server (its workspace stays)
    idle_timeout: int = 3600
    start_timeout: int = 120
    concurrent_spawn_limit: int = 10
    #: each learner's share of the lab containers (through the lab broker): containers at once, memory in total
    lab_containers: int = 8
    lab_memory: str = "2g"
    hub_image: str = HUB_IMAGE
    learner_image: str = LEARNER_IMAGE

    def __post_init__(self) -> None:
        problems = []
        if not _NAME_OK.match(self.name):
            problems.append(f"name {self.name!r}: expected lowercase letters, digits and dashes, "
                            "starting with a letter, at most 24 characters")
        if not 1 <= self.port <= 65535:
            problems.append(f"port {self.port}: expected 1-65535")
        for what in ("mem_limit", "tmp_size", "home_size"):
            if not _SIZE_OK.match(getattr(self, what)):
                problems.append(f"{what} {getattr(self, what)!r}: expected a size such as 512m or 2G")
        if not 0.1 <= self.cpu_limit <= 64:
            problems.append(f"cpu_limit {self.cpu_limit}: expected 0.1-64 CPUs")
        if self.pids_limit < 64:
            problems.append(f"pids_limit {self.pids_limit}: expected at least 64 (JupyterLab and a kernel need ~40)")
        if not 1 <= self.lab_containers <= 64:
            problems.append(f"lab_containers {self.lab_containers}: expected 1-64 lab containers per learner")
        if not _SIZE_OK.match(self.lab_memory):
            problems.append(f"lab_memory {self.lab_memory!r}: expected a size such as 1g or 1536m")
        if self.idle_timeout < 60:
            problems.append(f"idle_timeout {self.idle_timeout}: expected at least 60 seconds")
        if problems:
            raise WorkshopError("invalid workshop settings: " + "; ".join(problems),
                                fix="correct the option(s) of `careops workshop up` (see --help)")

    # -- names on the engine ---------------------------------------------------
    @property
    def hub_container(self) -> str:
        return f"{self.name}-hub"

    @property
    def private_network(self) -> str:
        """Internal network (no route out): the hub and the learners' servers."""
        return f"{self.name}-hub-private"

    @property
    def public_network(self) -> str:
        """The hub's second network, through which its port is published on this host."""
        return f"{self.name}-hub-public"

    @property
    def state_volume(self) -> str:
        """The hub's database and cookie secret."""
        return f"{self.name}-hub-state"

    @property
    def server_prefix(self) -> str:
        """Learners' server containers are <prefix>-<hub user> (DockerSpawner escapes the name)."""
        return f"{self.name}-server"

    @property
    def workspace_volume_template(self) -> str:
        """One named volume per learner, mounted at their workspace ({username}: DockerSpawner's escaped name)."""
        return f"{self.name}-workspace-{{username}}"

    def labels(self, role: str, **extra: str) -> dict[str, str]:
        return {LABEL_COURSE: COURSE, LABEL_WORKSHOP: self.name, LABEL_ROLE: role, **extra}

    # -- where a browser and the CLI reach it ------------------------------------
    @property
    def broker_url(self) -> str:
        """Where learners' servers reach the lab broker: the hub container on the private network, not the proxy."""
        return f"http://{self.hub_container}:{BROKER_PORT}/services/{BROKER_SERVICE}/"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "") else self.bind
        return f"http://{host}:{self.port}/"

    @property
    def api_url(self) -> str:
        return self.url + "hub/api"

    # -- files on this host -------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        """build/workshop/<name>: settings, the CLI's token, the rendered config and roster, handouts."""
        return paths.build_dir() / "workshop" / self.name

    @property
    def config_dir(self) -> Path:
        """Mounted read-only into the hub: jupyterhub_config.py and roster.json (password hashes only)."""
        return self.state_dir / "config"

    @property
    def roster_path(self) -> Path:
        """roster.json: the enrolled members with their password hashes, as the hub reads it."""
        return self.config_dir / "roster.json"

    @property
    def handouts_dir(self) -> Path:
        """Initial passwords for the instructor to hand out (mode 0600; never mounted anywhere)."""
        return self.state_dir / "handouts"

    def save(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "settings.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, name: str = "careops", *, required: bool = True) -> WorkshopSettings:
        """The saved settings of workshop ``name`` (defaults when none were saved and not ``required``)."""
        path = paths.build_dir() / "workshop" / name / "settings.json"
        if not path.is_file():
            if required:
                raise WorkshopError(f"no workshop {name!r} on this checkout: expected {path}",
                                    fix="start it first: careops workshop up --roster ROSTER (or make workshop)")
            return cls(name=name)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise WorkshopError(f"cannot read {path}: {exc}", fix=f"remove {path} and run careops workshop up again") from None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes: object) -> WorkshopSettings:
        """These settings with ``changes`` (None values ignored: an option the user did not give)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self
