"""`careops doctor`: check the machine, prove the engine with a real container, name each fix."""
from __future__ import annotations

import json
import platform
import shutil
import socket
import sys
import tarfile
import io
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

import docker
import docker.errors

from careops import engine
from careops.apps.jupyter import DEFAULT_PORT
from careops.errors import CareOpsError
from careops.images.catalog import BASE_IMAGE, GRADER_IMAGE, LAB_IMAGE

PROBE_IMAGE = "careops/probe:latest"
COURSE_IMAGES = (BASE_IMAGE, LAB_IMAGE, GRADER_IMAGE)


@dataclass
class Finding:
    check: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def _host_true_image(cl: docker.DockerClient) -> str:
    """A tiny image made of the host's /bin/true and its libraries: proves `docker run` with no registry."""
    try:
        cl.images.get(PROBE_IMAGE)
        return PROBE_IMAGE
    except docker.errors.ImageNotFound:
        pass
    true_bin = Path(shutil.which("true") or "/bin/true").resolve()
    libs = subprocess.run(["ldd", str(true_bin)], capture_output=True, text=True).stdout
    files = [true_bin] + [Path(p) for p in libs.split() if p.startswith("/")]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in files:
            tar.add(str(f.resolve()), arcname=str(f).lstrip("/"))
        tar.add(str(true_bin), arcname="true")
    cl.api.import_image_from_data(buf.getvalue(), repository=PROBE_IMAGE.split(":")[0], tag="latest",
                                  changes=["LABEL org.careops.course=careops-labs", 'CMD ["/true"]'])
    return PROBE_IMAGE


def diagnose() -> list[Finding]:
    """Every check, in the order a person would fix them."""
    out: list[Finding] = []
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    out.append(Finding("python", "ok" if sys.version_info >= (3, 10) else "fail", f"Python {py} at {sys.executable}",
                       "" if sys.version_info >= (3, 10) else "use Python 3.11 (environment.yml)"))
    try:
        cl = engine.connect(timeout=30)
    except CareOpsError as exc:
        out.append(Finding("engine", "fail", exc.message, exc.fix or ""))
        return out
    info = cl.info()
    out.append(Finding("engine", "ok", f"{engine.describe(cl)} at {cl.api.base_url}"))
    warnings = [w for w in info.get("Warnings") or [] if "limit" in w.lower()]
    limits_ok = info.get("MemoryLimit", True) and info.get("PidsLimit", True) and not warnings
    out.append(Finding("limits", "ok" if limits_ok else "fail",
                       "memory, CPU and pids limits supported" if limits_ok else "; ".join(warnings) or "limits unsupported",
                       "" if limits_ok else "enable cgroup memory/pids accounting (kernel cmdline cgroup_enable=memory) "
                       "or use Docker Desktop / rootful Podman"))
    root = info.get("DockerRootDir") or "/var/lib/docker"
    try:
        free = shutil.disk_usage(root).free
        status = "ok" if free > 5 * 1024**3 else ("warn" if free > 2 * 1024**3 else "fail")
        out.append(Finding("disk", status, f"{free / 1024**3:.1f} GiB free for images in {root}",
                           "" if status == "ok" else "free disk space: 'docker system prune' removes unused images"))
    except OSError:
        out.append(Finding("disk", "warn", f"cannot read free space of {root} (remote or VM engine)"))
    try:
        image = next((i for i in COURSE_IMAGES[1:2] if cl.images.list(name=i)), None) or _host_true_image(cl)
        cmd = ["true"] if image != PROBE_IMAGE else None
        cl.containers.run(image, cmd, remove=True, network_mode="none", mem_limit="32m", pids_limit=16,
                          labels={"org.careops.course": "careops-labs"})
        out.append(Finding("run", "ok", f"a real container ran ({image}, no network, 32 MiB, 16 pids)"))
    except (docker.errors.DockerException, OSError) as exc:
        text = getattr(exc, "explanation", None) or str(exc)
        out.append(Finding("run", "fail", f"a container could not run: {text}",
                           "read the engine's explanation; 'docker run --rm <image> true' shows the same"))
    missing = [i for i in COURSE_IMAGES if not cl.images.list(name=i)]
    out.append(Finding("images", "ok" if not missing else "warn",
                       "course images built" if not missing else f"not built yet: {', '.join(missing)}",
                       "" if not missing else "make images (builds offline)"))
    if missing and not any(cl.images.list(name=i) for i in COURSE_IMAGES[:1]):
        has_bootstrap = shutil.which("debootstrap") is not None
        out.append(Finding("debootstrap", "ok" if has_bootstrap else "warn",
                           "available to build the base image without a registry" if has_bootstrap
                           else "not installed; without it the base image needs a local or pullable python:3.11-slim-bookworm",
                           "" if has_bootstrap else "apt-get install debootstrap (Debian/Ubuntu), or docker load a saved base image"))
    with socket.socket() as s:
        busy = s.connect_ex(("127.0.0.1", DEFAULT_PORT)) == 0
    out.append(Finding(f"port {DEFAULT_PORT}", "warn" if busy else "ok", "in use" if busy else "free for JupyterLab",
                       f"make lab PORT={DEFAULT_PORT + 2} (or stop the program using {DEFAULT_PORT})" if busy else ""))
    out.append(Finding("platform", "ok", f"{platform.system()} {platform.machine()}"))
    return out


def main(*, as_json: bool = False) -> int:
    findings = diagnose()
    if as_json:
        print(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        marks = {"ok": "\u2714", "warn": "!", "fail": "\u2718"}
        for f in findings:
            print(f"{marks[f.status]} {f.check:<12} {f.detail}")
            if f.fix:
                print(f"  {'':<12} fix: {f.fix}")
    return 1 if any(f.status == "fail" for f in findings) else 0
