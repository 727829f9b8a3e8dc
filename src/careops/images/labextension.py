"""A prebuilt JupyterLab extension for an image, built on the host like the wheelhouse (never in an image build).

An image that offers a JupyterLab extension (careops/learner: the workshop's "Hand in" button) keeps its source in
its build context: ``package.json``, ``package-lock.json`` and ``lib/*.js``. careops installs the lock's packages
on the host (careops.images.npm, with the development packages: JupyterLab's extension builder), runs the builder
(``jupyter-builder build``, from JupyterLab's own Python packages) and adds the prebuilt extension to the context
as ``labextension/<package name>/``; the Dockerfile copies it where JupyterLab finds prebuilt extensions. A second
run with the same source reuses build/labextension/<image>/ without npm and without the network, so offline
re-runs work (copy build/labextension or build/npm from a connected machine). A fresh clone reuses the build of
the same source from the user's cache (careops.paths.cache_dir): the builder's output depends on the folder it
ran in, and a rebuilt extension would rebuild careops/learner for nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from careops import paths
from careops.errors import ImageBuildError
from careops.images import npm
from careops.images.common import run_streaming, state_dir
from careops.images.hashing import context_files, file_sha256

OUTPUT = "labextension"
STAMP = ".careops-labextension.json"
#: The extension's own files (its source); node_modules and the builder's output are not.
SOURCE_SKIP = (npm.NODE_MODULES + "/", OUTPUT + "/")


def _source_files(folder: Path) -> dict[str, Path]:
    return {rel: p for rel, p in context_files(folder).items() if not rel.startswith(SOURCE_SKIP)}


def source_key(folder: Path) -> str:
    h = hashlib.sha256(b"careops-labextension-v1\n")
    for rel, path in sorted(_source_files(folder).items()):
        h.update(rel.encode() + b"\0" + file_sha256(path).encode() + b"\n")
    return h.hexdigest()


def package_name(folder: Path) -> str:
    try:
        return str(json.loads((folder / "package.json").read_text())["name"])
    except (OSError, ValueError, KeyError) as exc:
        raise ImageBuildError(f"cannot read the extension's name from {folder / 'package.json'}: {exc}",
                              fix="restore package.json from git") from None


def _builder() -> str:
    found = Path(sys.executable).with_name("jupyter-builder")
    if found.is_file():
        return str(found)
    which = shutil.which("jupyter-builder")
    if which is None:
        raise ImageBuildError("building the JupyterLab extension needs jupyter-builder (JupyterLab's extension "
                              "builder, a dependency of jupyterlab) and it is not installed here",
                              fix="make venv (environment.yml has jupyterlab), or copy build/labextension/ from a "
                                  "machine where the image was built")
    return which


def ensure_labextension(name: str, folder: Path, *, progress: bool = True) -> dict[str, Path]:
    """The prebuilt extension of the source in ``folder``, built on the host only when the source changed.

    Returns its files by their path under ``labextension/`` (``<package name>/package.json``, ``.../static/...``).
    """
    for required in ("package.json", "package-lock.json"):
        if not (folder / required).is_file():
            raise ImageBuildError(f"{folder} lacks {required}: expected the extension's package.json and its lock",
                                  fix="restore them from git")
    package = package_name(folder)
    key = source_key(folder)
    dest = paths.build_dir() / "labextension" / name
    built = dest / package
    shared = paths.cache_dir() / "labextension" / key
    files = _verified(dest, package, key)
    if files is not None:
        if _verified(shared, package, key) is None:
            _share(dest, shared)  # built before the cache existed: the next clone reuses it too
        return files
    # Another checkout built the same source: reuse its output byte for byte. The builder's output depends on
    # the folder it ran in, so a rebuild in a fresh clone would change the image's inputs and rebuild the image.
    if _verified(shared, package, key) is not None:
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(shared, dest)
        files = _verified(dest, package, key)
        if files is not None:
            return files
    npm.ensure_node_modules(name, folder, progress=progress, dev=True)
    modules_dir = npm.node_modules_dir(name, dev=True)
    with tempfile.TemporaryDirectory(prefix="labext-", dir=state_dir()) as tmp:
        work = Path(tmp) / package
        for rel, path in _source_files(folder).items():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, work / rel)
        (work / npm.NODE_MODULES).symlink_to(modules_dir, target_is_directory=True)
        bin_dir = str(Path(sys.executable).parent)
        code, tail = run_streaming([_builder(), "build", "."], desc=f"JupyterLab extension of {name}",
                                   progress=progress, cwd=work,
                                   env=os.environ | {"PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")})
        output = work / OUTPUT
        if code != 0 or not (output / "package.json").is_file():
            raise ImageBuildError(
                f"building the JupyterLab extension of {name} failed (exit {code}); the builder said (last lines):"
                "\n    " + "\n    ".join(tail[-15:]),
                fix=f"fix {folder / 'lib'} (plain JavaScript modules), then build again")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        shutil.copytree(output, built)
    files = {f"{package}/{rel}": p for rel, p in context_files(built).items()}
    (dest / STAMP).write_text(json.dumps({"key": key, "files": {rel: file_sha256(p) for rel, p in files.items()}},
                                         indent=1))
    _share(dest, shared)
    return files


def _verified(folder: Path, package: str, key: str) -> dict[str, Path] | None:
    """The extension's files in ``folder`` when its stamp says ``key`` and every file still has its sha256."""
    try:
        saved = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None
    built = folder / package
    if saved.get("key") != key or not built.is_dir():
        return None
    files = {f"{package}/{rel}": p for rel, p in context_files(built).items()}
    if files and all(p.is_file() and file_sha256(p) == saved["files"].get(rel) for rel, p in files.items()):
        return files
    return None


def _share(dest: Path, shared: Path) -> None:
    """Copy a fresh build into the user's cache (atomically: a half-copied folder is never seen as a build)."""
    try:
        shared.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".partial-", dir=shared.parent) as tmp:
            staged = Path(tmp) / "out"
            shutil.copytree(dest, staged)
            if shared.exists():
                shutil.rmtree(shared)
            staged.rename(shared)
    except OSError:
        pass  # a cache that cannot be written costs time on the next clone, nothing else


__all__ = ["OUTPUT", "ensure_labextension", "package_name", "source_key"]
