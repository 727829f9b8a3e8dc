"""Each learner's server (runs inside careops/hub): DockerSpawner, one container per learner.

Everything that is the same for every learner (image, private network, limits,
dropped capabilities, read-only root, tmpfs folders) is plain DockerSpawner
configuration in the generated jupyterhub_config.py (careops.workshop.config).
What this subclass adds is what differs per learner:

* the learner's named workspace volume, labelled with the workshop and the hub
  user so ``careops workshop down --remove-volumes`` finds exactly these;
* labels on the container (workshop, role, hub user) for ``status`` and ``down``;
* ``CAREOPS_LEARNER`` (the hub user) for the kernels, as ``make lab`` sets it;
* ``CAREOPS_BROKER_URL``: the lab broker, which careops.lab uses instead of an
  engine socket (the server's own hub token, JUPYTERHUB_API_TOKEN, identifies it).

The volume starts owned by the learner because the image's workspace folder is
(a new named volume takes the owner of the folder it is first mounted on;
dockerspawner#453 is about volumes that start root-owned).

Only JupyterHub's packages and the standard library are imported here.
"""
from __future__ import annotations

from dockerspawner import DockerSpawner
from traitlets import Unicode

from careops.workshop.labels import (
    BROKER_URL_ENV,
    COURSE,
    LABEL_COURSE,
    LABEL_HUB_USER,
    LABEL_ROLE,
    LABEL_WORKSHOP,
    LEARNER_ENV,
    LEARNER_WORKSPACE,
    ROLE_SERVER,
    ROLE_WORKSPACE,
)


class LearnerSpawner(DockerSpawner):
    """DockerSpawner with a labelled workspace volume per learner and the learner's name for the kernels."""

    workshop = Unicode("careops", config=True, help="the workshop's name (label org.careops.workshop)")
    workspace_volume = Unicode("careops-workspace-{username}", config=True,
                               help="the learner's named volume ({username}: DockerSpawner's escaped name)")
    workspace_path = Unicode(LEARNER_WORKSPACE, config=True, help="where the volume is mounted in the server")
    broker_url = Unicode("", config=True, help="the lab broker's URL on the private network (empty: no broker)")

    def careops_labels(self, role: str) -> dict[str, str]:
        return {LABEL_COURSE: COURSE, LABEL_WORKSHOP: self.workshop, LABEL_ROLE: role, LABEL_HUB_USER: self.user.name}

    def workspace_mount(self) -> dict:
        """The volume as a docker.types.Mount spec; Docker creates it (labelled) at the first start."""
        return {"type": "volume", "source": self.workspace_volume, "target": self.workspace_path,
                "labels": self.careops_labels(ROLE_WORKSPACE)}

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        env[LEARNER_ENV] = self.user.name
        if self.broker_url:
            env[BROKER_URL_ENV] = self.broker_url
        return env

    async def create_object(self):
        self.mounts = [m for m in self.mounts if m.get("target") != self.workspace_path] + [self.workspace_mount()]
        kwargs = dict(self.extra_create_kwargs) if isinstance(self.extra_create_kwargs, dict) else {}
        kwargs["labels"] = {**(kwargs.get("labels") or {}), **self.careops_labels(ROLE_SERVER)}
        self.extra_create_kwargs = kwargs
        return await super().create_object()
