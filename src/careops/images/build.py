"""Build one image from its spec with the classic builder: offline, labelled, atomic.

Every build runs with ``network_mode="none"`` and ``pull=False``: whatever an
image needs must already be on this machine (the parent image, the context,
the wheelhouse). A build is tagged only after it succeeded and its smoke
commands passed, so a failure never leaves a half-made image under a course tag.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import stat
import tarfile
from pathlib import Path
from typing import Mapping

import docker
import docker.errors

from careops import paths
from careops.dockerops import Step, stream_build
from careops.errors import ImageBuildError
from careops.images import labextension, npm, wheelhouse
from careops.images.catalog import (COURSE, LABEL_COURSE, LABEL_IMAGE, LABEL_INPUTS, LABEL_SOURCE, ImageResult,
                                    ImageSpec)
from careops.images.common import Timer, check_free_space, run_throwaway, state_dir
from careops.images.hashing import context_files, file_sha256, inputs_hash
from careops.progress import Progress

HASH_TAG_RE = re.compile(r"^[0-9a-f]{12}$")
#: Seconds the engine may stay silent during a build (a big layer commit says nothing).
BUILD_TIMEOUT = 3600
#: Folders careops adds to a context: third-party wheels, and wheels of local projects (the toolkit),
#: each with a requirements.txt of exact pins.
WHEELS_DIR = "wheels"
LOCAL_WHEELS_DIR = "local-wheels"


def write_context_tar(entries: Mapping[str, Path | bytes], dest: Path) -> None:
    """A build context tar with fixed owners and times (only content and mode matter)."""
    with tarfile.open(dest, "w") as tar:
        for arcname in sorted(entries):
            src = entries[arcname]
            info = tarfile.TarInfo(arcname)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if isinstance(src, bytes):
                info.size, info.mode = len(src), 0o644
                tar.addfile(info, io.BytesIO(src))
            else:
                st = src.stat()
                info.size = st.st_size
                info.mode = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
                with open(src, "rb") as f:
                    tar.addfile(info, f)


def run_build(cl: docker.DockerClient, context_tar: Path, *, desc: str, labels: Mapping[str, str],
              progress: bool, dockerfile: str = "Dockerfile", buildargs: Mapping[str, str] | None = None,
              nocache: bool = False) -> str:
    """Run the classic builder on a context tar; return the new image id or raise with the builder's words.

    ``nocache`` (``--force``) ignores the layer cache: a forced build really redoes every step.
    """
    shown = Progress(desc, enabled=progress, leave=True,
                     bar_format="{desc}: step {n_fmt}/{total_fmt} |{bar:20}| {elapsed} {postfix}")
    with open(context_tar, "rb") as f:
        build = stream_build(
            cl, fileobj=f, custom_context=True, dockerfile=dockerfile, rm=True, forcerm=True, pull=False,
            network_mode="none", labels=dict(labels), buildargs=dict(buildargs or {}), nocache=nocache,
            timeout=BUILD_TIMEOUT,
        )
        try:
            for event in build:
                if isinstance(event, Step):
                    shown.step(event.instruction, event.number, event.total)
        finally:
            shown.close(ok=build.ok)
    if build.error or not build.image_id:
        tail = build.log[-25:]
        output = "\n    ".join(tail) if tail else "(no output)"
        raise ImageBuildError(
            f"{desc}: the builder failed at step {build.step or '?'}: {build.error or 'no image id in its output'}\n"
            f"  builder output (last lines):\n    {output}",
            fix="read the builder's explanation above, fix the Dockerfile or its context, and build again "
                "(builds run without network: everything must come from the context or the wheelhouse)",
        )
    return str(cl.api.inspect_image(build.image_id)["Id"])


def tag_image(cl: docker.DockerClient, image_id: str, tag: str, digest: str) -> None:
    """Tag the image as ``tag`` and ``repo:<hash12>``; drop the older hash tags of the same image.

    Several images share a repository (careops/legacy-adt:v1, :v2, :v2-faulty): only older builds of this one
    (the same ``org.careops.image`` label) lose their hash tags, never a sibling's current one.
    """
    repo, _, name = tag.rpartition(":")
    cl.api.tag(image_id, repo, name, force=True)
    cl.api.tag(image_id, repo, digest[:12], force=True)
    which = labels_of(cl.api.inspect_image(image_id)).get(LABEL_IMAGE)
    for img in cl.images.list(name=repo):
        if img.id == image_id or (img.labels or {}).get(LABEL_IMAGE) != which:
            continue
        for t in img.tags:
            r, _, n = t.rpartition(":")
            if r == repo and HASH_TAG_RE.match(n):
                with contextlib.suppress(docker.errors.APIError):  # still used by a container: keep it
                    cl.api.remove_image(t)


def existing_image(cl: docker.DockerClient, tag: str) -> dict | None:
    """The engine's inspect data of ``tag``, or None."""
    try:
        return cl.api.inspect_image(tag)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.APIError as exc:
        if exc.status_code == 404:
            return None
        raise


def labels_of(inspect: Mapping) -> dict[str, str]:
    return dict((inspect.get("Config") or {}).get("Labels") or {})


def _smoke(cl: docker.DockerClient, image_id: str, spec: ImageSpec) -> None:
    for cmd in spec.smoke:
        res = run_throwaway(cl, image_id, cmd, user=spec.smoke_user, read_only=True)
        if res.exit_code != 0:
            with contextlib.suppress(docker.errors.APIError):
                cl.api.remove_image(image_id)
            raise ImageBuildError(
                f"the new {spec.tag} failed its smoke test: `{' '.join(cmd)}` (no network, read-only, user "
                f"{spec.smoke_user}) exited {res.exit_code}, expected 0:\n    "
                + "\n    ".join((res.stderr or res.stdout).strip().splitlines()[-15:]),
                fix=f"fix the Dockerfile in {spec.context} so that command works, then build again; the image was not tagged",
            )


def ensure_spec(cl: docker.DockerClient, spec: ImageSpec, *, parents: Mapping[str, ImageResult], force: bool = False,
                progress: bool = True, root: Path | None = None) -> ImageResult:
    """Build ``spec`` unless an image with the same inputs hash is already tagged; return what happened."""
    timer = Timer()
    root = root or paths.repo_root()
    if spec.context is None:
        raise ImageBuildError(f"image {spec.name} has no build context", fix="give its spec a context folder")
    context = spec.path(root, spec.context)
    if not context.is_dir():
        raise ImageBuildError(f"build context of {spec.name} not found: expected a folder at {context}",
                              fix="restore it from git ('git checkout -- .') or fix the catalog (careops.images.catalog)")
    files = context_files(context)
    if spec.dockerfile not in files:
        raise ImageBuildError(f"no {spec.dockerfile} in {context}: expected the Dockerfile of {spec.name}",
                              fix="restore it from git or fix the catalog entry's dockerfile")
    missing = [d for d in spec.depends_on if d not in parents]
    if missing:
        raise ImageBuildError(f"{spec.name} depends on {', '.join(missing)}, which were not ensured first",
                              fix="list dependencies before their dependents in the catalog")
    for src, dest in spec.extra_context:
        extra = spec.path(root, src)
        if extra.is_file():
            files[dest] = extra
        elif extra.is_dir():
            files.update({f"{dest}/{rel}": path for rel, path in context_files(extra).items()})
        else:
            made = src.startswith("build/")
            raise ImageBuildError(
                f"{spec.name} copies {src} into its context, but there is no such file or folder",
                fix=("it is generated: run the step that makes it first (build/release: 'careops release')" if made
                     else "restore it from git or fix the catalog entry's extra_context"))
    if spec.node_packages:
        folder = spec.path(root, spec.node_packages)
        try:
            inside = folder.relative_to(context).as_posix()
        except ValueError:
            raise ImageBuildError(f"{spec.name}: node_packages {spec.node_packages} is not inside its context {context}",
                                  fix="keep package.json and package-lock.json inside the image's build context") from None
        prefix = f"{inside}/{npm.NODE_MODULES}/" if inside != "." else f"{npm.NODE_MODULES}/"
        if any(p.startswith(prefix) for p in files):
            raise ImageBuildError(f"{folder / npm.NODE_MODULES} exists: careops fills it from build/npm on the host",
                                  fix=f"remove {folder / npm.NODE_MODULES}")
        files.update({prefix + rel: path
                      for rel, path in npm.ensure_node_modules(spec.name, folder, progress=progress).items()})
    if spec.labextension:
        folder = spec.path(root, spec.labextension)
        for rel in list(files):  # its source stays out of the image; the prebuilt extension goes in
            if (context / rel).is_relative_to(folder):
                del files[rel]
        files.update({f"{labextension.OUTPUT}/{rel}": path
                      for rel, path in labextension.ensure_labextension(spec.name, folder, progress=progress).items()})
    entries: dict[str, Path | bytes] = dict(files)
    shas = {p: file_sha256(f) for p, f in files.items()}
    wheel_shas: dict[str, str] = {}
    if spec.requirements or spec.local_projects:
        for folder in (WHEELS_DIR, LOCAL_WHEELS_DIR):
            if any(p == folder or p.startswith(folder + "/") for p in files):
                raise ImageBuildError(f"{context} has its own {folder}/ folder, which careops fills from the wheelhouse",
                                      fix=f"remove {context / folder}")
        target = wheelhouse.target_for_image(cl, parents[spec.depends_on[0]].image_id)
        wh = wheelhouse.ensure_wheelhouse(spec, target, root=root, progress=progress)
        for folder, found, lock in ((WHEELS_DIR, wh.wheels, wh.lock), (LOCAL_WHEELS_DIR, wh.local, wh.local_lock)):
            for filename, (path, sha) in found.items():
                entries[f"{folder}/{filename}"] = path
                wheel_shas[f"{folder}/{filename}"] = sha
            entries[f"{folder}/requirements.txt"] = lock.encode()
            shas[f"{folder}/requirements.txt"] = hashlib.sha256(lock.encode()).hexdigest()
    parent_id = "+".join(parents[d].image_id for d in spec.depends_on)
    digest = inputs_hash(dockerfile=files[spec.dockerfile].read_bytes(), files=shas, wheels=wheel_shas,
                         parent_id=parent_id)
    try:
        rel = context.relative_to(root).as_posix()
    except ValueError:
        rel = str(context)
    source = f"Dockerfile in {rel}"
    current = existing_image(cl, spec.tag)
    if current is not None and not force and labels_of(current).get(LABEL_INPUTS) == digest:
        if existing_image(cl, f"{spec.repository}:{digest[:12]}") is None:
            cl.api.tag(current["Id"], spec.repository, digest[:12])
        return ImageResult(spec.name, spec.tag, str(current["Id"]), digest, False, timer.seconds, source)
    check_free_space(cl, what=f"build {spec.tag}")
    tar_path = state_dir() / f"context-{spec.name}-{os.getpid()}.tar"
    try:
        write_context_tar(entries, tar_path)
        labels = {LABEL_IMAGE: spec.name, LABEL_INPUTS: digest, LABEL_COURSE: COURSE, LABEL_SOURCE: source}
        image_id = run_build(cl, tar_path, desc=f"building {spec.tag}", labels=labels, progress=progress,
                             dockerfile=spec.dockerfile, nocache=force)
    finally:
        tar_path.unlink(missing_ok=True)
    _smoke(cl, image_id, spec)
    tag_image(cl, image_id, spec.tag, digest)
    return ImageResult(spec.name, spec.tag, image_id, digest, True, timer.seconds, source)
