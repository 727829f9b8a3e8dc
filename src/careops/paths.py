"""Where CareOps Labs keeps things: the repo root, build/ and workspace/.

Everything is computed on each call (not at import) so that tests and
notebooks can point ``CAREOPS_HOME`` at another tree, e.g. a temporary copy.
"""
from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that overrides the repo root (tests, the Jupyter server).
HOME_ENV = "CAREOPS_HOME"


def repo_root() -> Path:
    """The CareOps Labs checkout: ``$CAREOPS_HOME`` if set, else the tree holding src/careops."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parents[2]


#: Environment variable that moves the cache shared by every checkout of this user (tests point it elsewhere).
CACHE_ENV = "CAREOPS_CACHE"


def cache_dir() -> Path:
    """What every checkout of this user may reuse, keyed by content: ``$CAREOPS_CACHE``, else
    ``$XDG_CACHE_HOME/careops`` (``~/.cache/careops``). Downloaded wheels and prebuilt JupyterLab extensions live
    here, so a fresh clone neither downloads them again nor rebuilds an image whose inputs did not change.
    Removing it loses nothing but time."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "careops"


def build_dir() -> Path:
    """Generated files (release, images state, test output); `make clean` removes it."""
    return repo_root() / "build"


#: A file at the root of a learner's copy of the course (made by `careops release`: no source notebooks, no
#: answers, the learner versions in release/).
LEARNER_COPY_MARKER = "LEARNER-COPY.md"


def is_learner_copy(root: Path | None = None) -> bool:
    """Whether ``root`` (default: the course checkout) is a learner's copy of the course."""
    return ((root or repo_root()) / LEARNER_COPY_MARKER).is_file()


def release_dir() -> Path:
    """Learner versions: written by `careops release` (build/release/), or shipped in a learner's copy (release/)."""
    if is_learner_copy():
        return repo_root() / "release"
    return build_dir() / "release"


def workspace_dir() -> Path:
    """The learner's own copies of the notebooks; never overwritten, kept by `make clean`."""
    return repo_root() / "workspace"


#: Environment variable naming a folder that holds the lab assets (labs/...),
#: for installs without a checkout, e.g. the grading image.
ASSETS_ENV = "CAREOPS_ASSETS"


def lab_asset(rel: str) -> Path:
    """A file under labs/ (e.g. ``legacy-adt/adt_service.py``): ``$CAREOPS_ASSETS/rel`` or ``<repo>/labs/rel``."""
    from careops.errors import CareOpsError

    bases = [Path(os.environ[ASSETS_ENV])] if os.environ.get(ASSETS_ENV) else []
    bases.append(repo_root() / "labs")
    for base in bases:
        if (base / rel).exists():
            return base / rel
    raise CareOpsError(f"lab asset {rel} not found: looked in {', '.join(str(b) for b in bases)}",
                       fix=f"run from a CareOps Labs checkout, or set {ASSETS_ENV} to a folder holding the labs/ files")
