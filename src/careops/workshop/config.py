"""The hub's jupyterhub_config.py, generated from the workshop's settings and roster.

``hub_config`` returns the configuration as data (section -> traitlets key ->
value), which tests check and ``render`` writes out as a plain, commented
jupyterhub_config.py an instructor can read: every value is a literal except
the CLI's service token, which the hub reads from its environment.

What the configuration says, in short:

* the proxy listens inside the hub container on :8000 (published on this host
  at ``bind:port``), the hub's API on :8081, which learners' servers reach by the
  hub container's name on the private network;
* DockerSpawner (careops.workshop.spawner) starts one careops/learner container
  per learner on the private network: memory, CPU and pids limits, no swap, all
  capabilities dropped, no-new-privileges, read-only root with tmpfs /tmp and
  home, uid 1000, no engine socket (nothing mounts it), removed on stop, the
  learner's named volume at the workspace;
* RosterAuthenticator (careops.workshop.auth): only roster members log in;
  groups ``learners`` and ``instructors``; the ``instructor`` role reaches the
  learners' servers and activity, not the hub's administration;
* services: the idle culler (its own narrow role), ``careops``, the token
  the host's ``careops workshop`` commands use, and the lab broker (run by the
  hub inside its container, the only one with the engine socket; learners'
  servers reach it on the private network at CAREOPS_BROKER_URL with their own
  token, which the ``lab-user`` role lets access it). Further services (hand-in,
  the instructor's dashboard) join ``services()``, with their roles next to the others.
"""
from __future__ import annotations

import pprint
from pathlib import Path
from typing import Any

from careops.workshop.labels import (
    API_TOKEN_ENV,
    BROKER_CONTAINERS_ENV,
    BROKER_MEMORY_ENV,
    BROKER_PORT,
    BROKER_SCRATCH_ENV,
    BROKER_SERVICE,
    BROKER_WORKSHOP_ENV,
    HUB_ASSETS_DIR,
    HUB_API_PORT,
    HUB_ROSTER_FILE,
    HUB_STATE_DIR,
    INSTRUCTORS_GROUP,
    LEARNER_HOME,
    LEARNER_WORKSPACE,
    LEARNERS_GROUP,
    PROXY_PORT,
)
from careops.workshop.roster import Enrolled
from careops.workshop.settings import WorkshopSettings

#: What an instructor may do: see and help learners (open, start and stop their servers, see their activity)
#: through the hub's admin page and API, limited to the learners group; and use the course's services.
#: Not: create or delete users, change groups or roles, read tokens, reach other instructors' servers.
INSTRUCTOR_SCOPES = [
    "admin-ui",
    f"list:users!group={LEARNERS_GROUP}",
    f"read:users!group={LEARNERS_GROUP}",
    f"read:users:activity!group={LEARNERS_GROUP}",
    f"read:servers!group={LEARNERS_GROUP}",
    f"servers!group={LEARNERS_GROUP}",
    f"access:servers!group={LEARNERS_GROUP}",
    f"read:groups!group={LEARNERS_GROUP}",
    "access:services",
]
#: jupyterhub-idle-culler's documented minimum (without --cull-users).
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
#: The host's `careops workshop` commands: status, add-learners (create users, set groups), stop servers,
#: and tokens for tests and phase-2 services.
CLI_SCOPES = ["list:users", "read:users", "read:users:activity", "read:servers", "admin:users", "servers",
              "list:groups", "read:groups", "groups", "tokens", "read:hub"]
CLI_SERVICE = "careops"
CULLER_SERVICE = "idle-culler"
INSTRUCTOR_ROLE = "instructor"
#: Everyone on the roster may use the lab broker (with their server's token, which must hold the scope too).
LAB_USER_ROLE = "lab-user"
LAB_USER_SCOPES = [f"access:services!service={BROKER_SERVICE}"]
#: JupyterHub's own server-token scopes (its `server` role) plus the lab broker.
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", *LAB_USER_SCOPES]
#: uid:gid of the learner in careops/learner.
LEARNER_USER = "1000:1000"


class Expr:
    """A Python expression written into the config as is (pprint uses its repr)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __repr__(self) -> str:
        return self.source

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and other.source == self.source


def services(settings: WorkshopSettings) -> list[dict[str, Any]]:
    """The hub's services: the idle culler, the CLI's token, the lab broker (phase 2 adds hand-in, dashboard)."""
    s = settings
    return [
        {"name": CULLER_SERVICE,
         "command": ["python3", "-m", "jupyterhub_idle_culler", f"--timeout={s.idle_timeout}",
                     f"--cull-every={max(30, min(300, s.idle_timeout // 4))}"]},
        {"name": CLI_SERVICE, "api_token": Expr(f"os.environ[{API_TOKEN_ENV!r}]")},
        # The lab broker listens on all the hub container's addresses (learners' servers come over the private
        # network); the proxy's route /services/lab-broker/ reaches it too.
        {"name": BROKER_SERVICE, "url": f"http://127.0.0.1:{BROKER_PORT}", "display": False,
         "command": ["python3", "-m", "careops.workshop.broker"],
         "environment": {BROKER_WORKSHOP_ENV: s.name, BROKER_CONTAINERS_ENV: str(s.lab_containers),
                         BROKER_MEMORY_ENV: s.lab_memory, "CAREOPS_ASSETS": HUB_ASSETS_DIR,
                         BROKER_SCRATCH_ENV: f"{HUB_STATE_DIR}/broker-scratch"}},
    ]


def hub_config(settings: WorkshopSettings, enrolled: dict[str, Enrolled]) -> dict[str, dict[str, Any]]:
    """The configuration as {section title: {traitlets key: value}}, in the order it is written."""
    s = settings
    learners = sorted(u for u, e in enrolled.items() if e.group == LEARNERS_GROUP)
    instructors = sorted(u for u, e in enrolled.items() if e.group == INSTRUCTORS_GROUP)
    return {
        "the hub and its proxy (inside the careops/hub container)": {
            "JupyterHub.bind_url": f"http://0.0.0.0:{PROXY_PORT}/",
            "JupyterHub.hub_bind_url": f"http://0.0.0.0:{HUB_API_PORT}",
            "JupyterHub.hub_connect_url": f"http://{s.hub_container}:{HUB_API_PORT}",
            "JupyterHub.db_url": f"sqlite:///{HUB_STATE_DIR}/jupyterhub.sqlite",
            "JupyterHub.cookie_secret_file": f"{HUB_STATE_DIR}/jupyterhub_cookie_secret",
            "ConfigurableHTTPProxy.pid_file": f"{HUB_STATE_DIR}/jupyterhub-proxy.pid",
            "JupyterHub.cleanup_servers": False,  # a restarted hub keeps the servers; `down` removes them
            "JupyterHub.concurrent_spawn_limit": s.concurrent_spawn_limit,
        },
        "who logs in: the roster (roster.json: bcrypt hashes of initial passwords)": {
            "JupyterHub.authenticator_class": "careops.workshop.auth.RosterAuthenticator",
            "RosterAuthenticator.roster_file": HUB_ROSTER_FILE,
            "Authenticator.allowed_users": set(learners + instructors),
            "Authenticator.admin_users": set(),
            "NativeAuthenticator.enable_signup": False,
            "NativeAuthenticator.open_signup": False,
            "NativeAuthenticator.minimum_password_length": 10,
            "NativeAuthenticator.check_common_password": True,
            "NativeAuthenticator.allowed_failed_logins": 5,
            "NativeAuthenticator.seconds_before_next_try": 60,
        },
        "groups and roles: instructors help learners, they do not administer the hub": {
            "JupyterHub.load_groups": {LEARNERS_GROUP: {"users": learners},
                                       INSTRUCTORS_GROUP: {"users": instructors}},
            "JupyterHub.load_roles": [
                {"name": INSTRUCTOR_ROLE, "description": "open, start and stop learners' servers, see their activity",
                 "scopes": INSTRUCTOR_SCOPES, "groups": [INSTRUCTORS_GROUP]},
                {"name": CULLER_SERVICE, "description": "stop servers idle for too long",
                 "scopes": CULLER_SCOPES, "services": [CULLER_SERVICE]},
                {"name": "careops-cli", "description": "the host's careops workshop commands",
                 "scopes": CLI_SCOPES, "services": [CLI_SERVICE]},
                {"name": LAB_USER_ROLE, "description": "run labs through the lab broker",
                 "scopes": LAB_USER_SCOPES, "groups": [LEARNERS_GROUP, INSTRUCTORS_GROUP]},
            ],
            "JupyterHub.services": services(s),
        },
        "each learner's server: a careops/learner container (DockerSpawner)": {
            "JupyterHub.spawner_class": "careops.workshop.spawner.LearnerSpawner",
            "LearnerSpawner.workshop": s.name,
            "LearnerSpawner.workspace_volume": s.workspace_volume_template,
            "LearnerSpawner.workspace_path": LEARNER_WORKSPACE,
            "LearnerSpawner.broker_url": s.broker_url,
            "Spawner.server_token_scopes": SERVER_TOKEN_SCOPES,
            "DockerSpawner.image": s.learner_image,
            "DockerSpawner.pull_policy": "never",
            "DockerSpawner.name_template": f"{s.server_prefix}-{{username}}",
            "DockerSpawner.network_name": s.private_network,
            "DockerSpawner.use_internal_ip": True,
            "DockerSpawner.remove": True,
            "DockerSpawner.notebook_dir": LEARNER_WORKSPACE,
            "DockerSpawner.mem_limit": s.mem_limit,
            "DockerSpawner.cpu_limit": s.cpu_limit,
            "DockerSpawner.extra_create_kwargs": {"user": LEARNER_USER},
            "DockerSpawner.extra_host_config": {
                "cap_drop": ["ALL"],
                "security_opt": ["no-new-privileges:true"],
                "pids_limit": s.pids_limit,
                "memswap_limit": s.mem_limit,  # equal to the memory limit: no swap on top of it
                "read_only": True,
                "tmpfs": {"/tmp": f"rw,nosuid,nodev,size={s.tmp_size}",
                          LEARNER_HOME: f"rw,nosuid,nodev,size={s.home_size},uid=1000,gid=1000,mode=0700"},
            },
            "Spawner.default_url": "/lab",
            "Spawner.start_timeout": s.start_timeout,
            "Spawner.http_timeout": s.start_timeout,
        },
    }


HEADER = '''\
# jupyterhub_config.py of the CareOps Labs workshop {name!r}.
# Generated by `careops workshop up` (careops.workshop.config) from build/workshop/{name}/settings.json
# and the roster; change those (careops workshop up --help), not this file: the next `up` rewrites it.
import os

c = get_config()  # noqa: F821 - provided by JupyterHub's config loader
'''


def _literal(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        return "set()" if not value else "{" + ", ".join(repr(v) for v in sorted(value)) + "}"
    return pprint.pformat(value, width=100, sort_dicts=False)


def render(settings: WorkshopSettings, enrolled: dict[str, Enrolled]) -> str:
    """The text of jupyterhub_config.py."""
    out = [HEADER.format(name=settings.name)]
    for title, values in hub_config(settings, enrolled).items():
        out.append(f"\n# -- {title}\n")
        for key, value in values.items():
            text = _literal(value)
            out.append(f"c.{key} = {text}\n")
    return "".join(out)


def write_config(settings: WorkshopSettings, enrolled: dict[str, Enrolled]) -> Path:
    """Write jupyterhub_config.py into the folder mounted into the hub; returns its path."""
    settings.config_dir.mkdir(parents=True, exist_ok=True)
    path = settings.config_dir / "jupyterhub_config.py"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(settings, enrolled))
    tmp.chmod(0o644)
    tmp.replace(path)
    return path
