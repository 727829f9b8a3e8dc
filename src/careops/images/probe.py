"""Ask an image what it is: Python version, architecture, libc, venv support, tini.

The answer decides two things: whether an image can serve as the course's base
(the contract below), and which wheels fit it (the wheelhouse downloads for
the image's Python and platform, not the host's).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import docker

from careops.images.common import run_throwaway

SUITE = "bookworm"
PYTHON_MINOR = "3.11"

_SCRIPT = r"""
import json, os, platform, shutil, sys, sysconfig
out = {"python": platform.python_version(), "implementation": sys.implementation.name,
       "machine": platform.machine(), "libc": list(platform.libc_ver()),
       "soabi": sysconfig.get_config_var("SOABI") or "", "tini": shutil.which("tini") or "",
       "cacerts": os.path.exists("/etc/ssl/certs/ca-certificates.crt"), "codename": "", "venv": "", "useradd": bool(shutil.which("useradd"))}
try:
    import venv, ensurepip
    ensurepip.version()
    out["venv"] = "ok"
except BaseException as e:
    out["venv"] = "%s: %s" % (type(e).__name__, e)
try:
    for line in open("/etc/os-release"):
        k, _, v = line.strip().partition("=")
        if k == "VERSION_CODENAME":
            out["codename"] = v.strip('"')
except OSError:
    pass
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Probe:
    """What a throwaway container of an image reported (``error`` when it could not run python3)."""

    image: str
    python: str = ""
    implementation: str = ""
    machine: str = ""
    libc: tuple[str, str] = ("", "")
    soabi: str = ""
    tini: str = ""
    cacerts: bool = False
    codename: str = ""
    venv: str = ""
    useradd: bool = False
    error: str = ""

    def problems(self, *, need_tini: bool = True) -> list[str]:
        """How this image falls short of the base contract (empty: it fits)."""
        if self.error:
            return [f"python3 does not run: {self.error}"]
        found = []
        if self.codename != SUITE:
            found.append(f"Debian {SUITE} expected, found {self.codename or 'an unknown system'}")
        if ".".join(self.python.split(".")[:2]) != PYTHON_MINOR or self.implementation != "cpython":
            found.append(f"CPython {PYTHON_MINOR} expected, found {self.implementation} {self.python}")
        if self.venv != "ok":
            found.append(f"python3 -c 'import venv, ensurepip' must work, got {self.venv}")
        if not self.cacerts:
            found.append("ca-certificates expected (/etc/ssl/certs/ca-certificates.crt missing)")
        if self.libc[0] != "glibc":
            found.append(f"glibc expected, found {self.libc[0] or 'unknown libc'}")
        if not self.useradd:
            found.append("useradd expected (the images create non-root users)")
        if need_tini and not self.tini:
            found.append("tini expected on PATH")
        return found


_cache: dict[str, Probe] = {}


def probe_image(cl: docker.DockerClient, image: str) -> Probe:
    """Run python3 in a throwaway container (no network) of ``image`` and parse its report; cached per image id."""
    try:
        image_id = cl.api.inspect_image(image)["Id"]
    except docker.errors.DockerException as exc:
        return Probe(image, error=f"image not found ({exc})")
    if image_id in _cache:
        return _cache[image_id]
    res = run_throwaway(cl, image_id, ["-c", _SCRIPT], entrypoint=["python3"], user="0")
    if res.exit_code != 0:
        lines = (res.stderr or res.stdout).strip().splitlines()
        return Probe(image, error=lines[-1] if lines else f"exit code {res.exit_code}")
    try:
        data = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Probe(image, error=f"unreadable probe output: {res.stdout[-200:]!r}")
    found = Probe(image, python=data["python"], implementation=data["implementation"], machine=data["machine"],
                  libc=(data["libc"][0], data["libc"][1]), soabi=data["soabi"], tini=data["tini"],
                  cacerts=bool(data["cacerts"]), codename=data["codename"], venv=data["venv"],
                  useradd=bool(data["useradd"]))
    _cache[image_id] = found
    return found
