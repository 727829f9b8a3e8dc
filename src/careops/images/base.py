"""careops/base:bookworm, the image every course image is built on, made without a registry.

Contract: Debian bookworm userland, CPython 3.11 with the venv and ensurepip
modules, ca-certificates, tini, useradd. Where it comes from, in order:

a. a local image that passes the probe (``python:3.11-slim-bookworm`` loaded
   with ``docker load``, ...): relabelled, with the host's static tini added if
   it lacks one;
b. the same images pulled from a registry, when one answers (quick, quiet
   failure otherwise);
c. ``debootstrap --variant=minbase`` into build/rootfs-tmp, imported with
   ``docker import`` (about a minute; needs root and a Debian mirror).

Once made, it is kept: later runs only probe it (``--force`` remakes it).
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
from typing import Iterator
from pathlib import Path

import docker
import docker.errors
import requests

from careops import paths
from careops.errors import ImageBuildError
from careops.images.build import existing_image, labels_of, run_build, tag_image, write_context_tar
from careops.images.catalog import (BASE_IMAGE, COURSE, LABEL_COURSE, LABEL_IMAGE, LABEL_INPUTS, LABEL_SOURCE,
                                    ImageResult, ImageSpec)
from careops.images.common import Timer, check_free_space, run_streaming, state_dir
from careops.images.hashing import file_sha256, recipe_hash
from careops.images.probe import SUITE, Probe, probe_image

#: Local images tried as the base, best first (tags any `docker load` of an official Python image gives).
LOCAL_CANDIDATES = ("python:3.11-slim-bookworm", "python:3.11-bookworm", "python:3.11-slim", "python:3.11")
#: Tried with `docker pull` when no local image fits; failing is normal on offline machines.
PULL_CANDIDATES = ("python:3.11-slim-bookworm",)
PULL_TIMEOUT = 20
VARIANT = "minbase"
INCLUDE = ("python3", "python3-venv", "ca-certificates", "tini")
ROOTFS_EXCLUDES = ("./dev/*", "./proc/*", "./sys/*", "./run/*", "./tmp/*")
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
#: Static tini binaries a Debian host may have (package tini; Docker ships it as docker-init), for candidates without tini.
HOST_TINI = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init")

NO_SOURCE_FIX = (
    "install debootstrap ('apt-get install debootstrap' as root; 'make images' does it) and run as root, "
    "or on a connected machine run 'docker pull python:3.11-slim-bookworm && docker save python:3.11-slim-bookworm "
    "-o python-3.11.tar', copy the file here and run 'docker load -i python-3.11.tar', then build again"
)


def _rootfs() -> Path:
    return paths.build_dir() / "rootfs-tmp"


# -- (a) and (b): an existing Python image ----------------------------------

def _local_candidates(cl: docker.DockerClient) -> list[str]:
    """Local images worth probing: an unlabelled careops/base (someone tagged one by hand) and Python 3.11 images."""
    found: list[str] = []
    current = existing_image(cl, BASE_IMAGE)
    if current is not None and labels_of(current).get(LABEL_IMAGE) != "base":
        found.append(BASE_IMAGE)
    tags = {t for img in cl.images.list(name="python") for t in img.tags}
    found += [c for c in LOCAL_CANDIDATES if c in tags]
    found += sorted(t for t in tags if t.startswith("python:3.11") and t not in found)
    return found


def _host_tini(machine: str) -> Path | None:
    """A static tini from the host, when the host's architecture is the image's."""
    if platform.machine() != machine:
        return None
    for p in HOST_TINI:
        if os.path.isfile(p):
            return Path(os.path.realpath(p))
    return None


def _try_pull(cl: docker.DockerClient, ref: str) -> bool:
    """docker pull ``ref``, giving up after PULL_TIMEOUT seconds of silence; False (quietly) when no registry answers.

    The SDK's pull() waits without a time limit, so this posts to the same API
    endpoint with a read timeout instead.
    """
    repo, _, tag = ref.partition(":")
    try:
        response = cl.api._post(cl.api._url("/images/create"), params={"fromImage": repo, "tag": tag or "latest"},
                                stream=True, timeout=PULL_TIMEOUT)
        if response.status_code >= 400:
            return False
        for chunk in cl.api._stream_helper(response, decode=True):
            if isinstance(chunk, dict) and chunk.get("error"):
                return False
        return existing_image(cl, ref) is not None
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError, ValueError):
        return False


LABEL_FROM = "org.careops.from"


def _image_recipe(image_id: str, tini: Path | None) -> str:
    return recipe_hash("image", image_id, file_sha256(tini) if tini else "")


def _debootstrap_recipe(include: tuple[str, ...] = INCLUDE, trim: tuple[str, ...] = ()) -> str:
    extra = ("trim", *trim) if trim else ()  # no extra trim: the same hash as before the option existed
    return recipe_hash("debootstrap", SUITE, VARIANT, ",".join(include), TRIM_VERSION, *IMPORT_CHANGES, *extra)


def _expected_inputs(cl: docker.DockerClient, labels: dict[str, str], probe: Probe) -> str | None:
    """The inputs hash the existing base would get if made again now (None: its source is gone, keep it)."""
    if labels.get(LABEL_SOURCE) == "debootstrap":
        return _debootstrap_recipe()
    ref = labels.get(LABEL_FROM)
    source = existing_image(cl, ref) if ref else None
    if source is None:
        return None
    tini = None if "tini from the host" not in labels.get(LABEL_SOURCE, "") else _host_tini(probe.machine)
    return _image_recipe(str(source["Id"]), tini)


def from_image(cl: docker.DockerClient, ref: str, probe: Probe, source: str, *, progress: bool,
               tag: str = BASE_IMAGE) -> ImageResult:
    """Relabel a fitting Python image as the base (adding the host's static tini if it has none)."""
    timer = Timer()
    image_id = cl.api.inspect_image(ref)["Id"]
    tini = None if probe.tini else _host_tini(probe.machine)
    if not probe.tini and tini is None:
        raise ImageBuildError(
            f"{ref} fits the base contract except tini, and this host has no static tini for {probe.machine}",
            fix="install the Debian package tini on the host (provides /usr/bin/tini-static), or let careops "
                "debootstrap the base (remove the image or run as root with debootstrap installed)")
    digest = _image_recipe(image_id, tini)
    dockerfile = f"FROM {image_id}\n" + ("COPY tini /usr/bin/tini\n" if tini else "") + "ENV LANG=C.UTF-8\n"
    entries: dict[str, Path | bytes] = {"Dockerfile": dockerfile.encode()}
    if tini:
        entries["tini"] = tini
        source += " (+ tini from the host)"
    tar_path = state_dir() / f"context-base-{os.getpid()}.tar"
    try:
        write_context_tar(entries, tar_path)
        new_id = run_build(cl, tar_path, desc=f"base from {ref}", progress=progress,
                           labels={LABEL_IMAGE: "base", LABEL_INPUTS: digest, LABEL_COURSE: COURSE, LABEL_SOURCE: source,
                                   LABEL_FROM: ref})
    finally:
        tar_path.unlink(missing_ok=True)
    _require_contract(cl, new_id, f"the base made from {ref}")
    tag_image(cl, new_id, tag, digest)
    return ImageResult("base", tag, new_id, digest, True, timer.seconds, source)


def _require_contract(cl: docker.DockerClient, image_id: str, what: str) -> None:
    """Probe a new base before it gets the course tag; remove it when it falls short."""
    problems = probe_image(cl, image_id).problems()
    if problems:
        with contextlib.suppress(docker.errors.APIError):
            cl.api.remove_image(image_id, force=True)
        raise ImageBuildError(f"{what} does not fit the base contract: " + "; ".join(problems),
                              fix="report this to the course maintainers with the output above; meanwhile "
                                  + NO_SOURCE_FIX.split(", or ", 1)[1])


# -- (c): debootstrap -------------------------------------------------------

def host_debian_mirror(root: Path = Path("/")) -> str | None:
    """The first mirror the host's apt uses for Debian ``bookworm`` itself (not -security/-updates), if any.

    Read at run time from /etc/apt/sources.list and sources.list.d/*.list|*.sources
    (one-line and deb822 formats), so a hospital's local mirror or proxy is used.
    """
    apt = root / "etc/apt"
    one_line = [apt / "sources.list"] + sorted(Path(p) for p in glob.glob(str(apt / "sources.list.d/*.list")))
    for f in one_line:
        with contextlib.suppress(OSError):
            for raw in f.read_text().splitlines():
                words = raw.split("#", 1)[0].split()
                if words[:1] != ["deb"]:
                    continue
                words = words[1:]
                if words and words[0].startswith("["):
                    while words and not words[0].endswith("]"):
                        words.pop(0)
                    words = words[1:]
                if len(words) >= 2 and words[1] == SUITE:
                    return words[0]
    for f in sorted(Path(p) for p in glob.glob(str(apt / "sources.list.d/*.sources"))):
        with contextlib.suppress(OSError):
            for stanza in f.read_text().split("\n\n"):
                fields: dict[str, str] = {}
                key = ""
                for raw in stanza.splitlines():
                    if raw.startswith("#") or not raw.strip():
                        continue
                    if raw[0].isspace() and key:
                        fields[key] += " " + raw.strip()
                        continue
                    key, _, value = raw.partition(":")
                    key = key.strip().lower()
                    fields[key] = value.strip()
                if fields.get("enabled", "yes").lower() == "no" or "deb" not in fields.get("types", "").split():
                    continue
                if SUITE in fields.get("suites", "").split() and fields.get("uris"):
                    return fields["uris"].split()[0]
    return None


def _mounts_under(path: Path) -> list[str]:
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            mnt = line.split()[1].encode().decode("unicode_escape")
            if mnt == str(path) or mnt.startswith(str(path) + "/"):
                found.append(mnt)
    return found


def remove_rootfs(path: Path | None = None) -> None:
    """Remove a (possibly half-made) rootfs: unmount what debootstrap mounted, never cross into other filesystems."""
    path = path or _rootfs()
    for mnt in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], check=False, capture_output=True)
    if path.exists() or path.is_symlink():
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False, capture_output=True)
    if path.exists():
        raise ImageBuildError(f"could not remove the temporary rootfs {path}",
                              fix=f"remove it by hand (as root: umount what is mounted under it, then rm -rf {path})")


#: Changes to what goes into the rootfs must change the base's inputs hash: bump this.
TRIM_VERSION = "trim-v2"
_TRIM = ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*", "etc/hostname",
         "etc/resolv.conf", "var/log/*.log", "var/log/apt/*", "usr/share/man/*", "usr/share/info/*",
         "usr/share/doc/*/*", "usr/share/locale/*")
_KEEP = ("/copyright", "/locale.alias")
#: Like Debian's slim images: packages installed later skip docs, man pages and translations too.
_DPKG_EXCLUDES = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
"""


def _trim_rootfs(rootfs: Path, extra: tuple[str, ...] = ()) -> None:
    """Drop what an image must not carry: package caches, apt lists, the build host's name and resolver,
    and (like slim images) docs, man pages and translations; licences (copyright files) stay.
    ``extra``: a variant's own paths (globs under the rootfs) it does not need."""
    for pattern in _TRIM + tuple(extra):
        for p in glob.glob(str(rootfs / pattern)):
            if p.endswith(_KEEP):
                continue
            with contextlib.suppress(OSError):
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
    dpkg_cfg = rootfs / "etc/dpkg/dpkg.cfg.d"
    if dpkg_cfg.is_dir():
        (dpkg_cfg / "careops-slim").write_text(_DPKG_EXCLUDES)


def _import_rootfs(cl: docker.DockerClient, rootfs: Path, digest: str, *, name: str = "base",
                   tag: str = BASE_IMAGE) -> str:
    """``tar -C rootfs -c . | docker import`` through the API, with labels, ENV and CMD; returns the image id."""
    cmd = ["tar", "-C", str(rootfs), "--numeric-owner", *[f"--exclude={e}" for e in ROOTFS_EXCLUDES], "-c", "."]
    tar = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert tar.stdout is not None

    def chunks():
        while block := tar.stdout.read(1 << 20):
            yield block

    labels = {LABEL_IMAGE: name, LABEL_INPUTS: digest, LABEL_COURSE: COURSE, LABEL_SOURCE: "debootstrap"}
    changes = list(IMPORT_CHANGES) + [f"LABEL {k}={v}" for k, v in labels.items()]
    old = cl.api.timeout
    cl.api.timeout = 1800
    try:
        answer = cl.api.import_image_from_stream(chunks(), repository=tag.rsplit(":", 1)[0], tag=digest[:12],
                                                 changes=changes)
    except docker.errors.APIError as exc:
        tar.kill()
        raise ImageBuildError(f"the engine refused the debootstrapped rootfs: {exc.explanation or exc}",
                              fix="check the engine's log (journalctl -u docker) and free disk space") from None
    finally:
        cl.api.timeout = old
        err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
        code = tar.wait()
    if code != 0:
        raise ImageBuildError(f"tar of {rootfs} failed (exit {code}): {err.strip()[-500:]}",
                              fix="check free space and permissions of build/, then build again")
    text = answer if isinstance(answer, str) else str(answer)
    image_id = ""
    for line in text.splitlines():
        with contextlib.suppress(ValueError, AttributeError):
            status = json.loads(line).get("status", "")
            if status.startswith("sha256:"):
                image_id = status
    if not image_id:
        raise ImageBuildError(f"docker import did not return an image id; it said: {text[-500:]}",
                              fix="check the engine's log (journalctl -u docker), then build again")
    return image_id


def _debootstrap(cl: docker.DockerClient, *, progress: bool, rootfs: Path | None = None,
                 mirror: str | None = None, name: str = "base", tag: str = BASE_IMAGE,
                 include: tuple[str, ...] = INCLUDE, trim: tuple[str, ...] = ()) -> ImageResult:
    """Make the base (or a variant with more packages) from Debian packages with debootstrap and import it
    (``rootfs``/``mirror``: for tests)."""
    timer = Timer()
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(
            "no base image: no local Python 3.11 bookworm image fits, no registry answered, and debootstrap "
            "is not installed (expected one of: " + ", ".join(LOCAL_CANDIDATES) + ")", fix=NO_SOURCE_FIX)
    if os.geteuid() != 0:
        raise ImageBuildError(
            "no base image: no local Python 3.11 bookworm image fits, no registry answered, and debootstrap "
            f"needs root (running as uid {os.geteuid()})",
            fix="run 'sudo .venv/bin/careops images build base' once, or " + NO_SOURCE_FIX.split(", or ", 1)[1])
    check_free_space(cl, what="debootstrap the base image")
    mirror = mirror or host_debian_mirror()
    digest = _debootstrap_recipe(include, trim)
    rootfs = rootfs or _rootfs()
    remove_rootfs(rootfs)  # what a crashed run left
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["debootstrap", f"--variant={VARIANT}", f"--include={','.join(include)}", SUITE, str(rootfs)]
    cmd += [mirror] if mirror else []
    try:
        code, tail = run_streaming(cmd, desc=f"{name}: debootstrap {SUITE} ({mirror or 'default mirror'})",
                                   progress=progress, env=os.environ | {"LC_ALL": "C.UTF-8"})
        if code != 0:
            log = rootfs / "debootstrap" / "debootstrap.log"
            log_tail = log.read_text(errors="replace").strip().splitlines()[-15:] if log.is_file() else []
            raise ImageBuildError(
                f"debootstrap {SUITE} failed (exit {code}); its last lines:\n    "
                + "\n    ".join(tail[-10:] + (["debootstrap.log:"] + log_tail if log_tail else [])),
                fix=f"check that the Debian mirror ({mirror or 'debootstrap default'}) is reachable from this host "
                    "(apt-get update shows it), or " + NO_SOURCE_FIX.split(", or ", 1)[1])
        _trim_rootfs(rootfs, trim)
        if progress:
            print(f"{name}: importing the rootfs into the engine ...", file=sys.stderr)
        image_id = _import_rootfs(cl, rootfs, digest, name=name, tag=tag)
    finally:
        remove_rootfs(rootfs)
    _require_contract(cl, image_id, f"the debootstrapped {name}")
    tag_image(cl, image_id, tag, digest)
    return ImageResult(name, tag, image_id, digest, True, timer.seconds, "debootstrap")


# -- the entry point ------------------------------------------------------

def _candidate_bases(cl: docker.DockerClient) -> Iterator[tuple[str, str]]:
    """(image, how we got it): local images first; a pull is tried only when no local one fits."""
    for ref in _local_candidates(cl):
        yield ref, f"local image {ref}"
    for ref in PULL_CANDIDATES:
        if _try_pull(cl, ref):
            yield ref, f"pulled {ref}"


def ensure_base(cl: docker.DockerClient, *, force: bool = False, progress: bool = True) -> ImageResult:
    """Keep the existing base if it fits the contract; otherwise make it from (a) local, (b) pulled, (c) debootstrap."""
    timer = Timer()
    current = existing_image(cl, BASE_IMAGE)
    if current is not None and not force:
        labels = labels_of(current)
        if labels.get(LABEL_IMAGE) == "base" and labels.get(LABEL_INPUTS):
            probe = probe_image(cl, current["Id"])
            problems = probe.problems()
            expected = _expected_inputs(cl, labels, probe) if not problems else None
            if not problems and expected in (None, labels[LABEL_INPUTS]):
                digest = labels[LABEL_INPUTS]
                if existing_image(cl, f"{BASE_IMAGE.split(':')[0]}:{digest[:12]}") is None:
                    cl.api.tag(current["Id"], BASE_IMAGE.split(":")[0], digest[:12])
                return ImageResult("base", BASE_IMAGE, str(current["Id"]), digest, False, timer.seconds,
                                   labels.get(LABEL_SOURCE, "unknown"))
            if progress:
                why = "; ".join(problems) if problems else "its recipe changed"
                print(f"careops: {BASE_IMAGE} is out of date ({why}); making it again", file=sys.stderr)
    rejected: list[str] = []
    for ref, how in _candidate_bases(cl):
        probe = probe_image(cl, ref)
        problems = probe.problems(need_tini=False)
        if not problems:
            return from_image(cl, ref, probe, how, progress=progress)
        rejected.append(f"{how}: {'; '.join(problems)}")
    if rejected and progress:
        print("careops: local images that do not fit the base contract:\n  " + "\n  ".join(rejected), file=sys.stderr)
    return _debootstrap(cl, progress=progress)


def ensure_variant(cl: docker.DockerClient, spec: ImageSpec, *, force: bool = False,
                   progress: bool = True) -> ImageResult:
    """A base variant with extra Debian packages (``spec.debootstrap_include``), e.g. nginx for the router.

    Why debootstrap again: builds have no network and there is no registry, so a
    package such as nginx can only come from the host's Debian mirror, and the
    way the base already does that is debootstrap. Kept while its recipe holds.
    """
    timer = Timer()
    include = tuple(dict.fromkeys(INCLUDE + tuple(spec.debootstrap_include)))
    digest = _debootstrap_recipe(include, spec.debootstrap_trim)
    current = existing_image(cl, spec.tag)
    if current is not None and not force and labels_of(current).get(LABEL_INPUTS) == digest:
        if existing_image(cl, f"{spec.repository}:{digest[:12]}") is None:
            cl.api.tag(current["Id"], spec.repository, digest[:12])
        return ImageResult(spec.name, spec.tag, str(current["Id"]), digest, False, timer.seconds,
                           labels_of(current).get(LABEL_SOURCE, "debootstrap"))
    return _debootstrap(cl, progress=progress, name=spec.name, tag=spec.tag, include=include,
                        trim=spec.debootstrap_trim)
