"""A container that is always removed: ``with tracked_container(client, image, cmd) as c: ...``.

Why: a throwaway container (an image probe, a scan, a test run) must not
outlive the code that made it, whether that code returns, raises or is
interrupted -- the way docker-stacks' ``TrackedContainer`` cleans up after each
test. Lab containers have the same guarantee through ``with lab.run(...) as c``.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import docker
import docker.errors
import requests
from docker.models.containers import Container


@contextlib.contextmanager
def tracked_container(client: docker.DockerClient, image: str, command: Sequence[str] | str | None = None,
                      **create_args: Any) -> Iterator[Container]:
    """Create (not start) a container; remove it, its anonymous volumes too, when the block ends.

    ``create_args`` go to ``client.containers.create``. An error creating it
    propagates as the SDK raised it; an error removing it is ignored (the
    engine went away, or it is already gone).
    """
    container = client.containers.create(image, list(command) if isinstance(command, (list, tuple)) else command,
                                         **create_args)
    try:
        yield container
    finally:
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            container.remove(force=True, v=True)


__all__ = ["tracked_container"]
