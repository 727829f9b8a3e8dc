"""Build a learner's Dockerfile the way the grader does: offline, bounded, watched, and cleaned up.

Why: a learner's Dockerfile is untrusted code. Its RUN steps execute on the
engine, so the build gets no network, a memory limit, a time limit and a disk
budget; a watchdog kills the step container that breaks one. Whatever the
outcome, the result says why in one sentence, and ``remove()`` (or leaving the
``with`` block) deletes every image the build made -- a failed build removes
them itself. The classic builder is used so each step's container and image
are visible in its output ("Running in ...", " ---> ...") and can be cleaned.
"""
from __future__ import annotations

import dataclasses
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import docker
import docker.errors
import requests

from careops import engine
from careops.containerize.context import (
    context_entries,
    temp_context,
    write_service_context,
)
from careops.dockerfile.parse import Dockerfile, DockerfileSyntaxError, as_dockerfile
from careops.dockerops import BuildStream, Step, Stopped, stream_build
from careops.errors import PolicyViolation
from careops.images.build import write_context_tar
from careops.images.catalog import LEARNER_BUILD_REPO
from careops.lab import labels as L
from careops.lab.backend import via_broker
from careops.lab.connect import broker_backend
from careops.lab.policy import format_bytes, parse_bytes
from careops.progress import Progress
from careops.report import theme

BUILD_TIMEOUT = 120.0
DISK_BUDGET = 256 * 1024**2       # bytes a single RUN step may write
BUILD_MEMORY = 512 * 1024**2
SIZE_BUDGET_ABOVE_BASE = 25 * 1024**2
LEARNER_REPO = LEARNER_BUILD_REPO
LABEL_BUILD = L.LEARNER_BUILD

_NETWORK_WORDS = ("Temporary failure in name resolution", "Network is unreachable", "Could not resolve",
                  "Name or service not known", "urlopen error", "No address associated", "nodename nor servname",
                  "getaddrinfo", "connect: network", "Failed to establish a new connection")


@dataclass
class LearnerBuild:
    """What building a learner's Dockerfile did. ``ok`` with an image, or ``reason`` and ``hint``."""

    ok: bool
    reason: str = ""
    hint: str = ""
    image_id: str | None = None
    tag: str | None = None
    base_image: str | None = None
    seconds: float = 0.0
    size: int = 0
    base_size: int = 0
    cached_steps: int = 0
    steps: int = 0
    log: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    step_containers: list[str] = field(default_factory=list)
    removed: bool = False

    @property
    def size_budget(self) -> int:
        return self.base_size + SIZE_BUDGET_ABOVE_BASE

    def remove(self, client: docker.DockerClient | None = None) -> None:
        """Delete the image and the step images this build made (safe to call twice)."""
        if self.removed:
            return
        if client is None and via_broker():  # the broker removes what it built, by its own record
            if self.tag:
                broker_backend().operation("images/remove", {"ref": self.tag}, what=f"remove image {self.tag}")
            self.removed = True
            return
        cl = client or engine.client()
        if self.tag:
            try:
                cl.api.remove_image(self.tag, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                pass
        _remove_images(cl, self.created)
        self.removed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    #: lines of the builder's output a result keeps when it crosses the wire (the broker's answer)
    WIRE_LOG = 400

    def to_wire(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["log"] = self.log[-self.WIRE_LOG:]
        return data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> LearnerBuild:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def __str__(self) -> str:
        if self.ok:
            return (f"built {self.tag} in {self.seconds:.1f} s ({self.cached_steps}/{self.steps} steps from cache), "
                    f"{format_bytes(self.size)}")
        return f"build failed: {self.reason}" + (f"\n  hint: {self.hint}" if self.hint else "")

    def _repr_html_(self) -> str:
        title = "Your image" if self.ok else "Your image did not build"
        status = theme.verdict(self.ok, str(self), "build failed")
        body = "" if self.ok else theme.para(theme.esc(self.reason)) + theme.hint(self.hint)
        return theme.card(title, body + theme.details("builder output", theme.pre("\n".join(self.log), tail=15)),
                          status=status, ok=self.ok)


def _remove_images(cl: docker.DockerClient, ids: list[str]) -> None:
    for image_id in reversed(ids):  # children before parents
        try:
            cl.api.remove_image(image_id, force=True)
        except docker.errors.APIError:
            pass  # already gone, or pruned with its child


def _resolve_from(df: Dockerfile) -> tuple[list[str], str]:
    """The external images the FROM lines (and COPY --from) name, global ARG defaults substituted; and the base.

    Raises DockerfileSyntaxError for what the engine would fetch from outside by itself: ``ADD <URL>``
    is downloaded by the engine (not in a step container), so a build without network does not stop it.
    """
    for ins in df.instructions:
        if ins.cmd == "ADD" and any(re.match(r"^(https?|ftp)://", w) or w.startswith("git@") for w in ins.words()):
            raise DockerfileSyntaxError("ADD of a URL: the engine would download it itself, past the build's "
                                        "network block; the grader refuses to build it", line=ins.line,
                                        fix="put the file into the build context and COPY it")
    args: dict[str, str] = {}
    stage_base: dict[str, str] = {}  # stage name -> the external image it starts from
    images: list[str] = []
    base = ""
    for ins in df.instructions:
        if ins.cmd == "ARG" and ins.stage == -1:
            args.update(ins.pairs())
        if ins.cmd == "FROM":
            words = ins.words()
            image = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1)) or m.group(0), words[0])
            if image.lower() in stage_base:
                base = stage_base[image.lower()]
            else:
                images.append(image)
                base = image
            if len(words) == 3:
                stage_base[words[2].lower()] = base
        if ins.cmd == "COPY" and "from" in ins.flags:
            source = ins.flags["from"]
            if source.lower() not in stage_base and not source.isdigit():
                images.append(source)  # an image the engine would pull: checked like a FROM
    return images, base


def _classify(error: str, log: list[str], step: str) -> tuple[str, str]:
    text = "\n".join(log[-40:]) + "\n" + error
    if any(w in text for w in _NETWORK_WORDS):
        return (f"step {step} tried to use the network, and builds have none",
                "everything the image needs must come from the build context or the base image")
    if "COPY failed" in error or "ADD failed" in error or "no such file or directory" in error.lower():
        return (f"step {step} names a file that is not in the build context: {error}",
                "the context holds adt_service.py (and what your .dockerignore leaves in); check the path")
    if "returned a non-zero code" in error:
        return (f"step {step} failed: {error}", "read the builder output; run the command in a lab container to debug it")
    return (f"step {step} failed: {error}", "read the builder output above and fix that line")


def build_learner_image(dockerfile: str | Dockerfile, dockerignore: str | None = None, *,
                        timeout: float = BUILD_TIMEOUT,
                        disk_budget: int | str = DISK_BUDGET, memory: int | str = BUILD_MEMORY,
                        nocache: bool = False, progress: bool = True, learner: str | None = None,
                        lab: str = "containerize", client: docker.DockerClient | None = None,
                        on_step: Callable[[Step], None] | None = None,
                        check_image: Callable[[str], None] | None = None) -> LearnerBuild:
    """Build a learner's Dockerfile in the ADT service context; never raises for the learner's faults.

    The build has no network and no pull, ``memory`` for its steps, ``timeout``
    seconds in all, and ``disk_budget`` bytes per RUN step; the step container
    that exceeds a limit is killed. A failed build leaves no image behind.
    ``on_step`` hears of each step as it starts; ``check_image`` may refuse (PolicyViolation) an image the
    Dockerfile starts FROM or copies from (the broker allows only the course's). Through the workshop's lab broker
    (no ``client``, CAREOPS_BROKER_URL set) the broker builds with its own limits.
    """
    if client is None and via_broker():
        return _build_through_broker(dockerfile, dockerignore, nocache=nocache, progress=progress, learner=learner)
    cl = client or engine.client()
    started = time.monotonic()
    learner_id = L.slug(learner, what="learner id") if learner else L.learner_id()
    try:
        df = as_dockerfile(dockerfile)
        images, base = _resolve_from(df)
    except DockerfileSyntaxError as exc:
        why = exc.message if "ADD of a URL" in exc.message else f"the Dockerfile cannot be read: {exc.message}"
        return LearnerBuild(False, why, exc.fix or "")
    base_size = 0
    for image in images:
        if "$" in image:
            return LearnerBuild(False, f"FROM {image} uses a build argument without a default",
                                "name the base image directly: FROM careops/base:bookworm", base_image=image)
        if check_image is not None:
            try:
                check_image(image)
            except PolicyViolation as exc:
                return LearnerBuild(False, exc.message, exc.fix or "", base_image=image)
        try:
            info = cl.api.inspect_image(image)
        except (docker.errors.ImageNotFound, docker.errors.NotFound):
            return LearnerBuild(False, f"base image {image} is not on this machine, and there is no registry to pull from",
                                "use a course image: FROM careops/base:bookworm", base_image=image)
        except docker.errors.APIError as exc:
            return LearnerBuild(False, f"base image {image} cannot be used: {exc.explanation or exc}",
                                "use a course image: FROM careops/base:bookworm", base_image=image)
        if image == base:
            base_size = int(info.get("Size") or 0)
    build_id = uuid.uuid4().hex[:10]
    tag = f"{LEARNER_REPO}:{learner_id}-{build_id}"
    labels = {LABEL_BUILD: build_id, L.LEARNER: learner_id, L.LAB: lab, L.CREATOR_PID: str(os.getpid())}
    before = set(cl.api.images(all=True, quiet=True))
    watcher_client = engine.connect(timeout=30)
    budget = parse_bytes(disk_budget)
    build: BuildStream | None = None
    why, hint = "", ""

    def over_budget(container_id: str) -> str | None:
        """The disk budget of a RUN step: what its container wrote so far."""
        try:
            rows = watcher_client.api.containers(all=True, filters={"id": container_id}, size=True)
            written = int(rows[0].get("SizeRw") or 0) if rows else 0
        except (docker.errors.APIError, requests.exceptions.RequestException):
            written = 0
        if written <= budget:
            return None
        return (f"step {build.step_text() if build else '?'} wrote {format_bytes(written)}, over the build's disk "
                f"budget of {format_bytes(budget)}")

    shown = _progress(progress)
    with temp_context() as tmp:
        root = write_service_context(tmp, dockerfile=df.text, dockerignore=dockerignore)
        tar_path = Path(tmp).parent / f"{Path(tmp).name}.tar"
        write_context_tar(context_entries(root, dockerignore), tar_path)
        try:
            with open(tar_path, "rb") as f:
                build = stream_build(
                    cl, deadline=started + timeout, watch=over_budget, control=watcher_client,
                    fileobj=f, custom_context=True, tag=tag, rm=True, forcerm=True, pull=False, network_mode="none",
                    labels=labels, nocache=nocache, timeout=int(timeout) + 60,
                    container_limits={"memory": parse_bytes(memory), "memswap": parse_bytes(memory)},
                )
                for event in build:
                    if isinstance(event, Step):
                        shown.step(event.instruction, event.number, event.total)
                        if on_step is not None:
                            on_step(event)
                    elif isinstance(event, Stopped) and event.cause == "watch":
                        why, hint = event.message, "a RUN step filled the disk; an image holds the service, not generated data"
                    elif isinstance(event, Stopped) and event.container_id:
                        why = f"step {build.step_text()} did not finish within the build's {timeout:g} s"
                        hint = "a RUN step never ends (a loop? a command waiting for input or the network?)"
                    elif isinstance(event, Stopped):
                        why = f"the build did not finish within {timeout:g} s"
                        hint = "a step never ends (a loop? waiting for input or the network?)"
        finally:
            tar_path.unlink(missing_ok=True)
            shown.close(ok=build is not None and build.ok)
    if build.container:  # the step container of a build the engine gave up on
        try:
            cl.api.remove_container(build.container, force=True, v=True)
        except docker.errors.APIError:
            pass
    watcher_client.close()
    fresh = [c for c in build.layers if not any(b.startswith((f"sha256:{c}", c)) for b in before)]
    seconds = time.monotonic() - started
    result = LearnerBuild(False, base_image=base, seconds=seconds, base_size=base_size, steps=build.steps,
                          cached_steps=build.cached, log=build.log, created=fresh,
                          step_containers=build.step_containers)
    if why or build.error or not build.image_id:
        result.reason, result.hint = (why, hint) if why else \
            _classify(build.error or "the builder gave no image", build.log, build.step_text())
        try:
            cl.api.remove_image(tag, force=True)
        except docker.errors.APIError:
            pass
        _remove_images(cl, fresh)
        result.removed = True
        return result
    info = cl.api.inspect_image(tag)
    result.ok, result.image_id, result.tag, result.size = True, str(info["Id"]), tag, int(info.get("Size") or 0)
    return result


def _progress(enabled: bool) -> Progress:
    return Progress("building your image", enabled=enabled,
                    bar_format="{desc}: step {n_fmt}/{total_fmt} |{bar:20}| {elapsed} {postfix}")


def _build_through_broker(dockerfile: str | Dockerfile, dockerignore: str | None, *, nocache: bool, progress: bool,
                          learner: str | None) -> LearnerBuild:
    """The build the broker runs for this learner (its own limits), its steps shown here as they start."""
    text = dockerfile.text if isinstance(dockerfile, Dockerfile) else str(dockerfile)
    shown = _progress(progress)
    result: LearnerBuild | None = None
    try:
        for event in broker_backend().stream("builds", {"dockerfile": text, "dockerignore": dockerignore,
                                                     "nocache": nocache, "learner": learner},
                                          what="build your image", timeout=BUILD_TIMEOUT + 60):
            if "step" in event:
                shown.step(str(event["instruction"]), int(event["step"]), int(event["total"]))
            elif "build" in event:
                result = LearnerBuild.from_wire(event["build"])
    finally:
        shown.close(ok=result is not None and result.ok)
    if result is None:
        return LearnerBuild(False, "the lab broker ended the build without a result",
                            "run the cell again; if it fails again, tell the instructor")
    return result


def leftover_images(learner: str | None = None, *, client: docker.DockerClient | None = None) -> list[str]:
    """Tags of learner-build images still on the engine (a crashed kernel's); for clean-up and tests."""
    cl = client or engine.client()
    flt = {"label": [LABEL_BUILD] + ([f"{L.LEARNER}={learner}"] if learner else [])}
    return sorted(t for img in cl.images.list(filters=flt) for t in (img.tags or [img.id]))


def remove_leftover_images(learner: str | None = None, *, client: docker.DockerClient | None = None) -> list[str]:
    """Remove what ``leftover_images`` lists; returns what it removed."""
    cl = client or engine.client()
    gone = []
    for ref in leftover_images(learner, client=cl):
        try:
            cl.api.remove_image(ref, force=True)
            gone.append(ref)
        except docker.errors.APIError:
            pass
    return gone

