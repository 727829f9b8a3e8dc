"""Node packages for an image, fetched on the host like the wheelhouse (careops.images.wheelhouse).

An image that needs Node packages (the workshop hub's configurable-http-proxy)
keeps a ``package.json`` and a ``package-lock.json`` in its build context: the
lock pins every package with its integrity hash. careops runs ``npm ci`` on the
host, with npm's own configuration (registry, proxy, cache), into
build/npm/<image>/node_modules, and copies that folder into the build context;
the image build itself never downloads anything. A second run with the same
lock reuses the folder without touching the network, so offline re-runs work
(copy build/npm from a connected machine, as with build/wheelhouse).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from careops import paths
from careops.errors import ImageBuildError
from careops.images.common import run_streaming, state_dir
from careops.images.hashing import context_files, file_sha256

NODE_MODULES = "node_modules"
STAMP = ".careops-npm.json"
LOCK_FILES = ("package.json", "package-lock.json")


def npm_dir() -> Path:
    """build/npm: one folder per image with the node_modules its lock file pins."""
    d = paths.build_dir() / "npm"
    d.mkdir(parents=True, exist_ok=True)
    return d


def node_modules_dir(name: str, *, dev: bool = False) -> Path:
    """Where the node_modules of image ``name`` are kept (with the development packages: ``dev``)."""
    return npm_dir() / (f"{name}-build" if dev else name) / NODE_MODULES


def _lock_key(folder: Path, dev: bool = False) -> str:
    h = hashlib.sha256(b"careops-npm-v1\n" + (b"dev\n" if dev else b""))
    for name in LOCK_FILES:
        h.update(name.encode() + b"\0" + file_sha256(folder / name).encode() + b"\n")
    return h.hexdigest()


def _saved(dest: Path, key: str) -> dict[str, Path] | None:
    """The node_modules files of an earlier run with the same lock, if all are still there unchanged."""
    stamp = dest / STAMP
    try:
        saved = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("key") != key:
        return None
    files = {rel: dest / NODE_MODULES / rel for rel in saved.get("files", {})}
    if not files or not all(p.is_file() and file_sha256(p) == saved["files"][rel] for rel, p in files.items()):
        return None
    return files


def ensure_node_modules(name: str, folder: Path, *, progress: bool = True, dev: bool = False) -> dict[str, Path]:
    """node_modules for the lock in ``folder`` (``npm ci`` on the host only when the lock changed).

    Returns every file by its path relative to node_modules/. ``dev``: with the development packages too (what
    a build on the host needs, e.g. a JupyterLab extension's builder: careops.images.labextension), kept apart
    in build/npm/<name>-build.
    """
    missing = [n for n in LOCK_FILES if not (folder / n).is_file()]
    if missing:
        raise ImageBuildError(f"{folder} lacks {', '.join(missing)}: expected a package.json and its package-lock.json",
                              fix="restore them from git (the lock pins every Node package the image gets)")
    key = _lock_key(folder, dev)
    dest = node_modules_dir(name, dev=dev).parent
    found = _saved(dest, key)
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise ImageBuildError(
            f"the image {name} needs Node packages ({folder / 'package-lock.json'}) and npm is not installed on this host",
            fix="install Node.js and npm (Debian: 'apt-get install npm'), or copy build/npm/ from a machine where "
                f"'careops images build {name}' worked")
    with tempfile.TemporaryDirectory(prefix="npm-", dir=state_dir()) as tmp:
        work = Path(tmp)
        for n in LOCK_FILES:
            shutil.copy2(folder / n, work / n)
        # The lock decides every version; --ignore-scripts: nothing from a package runs on the host.
        code, tail = run_streaming([npm, "ci", *([] if dev else ["--omit=dev"]), "--ignore-scripts", "--no-audit",
                                    "--no-fund"],
                                   desc=f"npm: packages of {name}", progress=progress, cwd=work,
                                   env=os.environ | ({} if dev else {"NODE_ENV": "production"}))
        if code != 0 or not (work / NODE_MODULES).is_dir():
            raise ImageBuildError(
                f"npm ci for {name} failed (exit {code}); npm said (last lines):\n    " + "\n    ".join(tail[-15:]),
                fix="check that npm's registry is reachable ('npm config get registry' shows where it looks), or "
                    f"copy build/npm/ from a machine where 'careops images build {name}' worked")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        shutil.move(str(work / NODE_MODULES), dest / NODE_MODULES)
    files = context_files(dest / NODE_MODULES)
    (dest / STAMP).write_text(json.dumps({"key": key, "files": {rel: file_sha256(p) for rel, p in files.items()}},
                                         indent=1))
    return files
