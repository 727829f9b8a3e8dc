"""Lab operations on this machine's engine through the docker SDK, under the sandbox policy.

``DirectBackend`` is what a lab uses on a laptop and in the grader, and what the
workshop's lab broker runs for each learner. The broker adds a ``Confinement``:
the one learner its hub token names (every name, label and lookup is checked
against it), the course's images only, a quota, lab networks with no route to
the host (internal, no host address; the learner's own server joins them to
reach its containers), and no host folders.

``engine_request`` is the policy itself: a ``RunRequest`` in, the docker SDK's
keyword arguments out, or a PolicyViolation that says what was refused and why.
"""
from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container
from docker.types import Healthcheck, LogConfig

from careops.errors import LabError, PolicyViolation
from careops.images.catalog import LAB_IMAGES, LEARNER_BUILD_REPO
from careops.lab import labels as L
from careops.lab.backend import LabBackend, LabRef, ResourceRecord, RunRequest
from careops.lab.policy import (
    LabQuota,
    check_bind_mount,
    check_capabilities,
    check_forbidden_mount,
    check_lab_image,
    format_bytes,
    parse_bytes,
)
from careops.polling import eventually

#: tmpfs folders of a lab container: small, no devices, no setuid
TMPFS_OPTIONS = "rw,nosuid,nodev,size=16m"
#: A network with no address of this host on its bridge: containers on it reach each other, not the host.
NO_HOST_ROUTE = {"com.docker.network.bridge.inhibit_ipv4": "true"}
NO_NAT = {"com.docker.network.bridge.enable_ip_masquerade": "false"}
#: How many resources of one kind a lab removes at once (the engine client's connection pool holds 10).
REMOVE_AT_ONCE = 4
#: How long a clean-up waits for a removal the engine already has under way (another remove of the same container,
#: the endpoint of a container still being removed) before it reports the resource as not removed
REMOVAL_WAIT_SECONDS = 20.0
#: The network "name" of a lab opened without one (its containers run with the engine's network mode none).
NO_NETWORK = "none"
#: The largest small disk (a tmpfs volume, memory of the host) a lab may ask for
VOLUME_SIZE_LIMIT = 256 * 1024**2


@dataclass(frozen=True)
class Confinement:
    """What a lab may do on a shared host, for one learner (the lab broker's view)."""

    learner: str
    quota: LabQuota = field(default_factory=LabQuota)
    course_images: tuple[str, ...] = LAB_IMAGES
    build_repo: str = LEARNER_BUILD_REPO
    #: the learner's server container: it joins each of their lab networks to reach the lab's containers
    attach: str | None = None
    #: labels every resource gets besides the lab's own (the workshop's name, so its `down` finds them)
    labels: tuple[tuple[str, str], ...] = ()


def _duration_ns(value: str | int | float | None, default: float) -> int:
    if value is None:
        return int(default * 1e9)
    if isinstance(value, (int, float)):
        return int(value * 1e9)
    text = str(value).strip().lower()
    scale = {"ms": 1e-3, "s": 1, "m": 60}
    for suffix in ("ms", "s", "m"):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * scale[suffix] * 1e9)
    try:
        return int(float(text) * 1e9)
    except ValueError:
        raise PolicyViolation(f"healthcheck duration {value!r} is not a duration", fix="write it like 2s or 500ms") from None


def _healthcheck(spec: dict[str, Any] | None) -> Healthcheck | None:
    if not spec:
        return None
    test = spec.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not isinstance(test, list) or not test or not all(isinstance(t, str) for t in test):
        raise PolicyViolation(f"healthcheck test {test!r} is neither a command line nor a list",
                              fix="e.g. test: 'curl -f http://127.0.0.1:8080/health'")
    return Healthcheck(
        test=test,
        interval=_duration_ns(spec.get("interval"), 2),
        timeout=_duration_ns(spec.get("timeout"), 2),
        retries=int(spec.get("retries", 3)),
        start_period=_duration_ns(spec.get("start_period"), 0),
    )


def engine_request(ref: LabRef, req: RunRequest, *, workdir: str | None = None,
                   confinement: Confinement | None = None) -> dict[str, Any]:
    """The sandbox policy: the docker SDK's ``containers.run`` keyword arguments for ``req`` in lab ``ref``.

    Names, labels and the network come from ``ref``; limits, capabilities, labels,
    mounts and health checks are checked; nothing privileged can be expressed.
    With a ``confinement``: ``ref`` must be its learner's, host folders are refused
    and ports are not published on the host (the lab's network has no route to it).
    """
    if confinement is not None and ref.learner != confinement.learner:
        raise PolicyViolation(f"lab {ref.name} belongs to learner {ref.learner}; you are {confinement.learner}",
                              fix="open your own labs only: Lab(name) without learner=")
    short = L.slug(req.name, what="container name")
    req.limits.validate()
    caps = check_capabilities(list(req.cap_add))
    own = sorted(k for k in req.labels if k.startswith(L.PREFIX + "."))
    if own:
        raise PolicyViolation(f"labels {own} are careops' own and set by the lab", fix="choose other label names")
    mounts: dict[str, dict[str, str]] = {}
    for vol, target in req.volumes.items():
        mode = "ro" if vol in req.read_only_volumes else "rw"
        mounts[ref.resource_name(L.slug(vol, what="volume name"))] = {"bind": target, "mode": mode}
    if req.binds and confinement is not None:
        for host in req.binds:  # the socket, /proc ...: the refusal a laptop gives too
            check_forbidden_mount(host)
        raise PolicyViolation(
            f"host folders {sorted(req.binds)} cannot be mounted: on the workshop host, labs get no folder of any "
            "machine, only lab volumes",
            fix="open the lab with Lab(..., workdir=folder): careops.lab copies a work folder's folders into lab "
                "volumes for you; or put files in with container.put_files(...)")
    for host, target in req.binds.items():
        mounts[str(check_bind_mount(host, None if workdir is None else Path(workdir)))] = {"bind": target, "mode": "ro"}
    tmpfs = {path: TMPFS_OPTIONS for path in req.tmpfs}
    if req.read_only and not tmpfs:
        tmpfs = {"/tmp": TMPFS_OPTIONS}
    if req.offline and req.ports:
        raise PolicyViolation(f"{short} asks for ports {sorted(req.ports)} in a lab without a network",
                              fix="open the lab with a network (Lab(name), the default) to reach its ports")
    labels = {**req.labels, **ref.labels(), **dict(confinement.labels if confinement else ()), L.ROLE: short}
    if confinement is None:
        ports: dict[str, Any] = {f"{p}/tcp": ("127.0.0.1", None) for p in req.ports}
    else:  # nothing is published on the host: the learner's server reaches the ports on the lab network
        ports = {}
        labels[L.MEMORY] = str(req.limits.memory)
        if req.ports:
            labels[L.PORTS] = ",".join(str(p) for p in sorted(set(req.ports)))
    return dict(
        image=req.image,
        command=req.command,
        name=ref.resource_name(short),
        hostname=short,
        detach=True,
        environment=dict(req.env),
        user=req.user or "",
        read_only=req.read_only,
        tmpfs=tmpfs,
        labels=labels,
        **({"network_mode": NO_NETWORK} if req.offline else {"network": ref.network_name}),
        ports=ports,
        volumes=mounts,
        privileged=False,
        cap_drop=["ALL"],
        cap_add=caps or None,
        security_opt=["no-new-privileges"],
        healthcheck=_healthcheck(req.healthcheck),
        log_config=LogConfig(type="json-file", config={"max-size": "10m", "max-file": "1"}),
        **req.limits.host_config(),
    )


def _could_not_start(kwargs: dict[str, Any], request: RunRequest, exc: docker.errors.APIError) -> LabError:
    return LabError(f"could not start {kwargs['hostname']} from {request.image}: {exc.explanation or exc}",
                    fix="read the engine's explanation above; 'careops doctor' checks the engine")


class DirectExec:
    """A command the engine runs in a container (exec_create done): its output stream, then its exit code."""

    def __init__(self, api: docker.APIClient, exec_id: str) -> None:
        self._api, self.exec_id = api, exec_id

    def chunks(self) -> Iterator[bytes]:
        yield from self._api.exec_start(self.exec_id, stream=True)

    def exit_code(self) -> int | None:
        try:
            code = self._api.exec_inspect(self.exec_id).get("ExitCode")
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return None
        return None if code is None else int(code)


class DirectContainer:
    """A docker SDK container as ``LabContainer`` uses it (careops.lab.backend.ContainerHandle)."""

    def __init__(self, container: Container) -> None:
        self.raw = container

    @property
    def name(self) -> str:
        return self.raw.name

    @property
    def id(self) -> str:
        return self.raw.id

    @property
    def attrs(self) -> dict[str, Any]:
        return self.raw.attrs

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.raw.labels)

    @property
    def status(self) -> str:
        return self.raw.status

    def reload(self) -> None:
        self.raw.reload()

    def image_tags(self) -> list[str]:
        try:
            return list(self.raw.image.tags)
        except docker.errors.DockerException:
            return []

    def host_port(self, key: str) -> int | None:
        bindings = (self.raw.attrs["NetworkSettings"].get("Ports") or {}).get(key)
        return int(bindings[0]["HostPort"]) if bindings else None

    def exec_open(self, argv: list[str], *, timeout: float, env: dict[str, str], user: str,
                  workdir: str | None) -> DirectExec:
        """Start ``argv`` inside, killed (its whole process group) by ``timeout -s KILL`` at its limit."""
        wrapped = ["timeout", "-s", "KILL", str(max(1, int(timeout + 0.999))), *argv]
        api = self.raw.client.api
        exec_id = api.exec_create(self.id, wrapped, environment=env or {}, user=user or "", workdir=workdir,
                                  stdout=True, stderr=True)["Id"]
        return DirectExec(api, exec_id)

    def put_archive(self, path: str, data: bytes) -> bool:
        return bool(self.raw.put_archive(path, data))

    def get_archive(self, path: str) -> bytes:
        stream, _ = self.raw.get_archive(path)
        return b"".join(stream)

    def top(self, ps_args: str) -> dict[str, Any]:
        return self.raw.top(ps_args=ps_args)

    def logs(self, tail: int | None, stdout: bool, stderr: bool) -> bytes:
        return self.raw.logs(tail="all" if tail is None else tail, stdout=stdout, stderr=stderr)

    def wait(self, timeout: float | None) -> int | None:
        try:
            status = self.raw.wait(timeout=timeout)
        except requests.exceptions.RequestException:  # the engine's answer did not come within the timeout
            return None
        return int(status.get("StatusCode", -1))

    def start(self) -> None:
        self.raw.start()

    def stop(self, timeout: int) -> None:
        self.raw.stop(timeout=timeout)

    def restart(self, timeout: int) -> None:
        self.raw.restart(timeout=timeout)

    def kill(self, signal: str | int | None) -> None:
        self.raw.kill(signal=signal)

    def remove(self) -> None:
        try:
            self.raw.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass


def _filters(lab: str | None, learner: str | None) -> dict[str, list[str]]:
    wanted = [f"{L.MANAGED}=true"]
    if lab:
        wanted.append(f"{L.LAB}={lab}")
    if learner:
        wanted.append(f"{L.LEARNER}={learner}")
    return {"label": wanted}


_learner_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _learner_lock(learner: str) -> threading.Lock:
    with _locks_guard:
        return _learner_locks.setdefault(learner, threading.Lock())


class DirectBackend(LabBackend):
    """Lab operations on ``client``'s engine; with a ``confinement``, for its one learner only."""

    via_broker = False

    def __init__(self, client: docker.DockerClient, confinement: Confinement | None = None) -> None:
        self.client = client
        self.confinement = confinement

    # -- who --------------------------------------------------------------------------
    def describe(self) -> str:
        from careops.engine import describe

        return describe(self.client)

    def learner(self, asked: str | None) -> str:
        wanted = L.slug(asked, what="learner id") if asked else None
        if self.confinement is None:
            return wanted or L.learner_id()
        if wanted is not None and wanted != self.confinement.learner:
            raise PolicyViolation(f"you are learner {self.confinement.learner}: labs of {wanted} are not yours to "
                                  "open, list or remove", fix="leave out learner=; your labs are your own")
        return self.confinement.learner

    def _check_ref(self, ref: LabRef) -> None:
        self.learner(ref.learner)

    def _labels(self, ref: LabRef) -> dict[str, str]:
        return {**ref.labels(), **dict(self.confinement.labels if self.confinement else ())}

    def owns(self, labels: dict[str, str] | None, ref: LabRef | None = None) -> bool:
        """Whether a resource with ``labels`` is a lab resource this backend may touch (of ``ref``'s lab if given)."""
        labels = labels or {}
        if labels.get(L.MANAGED) != "true":
            return False
        if ref is not None and (labels.get(L.LAB), labels.get(L.LEARNER)) != (ref.name, ref.learner):
            return False
        return self.confinement is None or labels.get(L.LEARNER) == self.confinement.learner

    # -- labs ---------------------------------------------------------------------------
    def open_lab(self, ref: LabRef, *, reclaim: bool, network: bool = True) -> tuple[str, list[ResourceRecord]]:
        self._check_ref(ref)
        reclaimed: list[ResourceRecord] = []
        if reclaim:
            reclaimed = self.find(ref.name, ref.learner)
            if reclaimed:
                self.remove(reclaimed)
        if not network:
            return NO_NETWORK, reclaimed
        confined = self.confinement is not None
        if confined:
            mine = [n.name for n in self.client.networks.list(filters=_filters(None, ref.learner))]
            self.confinement.quota.check_count("labs", mine, ref.network_name)
        try:
            network = self.client.networks.create(
                ref.network_name, driver="bridge", labels=self._labels(ref),
                # No NAT to the outside: lab containers talk to each other and to 127.0.0.1-published ports, not
                # to the hospital network or internet. Confined: no route to this host at all.
                internal=confined, options=NO_HOST_ROUTE if confined else NO_NAT, check_duplicate=True)
        except docker.errors.APIError as exc:
            raise LabError(f"could not create the lab network {ref.network_name}: {exc.explanation or exc}",
                           fix=f"run 'careops labs reset {ref.name}' and open the lab again") from None
        if confined and self.confinement.attach:
            try:
                network.connect(self.confinement.attach)
            except docker.errors.APIError as exc:
                raise LabError(f"could not join your server {self.confinement.attach} to the lab network "
                               f"{ref.network_name}: {exc.explanation or exc}",
                               fix="open the lab again; if it persists, ask the instructor to restart your server")
        return ref.network_name, reclaimed

    def volume(self, ref: LabRef, name: str, *, size: str | None = None, owner: int | None = None) -> str:
        self._check_ref(ref)
        full = ref.resource_name(L.slug(name, what="volume name"))
        try:
            found = self.client.volumes.get(full)
        except docker.errors.NotFound:
            if self.confinement is not None:
                mine = [v.name for v in self.client.volumes.list(filters=_filters(None, ref.learner))]
                self.confinement.quota.check_count("volumes", mine, full)
            opts = None
            if size:
                if parse_bytes(size) > VOLUME_SIZE_LIMIT:
                    raise PolicyViolation(f"volume {name}: {size} is more than a lab disk may hold "
                                          f"({format_bytes(VOLUME_SIZE_LIMIT)})", fix="ask for a smaller size")
                who = f",uid={int(owner)},gid={int(owner)}" if owner is not None else ""
                opts = {"type": "tmpfs", "device": "tmpfs", "o": f"size={parse_bytes(size)},mode=0750{who}"}
            self.client.volumes.create(full, labels=self._labels(ref), driver="local", driver_opts=opts)
            return full
        if not self.owns(found.attrs.get("Labels"), ref):
            raise PolicyViolation(f"volume {full} exists and is not of your lab {ref.name}",
                                  fix="choose another volume name")
        return full

    def run(self, ref: LabRef, request: RunRequest, *, workdir: str | None = None) -> DirectContainer:
        kwargs = engine_request(ref, request, workdir=workdir, confinement=self.confinement)
        self._check_image_name(request.image)
        c = self.confinement
        if c is not None:  # the image's labels decide whether a confined learner may run it
            check_lab_image(request.image, learner=c.learner, course_images=c.course_images,
                            build_repo=c.build_repo, image_labels=self._image(request.image).labels)
        with _learner_lock(ref.learner):
            full = kwargs.pop("name")
            if c is not None:
                c.quota.check(self.memory_in_use(c.learner), full, request.limits.memory)
            for volume in request.volumes:
                self.volume(ref, volume)
            kwargs.pop("detach")
            if not request.offline:
                network = kwargs["network"]
                kwargs["networking_config"] = {
                    network: self.client.api.create_endpoint_config(aliases=[kwargs["hostname"]])}
            # Four engine calls (create, its inspect, start, inspect): a name in use is found by the engine's
            # refusal, a missing image by the create, instead of asking first.
            try:
                container = self._create(full, ref, request, kwargs)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                self._replace_old(full, ref)
                container = self._create(full, ref, request, kwargs)
            try:
                container.start()
                container.reload()  # its state after the start (the SDK's copy is from before it)
            except docker.errors.APIError as exc:
                with contextlib.suppress(docker.errors.APIError):
                    container.remove(force=True, v=True)
                raise _could_not_start(kwargs, request, exc) from None
        return DirectContainer(container)

    def _image(self, ref: str) -> Any:
        try:
            return self.client.images.get(ref)
        except docker.errors.ImageNotFound:
            raise LabError(f"image {ref} is not on this engine", fix="build the course images: make images") from None
        except docker.errors.APIError as exc:
            raise LabError(f"image {ref} cannot be used: {exc.explanation or exc}",
                           fix="name a course image, e.g. careops/lab-runtime:latest") from None

    def _create(self, full: str, ref: LabRef, request: RunRequest, kwargs: dict[str, Any]) -> Container:
        """The container, created (not started); a name in use raises the engine's 409 for the caller."""
        try:
            return self.client.containers.create(name=full, **kwargs)
        except docker.errors.ImageNotFound:
            self._image(request.image)  # says which image and how to get it
            raise
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise
            raise _could_not_start(kwargs, request, exc) from None

    def _replace_old(self, full: str, ref: LabRef) -> None:
        """A container of the same name in this lab is replaced (re-running a notebook cell works); another's is not."""
        try:
            old = self.client.containers.get(full)
        except docker.errors.NotFound:
            return
        if not self.owns(old.labels, ref):
            raise PolicyViolation(f"a container named {full} exists and is not of your lab {ref.name}",
                                  fix="choose another container name")
        old.remove(force=True, v=True)

    def memory_in_use(self, learner: str) -> dict[str, int]:
        """The learner's containers (every lab, any state): name -> memory limit, from the labels set at start."""
        found: dict[str, int] = {}
        for row in self.client.api.containers(all=True, filters=_filters(None, learner)):
            name = (row.get("Names") or ["/?"])[0].lstrip("/")
            label = (row.get("Labels") or {}).get(L.MEMORY, "")
            if label.isdigit():
                found[name] = int(label)
            else:  # started before the quota (or not by the broker): ask the engine
                found[name] = int(self.client.api.inspect_container(row["Id"])["HostConfig"].get("Memory") or 0)
        return found

    def container(self, ref: LabRef, short: str) -> DirectContainer | None:
        self._check_ref(ref)
        full = ref.resource_name(L.slug(short, what="container name"))
        try:
            found = self.client.containers.get(full)
        except docker.errors.NotFound:
            return None
        return DirectContainer(found) if self.owns(found.labels, ref) else None

    def containers(self, ref: LabRef) -> list[DirectContainer]:
        self._check_ref(ref)
        flt = {"label": [f"{L.LAB}={ref.name}", f"{L.LEARNER}={ref.learner}", f"{L.SESSION}={ref.session}"]}
        return [DirectContainer(x) for x in self.client.containers.list(all=True, filters=flt, ignore_removed=True)
                if self.owns(x.labels, ref)]

    def by_name(self, name: str) -> DirectContainer:
        """A lab container by its engine name or id, if this backend may touch it; else docker.errors.NotFound."""
        try:
            found = self.client.containers.get(name)
        except docker.errors.NotFound:
            found = None
        if found is None or not self.owns(found.labels):
            who = f" of learner {self.confinement.learner}" if self.confinement else ""
            raise docker.errors.NotFound(f"no lab container {name}{who}")
        return DirectContainer(found)

    # -- resources ----------------------------------------------------------------------
    def find(self, lab: str | None, learner: str | None) -> list[ResourceRecord]:
        if self.confinement is not None:
            learner = self.learner(learner)
        flt = _filters(lab, learner)
        found = [ResourceRecord("container", x.name, dict(x.labels), x.status)
                 for x in self.client.containers.list(all=True, filters=flt, ignore_removed=True)]
        found += [ResourceRecord("network", n.name, dict(n.attrs.get("Labels") or {}), "-")
                  for n in self.client.networks.list(filters=flt)]
        found += [ResourceRecord("volume", v.name, dict(v.attrs.get("Labels") or {}), "-")
                  for v in self.client.volumes.list(filters=flt)]
        return [r for r in found if self.owns(r.labels)]

    def remove(self, records: list[ResourceRecord]) -> tuple[list[ResourceRecord], list[tuple[ResourceRecord, str]]]:
        """Containers first, then networks, then volumes; the resources of one kind at once (removing a running
        container waits for its processes to die and its file system to go: a lab of four takes one wait)."""
        removed: list[ResourceRecord] = []
        failed: list[tuple[ResourceRecord, str]] = []
        for kind in ("container", "network", "volume"):
            batch = [r for r in records if r.kind == kind]
            if len(batch) > 1:
                with ThreadPoolExecutor(max_workers=min(REMOVE_AT_ONCE, len(batch)),
                                        thread_name_prefix="lab-remove") as pool:
                    outcomes = list(pool.map(self._remove_one, batch))
            else:
                outcomes = [self._remove_one(r) for r in batch]
            for res, why in zip(batch, outcomes):
                if why is None:
                    removed.append(res)
                else:
                    failed.append((res, why))
        return removed, failed

    def _remove_one(self, res: ResourceRecord) -> str | None:
        """Remove one resource of this backend's; None when it is gone (or was already), else why not."""
        try:
            if res.kind == "container":
                found = self.client.containers.get(res.name)
                labels = found.labels
            elif res.kind == "network":
                found = self.client.networks.get(res.name)
                labels = found.attrs.get("Labels") or {}
            else:
                found = self.client.volumes.get(res.name)
                labels = found.attrs.get("Labels") or {}
            if not self.owns(labels):
                raise PolicyViolation(f"{res.kind} {res.name} is not one of your lab resources")
            if res.kind == "container":
                self._remove_container(found)
            elif res.kind == "network":
                self._remove_network(found)
            else:
                found.remove(force=True)
            return None
        except docker.errors.NotFound:
            return None  # already gone is what we wanted
        except docker.errors.APIError as exc:
            return exc.explanation or str(exc)
        except PolicyViolation as exc:
            return exc.message

    def _remove_container(self, found: Container) -> None:
        """Remove it; when another remove of it is already under way (a rollout's scale-down, another clean-up),
        wait until that one is done instead of failing, so the lab network it is on can go next."""
        try:
            found.remove(force=True, v=True)
        except docker.errors.APIError as exc:
            if exc.status_code != 409 or "in progress" not in str(exc.explanation or ""):
                raise

            def gone() -> bool:
                try:
                    self.client.api.inspect_container(found.id)
                except docker.errors.NotFound:
                    return True
                return False

            try:
                if eventually(gone, timeout=REMOVAL_WAIT_SECONDS, interval=0.2, what=f"the removal of {found.name}"):
                    return
            except TimeoutError:  # the engine kept failing to answer: report its refusal, as below
                pass
            raise

    def _remove_network(self, found: Any) -> None:
        """Disconnect what is still attached (the learner's server in workshop mode) and remove it. An endpoint
        of a container whose removal is still finishing holds the network for a moment: try again until
        REMOVAL_WAIT_SECONDS have passed."""
        deadline = time.monotonic() + REMOVAL_WAIT_SECONDS
        while True:
            for attached in found.attrs.get("Containers") or {}:
                try:
                    found.disconnect(attached, force=True)
                except docker.errors.APIError:
                    pass
            try:
                found.remove()
                return
            except docker.errors.APIError as exc:
                if "active endpoints" not in str(exc.explanation or "") or time.monotonic() > deadline:
                    raise
            time.sleep(0.3)
            found.reload()

    def _check_image_name(self, image: str) -> None:
        """Confined: refuse an image that is neither the course's nor named as the learner's own build, unseen."""
        c = self.confinement
        if c is not None and image not in c.course_images and not image.startswith(f"{c.build_repo}:{c.learner}-"):
            check_lab_image(image, learner=c.learner, course_images=c.course_images, build_repo=c.build_repo,
                            image_labels=None)

    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        self._check_image_name(ref)
        try:
            info = self.client.api.inspect_image(ref)
        except docker.errors.NotFound:
            return None
        c = self.confinement
        if c is not None:
            check_lab_image(ref, learner=c.learner, course_images=c.course_images, build_repo=c.build_repo,
                            image_labels=(info.get("Config") or {}).get("Labels"))
        return info
