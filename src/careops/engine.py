"""Find and connect to a container engine: Docker Engine or a Podman socket.

Order: ``DOCKER_HOST``, the default Docker socket, the rootless and rootful
Podman sockets. The first that answers a ping wins; when none does, the error
names every place tried and how to start an engine.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from careops.errors import EngineUnavailable

START_ENGINE_FIX = (
    "start Docker Engine (Linux: 'sudo systemctl start docker', or 'make lab' as root installs it), "
    "Docker Desktop (macOS, Windows with WSL2), or Podman's socket "
    "('systemctl --user enable --now podman.socket' and "
    "'export DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock')"
)
PERMISSION_FIX = (
    "add yourself to the docker group ('sudo usermod -aG docker $USER', then log in again) "
    "or use rootless Podman's socket"
)


@dataclass(frozen=True)
class EngineCandidate:
    """A place where an engine may listen, and where we learned of it."""

    url: str
    source: str


def candidates() -> list[EngineCandidate]:
    """Every engine address worth trying, most explicit first."""
    found: list[EngineCandidate] = []
    if os.environ.get("DOCKER_HOST"):
        found.append(EngineCandidate(os.environ["DOCKER_HOST"], "DOCKER_HOST"))
    found.append(EngineCandidate("unix:///var/run/docker.sock", "default Docker socket"))
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    found.append(EngineCandidate(f"unix://{runtime}/podman/podman.sock", "rootless Podman socket"))
    found.append(EngineCandidate("unix:///run/podman/podman.sock", "rootful Podman socket"))
    return found


def _socket_path(url: str) -> Path | None:
    return Path(url[len("unix://"):]) if url.startswith("unix://") else None


def connect(timeout: int = 120) -> docker.DockerClient:
    """Return a client for the first engine that answers, or explain why none does."""
    tried: list[str] = []
    permission_denied: list[str] = []
    for cand in candidates():
        sock = _socket_path(cand.url)
        if sock is not None and not sock.exists():
            tried.append(f"{cand.source} ({sock}): no such socket")
        else:
            try:
                client = docker.DockerClient(base_url=cand.url, timeout=timeout)
                client.ping()
                return client
            except docker.errors.DockerException as exc:
                text = str(exc)
                if "Permission denied" in text or "PermissionError" in text:
                    permission_denied.append(f"{cand.source} ({cand.url})")
                tried.append(f"{cand.source} ({cand.url}): {text.splitlines()[0][:160]}")
        if cand.source == "DOCKER_HOST":
            break  # an explicit DOCKER_HOST is the user's choice: do not silently use another
    if permission_denied:
        raise EngineUnavailable(
            "the container engine refused this user: " + "; ".join(permission_denied),
            fix=PERMISSION_FIX,
        )
    raise EngineUnavailable(
        "no container engine answered. Tried:\n    " + "\n    ".join(tried), fix=START_ENGINE_FIX
    )


_client: docker.DockerClient | None = None


def client() -> docker.DockerClient:
    """A shared client for this process (notebooks make many small calls)."""
    global _client
    if _client is None:
        _client = connect()
    return _client


def _is_podman(version: dict) -> bool:
    return any("podman" in (c.get("Name") or "").lower() for c in version.get("Components") or [])


def is_podman(cl: docker.DockerClient) -> bool:
    """True when the engine behind the socket is Podman (its API reports it)."""
    try:
        return _is_podman(cl.version())
    except docker.errors.DockerException:
        return False


def describe(cl: docker.DockerClient) -> str:
    """'Docker Engine 20.10.24' or 'Podman 5.2.0': what a learner or doctor report shows."""
    version = cl.version()
    return f"{'Podman' if _is_podman(version) else 'Docker Engine'} {version.get('Version', '?')}"
