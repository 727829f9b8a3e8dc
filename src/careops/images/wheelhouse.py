"""The wheelhouse: the only way Python packages enter the course's images.

Wheels are downloaded on the host into build/wheelhouse/ with the host's own
pip and pip configuration, for the *image's* Python and platform (probed from
the parent image), at exactly the versions installed in this environment, so
the grader runs the same code as the learner's kernel. Image builds then
install them with ``pip install --no-index`` and no network at all.

A second run with unchanged requirements reuses the wheelhouse without
touching the network (a manifest records what satisfied which request), so
offline re-runs work. A fresh clone first takes the wheels other checkouts
of this user downloaded (careops.paths.cache_dir()/wheels) and downloads
only what none of them had.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sys
import tempfile
import tomllib
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import docker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename

from careops import paths
from careops.errors import ImageBuildError
from careops.images.catalog import ImageSpec
from careops.images.common import check_free_space, run_streaming, state_dir
from careops.images.hashing import IGNORED_DIRS, file_sha256
from careops.images.probe import probe_image

#: A fixed zip timestamp (1980-01-01) so the same sources give a byte-identical wheel.
SOURCE_DATE_EPOCH = "315532800"
PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in")


def wheelhouse_dir() -> Path:
    """build/wheelhouse: downloaded wheels; local/ built ones; buildtools/ for building them; manifests/."""
    d = paths.build_dir() / "wheelhouse"
    d.mkdir(parents=True, exist_ok=True)
    return d


@dataclass(frozen=True)
class Target:
    """The interpreter and platform wheels must fit (the image's, not the host's)."""

    python_version: str  # the full version, e.g. "3.11.2" (Requires-Python checks need the micro)
    implementation: str  # "cp"
    abi: str  # "cp311"
    platforms: tuple[str, ...]  # most specific first

    def describe(self) -> str:
        return f"CPython {self.python_version} ({self.abi}, {self.platforms[0]})"


def manylinux_platforms(machine: str, glibc: str) -> tuple[str, ...]:
    """Platform tags a glibc ``glibc`` / ``machine`` system accepts, newest first (PEP 600, 599, 571, 513)."""
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    major, minor = (int(x) for x in glibc.split(".")[:2])
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
    if (major, minor) >= (2, 17):
        tags.append(f"manylinux2014_{arch}")
    if arch in ("x86_64", "i686"):
        if (major, minor) >= (2, 12):
            tags.append(f"manylinux2010_{arch}")
        if (major, minor) >= (2, 5):
            tags.append(f"manylinux1_{arch}")
    tags.append(f"linux_{arch}")
    return tuple(tags)


def target_from(*, python: str, machine: str, glibc: str, implementation: str = "cpython") -> Target:
    """The wheel target of a CPython ``python`` (e.g. "3.11.2") on ``machine`` with glibc ``glibc``."""
    if implementation != "cpython":
        raise ImageBuildError(f"the image's Python is {implementation}, expected CPython",
                              fix="use a CPython base image (careops images build base --force)")
    major, minor = python.split(".")[:2]
    return Target(python_version=python, implementation="cp", abi=f"cp{major}{minor}",
                  platforms=manylinux_platforms(machine, glibc))


def target_for_image(cl: docker.DockerClient, image: str) -> Target:
    """Probe ``image`` in a throwaway container and return the wheel target of its Python."""
    probe = probe_image(cl, image)
    if probe.error or probe.libc[0] != "glibc":
        raise ImageBuildError(f"cannot tell which wheels fit {image}: {probe.error or 'its libc is not glibc'}",
                              fix="rebuild the base image: careops images build base --force")
    return target_from(python=probe.python, machine=probe.machine, glibc=probe.libc[1],
                       implementation=probe.implementation)


def download_args(target: Target) -> list[str]:
    """pip options that select wheels for ``target`` whatever the host's own Python and platform."""
    args = ["--only-binary=:all:", "--implementation", target.implementation,
            "--python-version", target.python_version, "--abi", target.abi]
    for plat in target.platforms:
        args += ["--platform", plat]
    return args


def read_requirements(path: Path) -> list[Requirement]:
    """Requirements of a requirements.in: one per line, comments and blank lines ignored."""
    if not path.is_file():
        raise ImageBuildError(f"requirements file not found: expected {path}", fix="restore it from git")
    reqs = []
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            reqs.append(Requirement(line))
        except InvalidRequirement as exc:
            raise ImageBuildError(f"{path}:{n}: not a requirement: {line!r} ({exc})",
                                  fix="write one project name per line, e.g. 'nbgrader'") from None
    return reqs


@dataclass(frozen=True)
class HostDist:
    """An installed distribution of this environment: its version and the Pythons it supports."""

    version: str
    requires_python: str = ""

    def supports(self, python: str) -> bool:
        if not self.requires_python:
            return True
        try:
            return SpecifierSet(self.requires_python).contains(python, prereleases=True)
        except InvalidSpecifier:
            return True


def host_versions() -> dict[str, HostDist]:
    """Installed distributions of this Python environment (the .venv that runs careops), by canonical name."""
    found: dict[str, HostDist] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), HostDist(dist.version, dist.metadata.get("Requires-Python") or ""))
    return found


def pin_requirements(reqs: list[Requirement], versions: dict[str, HostDist], source: Path,
                     target: Target | None = None) -> list[str]:
    """``name[extras]==host version`` for each requirement; fail when the host lacks it, violates its range,
    or has a version the image's Python cannot run."""
    pins = []
    for req in reqs:
        dist = versions.get(canonicalize_name(req.name))
        if dist is None:
            raise ImageBuildError(
                f"{req.name} is listed in {source} but not installed in this Python environment ({sys.prefix}); "
                "expected it installed so the image gets the same version",
                fix="run 'make venv' (installs environment.yml), or add it to environment.yml's pip section")
        if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
            raise ImageBuildError(f"{source} asks for {req}, the host has {req.name} {dist.version}",
                                  fix="align environment.yml and the requirements file, then run 'make venv'")
        if target is not None and not dist.supports(target.python_version):
            raise ImageBuildError(
                f"the host has {req.name} {dist.version}, which requires Python {dist.requires_python}; "
                f"the image's Python is {target.python_version}",
                fix=f"cap {req.name} in environment.yml to a version that supports Python {target.python_version} "
                    "and run 'make venv', or use a newer base image")
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        pins.append(f"{req.name}{extras}=={dist.version}")
    return pins


def host_constraints(versions: dict[str, HostDist], target: Target, exclude: set[str]) -> tuple[list[str], list[str]]:
    """Constraints pinning every dependency to the host's version, where the image's Python can run it.

    Returns (constraints, names left free because the host's version needs a newer Python than the image's).
    """
    pinned, free = [], []
    for name, dist in sorted(versions.items()):
        if name in exclude:
            continue
        if dist.supports(target.python_version):
            pinned.append(f"{name}=={dist.version}")
        else:
            free.append(f"{name} (host {dist.version} requires Python {dist.requires_python})")
    return pinned, free


def offline_env() -> dict[str, str]:
    """Environment for pip runs that must only see the wheelhouse: no PIP_* settings, no pip config files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args]


def _fail(what: str, tail: list[str], fix: str) -> ImageBuildError:
    return ImageBuildError(f"{what}; pip said (last lines):\n    " + "\n    ".join(tail[-15:] or ["(nothing)"]), fix=fix)


# -- local projects (the careops toolkit) --------------------------------

def _project_files(project: Path) -> dict[str, Path]:
    files = {n: project / n for n in PROJECT_FILES if (project / n).is_file()}
    for pattern in ("README*", "LICENSE*"):
        files.update({p.name: p for p in project.glob(pattern) if p.is_file()})
    src = project / "src"
    if not (project / "pyproject.toml").is_file() or not src.is_dir():
        raise ImageBuildError(f"{project} is not a src-layout Python project: expected pyproject.toml and src/",
                              fix="fix local_projects in careops.images.catalog")
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS and not d.endswith(".egg-info"))
        for fn in filenames:
            if fn.endswith((".pyc", ".pyo")):
                continue
            full = Path(dirpath) / fn
            files[full.relative_to(project).as_posix()] = full
    return dict(sorted(files.items()))


def _project_name(project: Path) -> str:
    with contextlib.suppress(OSError, ValueError, KeyError):
        return str(tomllib.loads((project / "pyproject.toml").read_text())["project"]["name"])
    return project.resolve().name


def _ensure_build_tools(project: Path, progress: bool) -> Path:
    """Host-platform wheels of the project's build backend, so local wheels build offline."""
    tools = wheelhouse_dir() / "buildtools"
    tools.mkdir(exist_ok=True)
    data = tomllib.loads((project / "pyproject.toml").read_text())
    requires = list((data.get("build-system") or {}).get("requires") or ["setuptools>=61"]) + ["wheel"]
    have = {canonicalize_name(parse_wheel_filename(p.name)[0]) for p in tools.glob("*.whl")}
    if all(canonicalize_name(Requirement(r).name) in have for r in requires):
        return tools
    code, tail = run_streaming(_pip("download", "--disable-pip-version-check", "--progress-bar", "off",
                                    "--only-binary=:all:", "-d", str(tools), *requires),
                               desc="wheelhouse: build tools", progress=progress)
    if code != 0:
        raise _fail(f"could not download the build tools {', '.join(requires)} into {tools}", tail,
                    "check that pip's package index is reachable (pip config list), then build again")
    return tools


def build_local_wheel(project: Path, *, progress: bool = True) -> tuple[Path, str]:
    """A wheel of a src-layout project (cached by its sources); returns (path, sha256).

    Built from a copy of the sources (the checkout stays clean) with pip's build
    isolation fed only from build/wheelhouse/buildtools, and SOURCE_DATE_EPOCH
    fixed, so the same sources always give the same wheel bytes.
    """
    files = _project_files(project)
    key = hashlib.sha256("".join(f"{rel}\0{file_sha256(p)}\n" for rel, p in files.items()).encode()).hexdigest()
    local = wheelhouse_dir() / "local"
    local.mkdir(exist_ok=True)
    stamp = local / f".{re.sub(r'[^A-Za-z0-9]+', '_', str(project.resolve()).strip('/')) or 'root'}.json"
    if stamp.is_file():
        saved = json.loads(stamp.read_text())
        wheel = local / saved.get("wheel", "")
        if saved.get("key") == key and wheel.is_file() and file_sha256(wheel) == saved.get("sha256"):
            return wheel, saved["sha256"]
    tools = _ensure_build_tools(project, progress)
    with tempfile.TemporaryDirectory(prefix="wheel-", dir=state_dir()) as tmp:
        tree, out = Path(tmp) / "src", Path(tmp) / "out"
        for rel, p in files.items():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, tree / rel)
        env = offline_env() | {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
        code, tail = run_streaming(_pip("wheel", "--no-deps", "--no-index", "--find-links", str(tools),
                                        "--progress-bar", "off", "-w", str(out), str(tree)),
                                   desc=f"wheelhouse: wheel of {_project_name(project)}", progress=progress, env=env)
        built = sorted(out.glob("*.whl")) if out.is_dir() else []
        if code != 0 or len(built) != 1:
            raise _fail(f"could not build a wheel of {project}", tail,
                        "fix the error above (pyproject.toml, package layout), or remove build/wheelhouse/buildtools "
                        "to download the build tools again")
        name = canonicalize_name(parse_wheel_filename(built[0].name)[0])
        for old in local.glob("*.whl"):
            if canonicalize_name(parse_wheel_filename(old.name)[0]) == name:
                old.unlink()
        wheel = local / built[0].name
        shutil.move(str(built[0]), wheel)
    sha = file_sha256(wheel)
    stamp.write_text(json.dumps({"key": key, "wheel": wheel.name, "sha256": sha}, indent=1))
    return wheel, sha


# -- projects published without wheels ------------------------------------

def build_source_wheel(name: str, versions: dict[str, HostDist], *, progress: bool = True) -> Path:
    """A wheel of a pure-Python project the index has only as a source archive, at the host's version.

    Kept in build/wheelhouse like a downloaded wheel (reused offline); built on
    the host from the project's sdist, and refused unless the result is pure
    Python (``py3-none-any``), since a compiled wheel would fit the host, not the image.
    """
    dist = versions.get(canonicalize_name(name))
    if dist is None:
        raise ImageBuildError(f"{name} must be built from source for an image, but it is not installed in this "
                              f"environment ({sys.prefix})", fix="run 'make venv', or add it to environment.yml")
    house = wheelhouse_dir()
    for existing in house.glob("*.whl"):
        wname, wversion, _, _tags = parse_wheel_filename(existing.name)
        if canonicalize_name(wname) == canonicalize_name(name) and str(wversion) == dist.version:
            return existing
    with tempfile.TemporaryDirectory(prefix="sdist-", dir=state_dir()) as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        code, tail = run_streaming(_pip("download", "--disable-pip-version-check", "--progress-bar", "off", "--no-deps",
                                        "--no-binary=:all:", "-d", str(src), f"{name}=={dist.version}"),
                                   desc=f"wheelhouse: source of {name}", progress=progress)
        archives = sorted(src.glob("*")) if src.is_dir() else []
        if code == 0 and len(archives) == 1:
            code, tail = run_streaming(_pip("wheel", "--disable-pip-version-check", "--progress-bar", "off",
                                            "--no-deps", "-w", str(out), str(archives[0])),
                                       desc=f"wheelhouse: wheel of {name}", progress=progress,
                                       env=os.environ | {"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH})
        built = sorted(out.glob("*.whl")) if out.is_dir() else []
        if code != 0 or len(built) != 1:
            raise _fail(f"could not build a wheel of {name}=={dist.version} from its source", tail,
                        "check that pip's package index is reachable (pip config list); offline, copy build/wheelhouse "
                        "from a machine where 'careops images build' worked")
        tags = parse_wheel_filename(built[0].name)[3]
        if not all(t.abi == "none" and t.platform == "any" for t in tags):
            raise ImageBuildError(f"{name}=={dist.version} built into {built[0].name}, which is not pure Python: "
                                  "a wheel built on the host would not fit the image",
                                  fix=f"find a version of {name} with wheels for the image, or drop it")
        wheel = house / built[0].name
        shutil.move(str(built[0]), wheel)
    return wheel


# -- wheels shared by every checkout of this user ---------------------------

def shared_wheels_dir() -> Path:
    """Downloaded wheels every checkout of this user reuses (careops.paths.cache_dir()/wheels): a wheel's file
    name fixes its project, version and platform, so a file of the same name is the same wheel."""
    return paths.cache_dir() / "wheels"


def _link_or_copy(src: Path, dest: Path) -> None:
    staged = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        os.link(src, staged)
    except OSError:
        shutil.copy2(src, staged)
    staged.replace(dest)


def _take_from_shared_cache(house: Path) -> bool:
    """Copy (hard-link where possible) the shared wheels ``house`` lacks into it; whether any came."""
    shared = shared_wheels_dir()
    if not shared.is_dir():
        return False
    have = {p.name for p in house.glob("*.whl")}
    took = False
    for wheel in shared.glob("*.whl"):
        if wheel.name not in have:
            try:
                _link_or_copy(wheel, house / wheel.name)
                took = True
            except OSError:
                continue
    return took


def _give_to_shared_cache(house: Path) -> None:
    """Offer freshly downloaded wheels to the other checkouts (a cache that cannot be written costs only time)."""
    shared = shared_wheels_dir()
    try:
        shared.mkdir(parents=True, exist_ok=True)
        have = {p.name for p in shared.glob("*.whl")}
        for wheel in house.glob("*.whl"):
            if wheel.name not in have:
                _link_or_copy(wheel, shared / wheel.name)
    except OSError:
        pass


# -- the wheelhouse of one image -----------------------------------------

@dataclass
class Wheelhouse:
    """The wheels one image installs, split in two: third-party (changes rarely) and local projects
    (change with every edit of the toolkit), each as filename -> (path, sha256) with its exact pins
    (a requirements.txt), so a Dockerfile can install them in separate, separately cached layers."""

    wheels: dict[str, tuple[Path, str]] = field(default_factory=dict)
    lock: str = ""
    local: dict[str, tuple[Path, str]] = field(default_factory=dict)
    local_lock: str = ""
    downloaded: bool = False


def _missing(pip_lines: list[str]) -> str:
    """The requirements pip could not find, in a few words (from its last lines)."""
    names = []
    for line in pip_lines:
        m = re.search(r"(?:No matching distribution found for|satisfies the requirement) (\S+)", line)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    return ("missing: " + ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")) if names else "new versions"


def _resolve_offline(pins: list[str], constraints: list[str], target: Target, dirs: list[Path],
                     progress: bool, desc: str) -> tuple[dict[str, str] | None, list[str]]:
    """Ask pip which wheels of ``dirs`` satisfy ``pins`` for ``target``, without any index: {path: 'name==version'}."""
    with tempfile.TemporaryDirectory(prefix="resolve-", dir=state_dir()) as tmp:
        t = Path(tmp)
        (t / "requirements.txt").write_text("\n".join(pins) + "\n")
        (t / "constraints.txt").write_text("\n".join(constraints) + "\n")
        cmd = _pip("install", "--dry-run", "--ignore-installed", "--no-index", "--progress-bar", "off",
                   "--report", str(t / "report.json"), "--target", str(t / "target"),
                   *[a for d in dirs for a in ("--find-links", str(d))], *download_args(target),
                   "-r", str(t / "requirements.txt"), "-c", str(t / "constraints.txt"))
        code, tail = run_streaming(cmd, desc=desc, progress=progress, env=offline_env())
        if code != 0 or not (t / "report.json").is_file():
            return None, tail
        report = json.loads((t / "report.json").read_text())
    chosen: dict[str, str] = {}
    for item in report.get("install", []):
        url = (item.get("download_info") or {}).get("url", "")
        path = urllib.request.url2pathname(urllib.parse.urlparse(url).path)
        meta = item.get("metadata") or {}
        chosen[path] = f"{meta.get('name')}=={meta.get('version')}"
    return chosen, tail


def ensure_wheelhouse(spec: ImageSpec, target: Target, *, root: Path | None = None,
                      progress: bool = True) -> Wheelhouse:
    """Make sure build/wheelhouse holds every wheel ``spec`` needs for ``target``; download only what is missing."""
    root = root or paths.repo_root()
    house = wheelhouse_dir()
    versions = host_versions()
    local_wheels = [build_local_wheel(spec.path(root, p), progress=progress) for p in spec.local_projects]
    local_names = {canonicalize_name(parse_wheel_filename(w.name)[0]) for w, _ in local_wheels}
    third_party = []
    if spec.requirements:
        src = spec.path(root, spec.requirements)
        third_party = pin_requirements([r for r in read_requirements(src) if canonicalize_name(r.name) not in local_names],
                                       versions, src, target)
    local_pins = [f"{parse_wheel_filename(w.name)[0]}=={parse_wheel_filename(w.name)[1]}" for w, _ in local_wheels]
    constraints, _free = host_constraints(versions, target, local_names)
    from_source = [build_source_wheel(n, versions, progress=progress).name for n in spec.source_builds]
    key = hashlib.sha256(json.dumps({"pins": third_party + local_pins, "constraints": constraints,
                                     "target": asdict(target), "local": [s for _, s in local_wheels],
                                     **({"from_source": from_source} if from_source else {})},
                                    sort_keys=True).encode()).hexdigest()
    manifests = house / "manifests"
    manifests.mkdir(exist_ok=True)
    manifest = manifests / f"{spec.name}.json"
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        if saved.get("key") == key and "local" in saved:
            found = {fn: (house / rel, sha) for fn, (rel, sha) in saved["wheels"].items()}
            local = {fn: (house / rel, sha) for fn, (rel, sha) in saved["local"].items()}
            if all(p.is_file() and file_sha256(p) == sha for p, sha in (found | local).values()):
                return Wheelhouse(found, saved["lock"], local, saved["local_lock"])
    dirs = [house] + sorted({w.parent for w, _ in local_wheels})
    pins = third_party + local_pins
    # Quietly first: pip's "ERROR: ResolutionImpossible" only means some wheels must be downloaded, which follows.
    chosen, tail = _resolve_offline(pins, constraints, target, dirs, False, f"wheelhouse: {spec.name} (offline)")
    if chosen is None and _take_from_shared_cache(house):  # a fresh clone: wheels another checkout downloaded
        chosen, tail = _resolve_offline(pins, constraints, target, dirs, False, f"wheelhouse: {spec.name} (offline)")
    downloaded = False
    if chosen is None:
        if progress:
            print(f"wheelhouse: {spec.name} needs wheels that {house} does not have yet "
                  f"({_missing(tail)}): downloading them", file=sys.stderr, flush=True)
        check_free_space(None, what=f"download the wheels of {spec.name}")
        with tempfile.TemporaryDirectory(prefix="download-", dir=state_dir()) as tmp:
            (Path(tmp) / "requirements.txt").write_text("\n".join(third_party) + "\n")
            (Path(tmp) / "constraints.txt").write_text("\n".join(constraints) + "\n")
            # The host's pip configuration decides where from (index, mirror, proxy); only wheels for the target.
            code, tail = run_streaming(
                _pip("download", "--disable-pip-version-check", "--progress-bar", "off", "-d", str(house),
                     *(["--find-links", str(house)] if from_source else []),  # the wheels built from source
                     *download_args(target), "-r", str(Path(tmp) / "requirements.txt"),
                     "-c", str(Path(tmp) / "constraints.txt")),
                desc=f"wheelhouse: downloading for {spec.name}", progress=progress)
        if code != 0:
            raise _fail(f"could not download the wheels of {spec.name} for {target.describe()} into {house}", tail,
                        "check that pip's package index is reachable ('pip config list' shows where it looks) and that "
                        "the host's versions have wheels for the image's Python; offline, copy build/wheelhouse "
                        "from a machine where 'careops images build' worked")
        downloaded = True
        _give_to_shared_cache(house)
        chosen, tail = _resolve_offline(pins, constraints, target, dirs, progress, f"wheelhouse: {spec.name} (check)")
        if chosen is None:
            raise _fail(f"the wheelhouse {house} still does not satisfy the requirements of {spec.name} after downloading",
                        tail, "read pip's explanation above; remove build/wheelhouse and build again")
    wheels: dict[str, tuple[Path, str]] = {}
    local: dict[str, tuple[Path, str]] = {}
    pins_of: dict[str, str] = {}
    for path_text, pin in chosen.items():
        path = Path(path_text)
        if not any(path.parent == d for d in dirs) or not path.is_file():
            raise ImageBuildError(f"pip chose {path} for {pin}, expected a wheel inside {house}",
                                  fix="remove build/wheelhouse and build again")
        is_local = canonicalize_name(pin.partition("==")[0]) in local_names
        (local if is_local else wheels)[path.name] = (path, file_sha256(path))
        pins_of[path.name] = pin
    differ = []
    for pin in sorted(chosen.values(), key=str.lower):
        name, _, version = pin.partition("==")
        host = versions.get(canonicalize_name(name))
        if host is not None and host.version != version and canonicalize_name(name) not in local_names:
            differ.append(f"{name} {version}, not the host's {host.version} (which requires Python "
                          f"{host.requires_python or '?'})")
    if differ and progress:
        print(f"careops: {spec.tag} has Python {target.python_version}, so it installs " + "; ".join(differ),
              file=sys.stderr)
    header = f"# Exact pins of {spec.tag} (generated by careops from the host environment; do not edit)\n"
    lock = (header + "".join(f"# differs from the host: {d}\n" for d in differ)
            + "".join(f"{pins_of[fn]}\n" for fn in sorted(wheels, key=str.lower)))
    local_lock = header + "".join(f"{pins_of[fn]}\n" for fn in sorted(local, key=str.lower))
    manifest.write_text(json.dumps({
        "key": key, "lock": lock, "local_lock": local_lock, "target": asdict(target),
        "wheels": {fn: (p.relative_to(house).as_posix(), sha) for fn, (p, sha) in wheels.items()},
        "local": {fn: (p.relative_to(house).as_posix(), sha) for fn, (p, sha) in local.items()},
    }, indent=1))
    return Wheelhouse(wheels, lock, local, local_lock, downloaded)
