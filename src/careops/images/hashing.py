"""The inputs hash: one sha256 over everything an image is made of.

An image is rebuilt only when this hash changes, so it must cover every input
(Dockerfile, every context file with its path, every wheel with its content,
the parent image) and nothing incidental (file order, mtimes, absolute paths).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Mapping

#: Files that never belong in a build context (editor and interpreter droppings).
IGNORED_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache", ".git"}
IGNORED_FILES = {".DS_Store"}
IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")

HASH_VERSION = "careops-inputs-v1"


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's content, read in chunks (wheels can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def context_files(context: Path) -> dict[str, Path]:
    """Every file of a build context by its relative POSIX path, minus droppings."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(context):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS)
        for fn in filenames:
            if fn in IGNORED_FILES or fn.endswith(IGNORED_SUFFIXES):
                continue
            full = Path(dirpath) / fn
            if full.is_file():
                found[full.relative_to(context).as_posix()] = full
    return dict(sorted(found.items()))


def inputs_hash(*, dockerfile: bytes, files: Mapping[str, str], wheels: Mapping[str, str], parent_id: str) -> str:
    """sha256 over the Dockerfile, context files (path -> sha256), wheels (filename -> sha256) and the parent id.

    Sorted by name, so the order in which files were found does not matter.
    """
    h = hashlib.sha256()
    h.update(f"{HASH_VERSION}\n".encode())
    h.update(b"dockerfile\0" + hashlib.sha256(dockerfile).hexdigest().encode() + b"\n")
    for path in sorted(files):
        h.update(f"file\0{path}\0{files[path]}\n".encode())
    for name in sorted(wheels):
        h.update(f"wheel\0{name}\0{wheels[name]}\n".encode())
    h.update(f"parent\0{parent_id}\n".encode())
    return h.hexdigest()


def recipe_hash(*parts: str) -> str:
    """sha256 of a list of strings (for images made without a Dockerfile, e.g. the base)."""
    h = hashlib.sha256(HASH_VERSION.encode())
    for part in parts:
        h.update(b"\0" + part.encode())
    return h.hexdigest()
