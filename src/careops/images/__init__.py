"""The course's images, built offline: ``careops images build`` / ``careops images ls``.

Three images, in build order (see careops.images.catalog):

* ``careops/base:bookworm`` -- Debian bookworm + Python 3.11 + tini, from a
  local Python image, a registry, or debootstrap (careops.images.base);
* ``careops/lab-runtime:latest`` -- what learners' lab containers run;
* ``careops/grader:latest`` -- nbgrader and the careops toolkit, at the
  host environment's exact versions, from the wheelhouse.

Builds run without network; each image carries the sha256 of its inputs in
``org.careops.inputs`` and is rebuilt only when that changes.
"""
from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass

import docker
import docker.errors

from careops import engine
from careops.errors import CareOpsError
from careops.images import base as _base
from careops.images import catalog as _catalog
from careops.images.build import ensure_spec
from careops.images.build import existing_image as _existing_image
from careops.images.build import labels_of as _labels_of
from careops.images.catalog import BASE_IMAGE, CATALOG, GRADER_IMAGE, LAB_IMAGE, ImageResult, ImageSpec, select
from careops.images.common import build_lock as _build_lock


def ensure_images(names: list[str] | None = None, *, force: bool = False, client: docker.DockerClient | None = None,
                  progress: bool = True) -> list[ImageResult]:
    """Make sure the named images (default: all) exist with up-to-date inputs; build only what changed.

    Dependencies are ensured first (naming "grader" also ensures "base") but
    ``force`` rebuilds only the images named (all of them when ``names`` is None).
    ``progress`` shows each build as it runs; what was built or unchanged is in the
    results (``careops images build`` prints them once, as a table).
    """
    cl = client or engine.client()
    specs = select(names)
    forced = {s.name for s in (specs if not names else _select_exact(names))} if force else set()
    results: dict[str, ImageResult] = {}
    skipped: set[str] = set()
    with _build_lock():
        for spec in specs:
            if any(d in skipped for d in spec.depends_on):
                skipped.add(spec.name)
                continue
            try:
                if spec.context is None and spec.debootstrap_include:  # a base variant (e.g. router-base)
                    results[spec.name] = _base.ensure_variant(cl, spec, force=spec.name in forced, progress=progress)
                elif spec.context is None:
                    results[spec.name] = _base.ensure_base(cl, force=spec.name in forced, progress=progress)
                else:
                    results[spec.name] = ensure_spec(cl, spec, parents=results, force=spec.name in forced,
                                                     progress=progress)
            except CareOpsError as exc:
                if not spec.optional or names:  # asked for by name, or needed by every module: a real failure
                    raise
                skipped.add(spec.name)
                print(f"careops: skipped {spec.tag}, needed only by {spec.optional}: {exc.message}\n"
                      f"  fix: {exc.fix or 'see careops doctor'}; then `careops images build {spec.name}`",
                      file=sys.stderr)
                continue
        if any(r.built for r in results.values()):
            _prune_replaced(cl, results)
    return [results[s.name] for s in specs if s.name in results]


def _prune_replaced(cl: docker.DockerClient, current: dict[str, ImageResult]) -> None:
    """Remove course images a rebuild left untagged (with their untagged layers); in-use ones stay.

    The untagged first stage of a multi-stage build inherits the base's labels and
    is the layer cache of the next build: it stays while it was built on the current
    base. Anything else untagged whose inputs are not current any more goes.
    """
    if "base" not in current:
        return
    try:
        dangling = cl.api.images(filters={"dangling": True, "label": f"{_catalog.LABEL_COURSE}={_catalog.COURSE}"}, quiet=True)
    except docker.errors.APIError:
        return
    for image_id in dangling:
        with contextlib.suppress(docker.errors.APIError):
            labels = _labels_of(cl.api.inspect_image(image_id))
            name = labels.get(_catalog.LABEL_IMAGE, "")
            if name not in current:
                continue
            on_current_base = any(h.get("Id") == current["base"].image_id for h in cl.api.history(image_id))
            if not on_current_base or (name != "base" and labels.get(_catalog.LABEL_INPUTS) != current[name].inputs_hash):
                cl.api.remove_image(image_id)


def _select_exact(names: list[str]) -> list[ImageSpec]:
    """The specs named, without their dependencies."""
    return [_catalog.find(n) for n in names]


@dataclass(frozen=True)
class ImageInfo:
    """One catalog image as the engine has it (``image_id`` empty: not built)."""

    name: str
    tag: str
    image_id: str = ""
    size: int = 0
    inputs_hash: str = ""
    created: str = ""
    source: str = ""


def list_images(client: docker.DockerClient | None = None) -> list[ImageInfo]:
    """The catalog's images with id, size, inputs hash and creation time, in build order."""
    cl = client or engine.client()
    found = []
    for spec in CATALOG:
        data = _existing_image(cl, spec.tag)
        if data is None:
            found.append(ImageInfo(spec.name, spec.tag))
            continue
        labels = _labels_of(data)
        found.append(ImageInfo(spec.name, spec.tag, str(data["Id"]), int(data.get("Size") or 0),
                               labels.get(_catalog.LABEL_INPUTS, ""), str(data.get("Created", "")), labels.get(_catalog.LABEL_SOURCE, "")))
    return found


__all__ = ["BASE_IMAGE", "LAB_IMAGE", "GRADER_IMAGE", "CATALOG", "ImageSpec", "ImageResult", "ImageInfo",
           "ensure_images", "ensure_spec", "list_images", "select"]
