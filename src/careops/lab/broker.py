"""The lab API over HTTP: a learner's server in the workshop hub asks the lab broker instead of an engine.

``BrokerBackend`` speaks to the broker (careops.workshop.broker) at
CAREOPS_BROKER_URL with the server's hub token (JUPYTERHUB_API_TOKEN, or
CAREOPS_BROKER_TOKEN). It sends plain requests (careops.lab.backend: LabRef,
RunRequest) and turns the broker's answers back into what the engine path
gives: container inspect data, docker.errors.NotFound for what is not there,
PolicyViolation / QuotaExceeded / LabError with the broker's message and fix.
Command output streams back as it comes (one JSON line per chunk).

The broker decides who the learner is from the token; what the client says
about it is only checked, never believed.
"""
from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import docker.errors
import requests

from careops.errors import BrokerError, LabError, PolicyViolation, QuotaExceeded
from careops.lab import labels as L
from careops.lab.backend import (
    BROKER_TOKEN_ENV,
    BROKER_URL_ENV,
    HUB_TOKEN_ENV,
    LabBackend,
    LabRef,
    ResourceRecord,
    RunRequest,
)
from careops.lab.relay import TcpRelay

API = "api/v1/"
#: Seconds an ordinary request may take (starting a container includes the engine's own start).
TIMEOUT = 120.0
#: Extra seconds a streamed or waiting request may take beyond its own limit.
SLACK = 30.0
ERRORS: dict[str, type[LabError]] = {"policy": PolicyViolation, "quota": QuotaExceeded, "lab": LabError}


def error_from(status: int, body: bytes, what: str) -> Exception:
    """The exception for the broker's error answer (JSON {error, message, fix}) to ``what``."""
    try:
        data = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    kind, message, fix = data.get("error", ""), str(data.get("message") or body[:300]), data.get("fix")
    if kind == "not_found":
        return docker.errors.NotFound(message)
    if kind == "engine":
        return docker.errors.APIError(message)
    if kind in ERRORS:
        return ERRORS[kind](message, fix=fix)
    if status in (401, 403):
        return BrokerError(f"the lab broker refused {what}: {message}", status=status,
                           fix=fix or "your hub session may have ended: log in to the hub again and restart the kernel")
    return BrokerError(f"the lab broker failed {what}: HTTP {status}, {message}", status=status,
                       fix=fix or "run the cell again; if it fails again, tell the instructor (the broker's log says why)")


class BrokerExec:
    """A command the broker runs: its output chunks as they arrive, then its exit code (from the last line)."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response
        self._code: int | None = None

    def chunks(self) -> Iterator[bytes]:
        try:
            for line in self._response.iter_lines(chunk_size=None):
                if not line:
                    continue
                event = json.loads(line)
                if "o" in event:
                    yield base64.b64decode(event["o"])
                elif "exit" in event:
                    self._code = event["exit"]
        finally:
            self._response.close()

    def exit_code(self) -> int | None:
        return self._code


class BrokerContainer:
    """A lab container at the broker (careops.lab.backend.ContainerHandle): inspect data as last read."""

    def __init__(self, backend: BrokerBackend, data: dict[str, Any]) -> None:
        self._b = backend
        self._set(data)

    def _set(self, data: dict[str, Any]) -> None:
        self._attrs = data["container"]
        self._tags = list(data.get("image_tags") or [])

    def _path(self, op: str = "") -> str:
        return f"{API}containers/{quote(self.name, safe='')}" + (f"/{op}" if op else "")

    @property
    def name(self) -> str:
        return str(self._attrs.get("Name", "")).lstrip("/")

    @property
    def id(self) -> str:
        return str(self._attrs.get("Id", ""))

    @property
    def attrs(self) -> dict[str, Any]:
        return self._attrs

    @property
    def labels(self) -> dict[str, str]:
        return dict((self._attrs.get("Config") or {}).get("Labels") or {})

    @property
    def status(self) -> str:
        return str((self._attrs.get("State") or {}).get("Status") or "")

    def reload(self) -> None:
        self._set(self._b.call("GET", self._path(), what=f"inspect {self.name}").json())

    def image_tags(self) -> list[str]:
        return self._tags

    def host_port(self, key: str) -> int | None:
        """A loopback port of this machine that reaches the container's ``key`` (e.g. '2575/tcp') on the lab network."""
        port, _, proto = key.partition("/")
        asked = (self.labels.get(L.PORTS) or "").split(",")
        if proto != "tcp" or port not in asked:
            return None
        networks = (self._attrs.get("NetworkSettings") or {}).get("Networks") or {}
        address = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), "")
        return self._b.relay(self.name, address, int(port)) if address else None

    def exec_open(self, argv: list[str], *, timeout: float, env: dict[str, str], user: str,
                  workdir: str | None) -> BrokerExec:
        response = self._b.call("POST", self._path("exec"), what=f"run a command in {self.name}", stream=True,
                                json={"argv": argv, "timeout": timeout, "env": env, "user": user, "workdir": workdir},
                                timeout=timeout + SLACK)
        return BrokerExec(response)

    def put_archive(self, path: str, data: bytes) -> bool:
        self._b.call("PUT", self._path("archive"), params={"path": path}, data=data,
                     what=f"copy files into {self.name}:{path}")
        return True

    def get_archive(self, path: str) -> bytes:
        return self._b.call("GET", self._path("archive"), params={"path": path},
                            what=f"copy {self.name}:{path} out").content

    def top(self, ps_args: str) -> dict[str, Any]:
        return self._b.call("GET", self._path("top"), params={"ps_args": ps_args},
                            what=f"list the processes of {self.name}").json()

    def logs(self, tail: int | None, stdout: bool, stderr: bool) -> bytes:
        params = {"tail": "all" if tail is None else str(tail), "stdout": str(int(stdout)), "stderr": str(int(stderr))}
        return self._b.call("GET", self._path("logs"), params=params, what=f"read the logs of {self.name}").content

    def wait(self, timeout: float | None) -> int | None:
        limit = self._b.wait_limit if timeout is None else timeout
        while True:  # the broker waits at most its own limit per request; no timeout: ask again
            code = self._b.call("POST", self._path("wait"), json={"timeout": limit}, timeout=limit + SLACK,
                                what=f"wait for {self.name}").json().get("exit_code")
            if code is not None or timeout is not None:
                return code

    def _op(self, op: str, what: str, **body: Any) -> None:
        self._b.call("POST", self._path(op), json=body, what=f"{what} {self.name}", timeout=TIMEOUT + body.get("timeout", 0))

    def start(self) -> None:
        self._op("start", "start")

    def stop(self, timeout: int) -> None:
        self._op("stop", "stop", timeout=timeout)

    def restart(self, timeout: int) -> None:
        self._op("restart", "restart", timeout=timeout)

    def kill(self, signal: str | int | None) -> None:
        self._op("kill", "kill", signal=signal)

    def remove(self) -> None:
        self._b.close_relays(self.name)
        try:
            self._b.call("DELETE", self._path(), what=f"remove {self.name}")
        except docker.errors.NotFound:
            pass


class BrokerBackend(LabBackend):
    """The lab API through the workshop's lab broker (one HTTP session per kernel, kept alive)."""

    via_broker = True
    #: seconds the broker waits for a container to exit in one request
    wait_limit = 300.0

    def __init__(self, url: str, token: str) -> None:
        if not token:
            raise BrokerError(f"{BROKER_URL_ENV} is set but there is no token for the lab broker "
                              f"({HUB_TOKEN_ENV} or {BROKER_TOKEN_ENV})",
                              fix="start your server from the workshop hub (it hands the token over), or unset "
                                  f"{BROKER_URL_ENV} to use this machine's engine")
        self.url = self.base_url(url)
        self.key = (self.url, token)
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"token {token}", "Accept": "application/json"})
        self._me: dict[str, Any] | None = None
        self._relays: dict[tuple[str, int], TcpRelay] = {}
        self._lock = threading.Lock()

    @staticmethod
    def base_url(url: str) -> str:
        return url.rstrip("/") + "/"

    @staticmethod
    def from_env_key() -> tuple[str, str]:
        """(URL, token) as the environment says now."""
        token = os.environ.get(BROKER_TOKEN_ENV) or os.environ.get(HUB_TOKEN_ENV) or ""
        return BrokerBackend.base_url(os.environ[BROKER_URL_ENV]), token

    @classmethod
    def from_env(cls) -> BrokerBackend:
        return cls(*cls.from_env_key())

    # -- HTTP ------------------------------------------------------------------------------
    def call(self, method: str, path: str, *, what: str, json: Any = None, params: dict[str, str] | None = None,
             data: bytes | None = None, stream: bool = False, timeout: float = TIMEOUT) -> requests.Response:
        """One request; an error answer raises what the engine path would raise (see ``error_from``)."""
        try:
            response = self._session.request(method, self.url + path, json=json, params=params, data=data,
                                             stream=stream, timeout=(10, timeout))
        except requests.exceptions.RequestException as exc:
            raise BrokerError(f"the lab broker did not answer at {self.url} ({what}): {type(exc).__name__}",
                              fix="run the cell again in a minute; if it persists, tell the instructor "
                                  "(careops workshop status shows the hub)") from None
        if response.status_code >= 400:
            body = response.content
            response.close()
            raise error_from(response.status_code, body, what)
        return response

    def _post(self, path: str, body: dict[str, Any], what: str) -> Any:
        return self.call("POST", API + path, json=body, what=what).json()

    def whoami(self) -> dict[str, Any]:
        """Who the broker takes this server for: {user, learner, quota, usage}."""
        if self._me is None:
            self._me = self.call("GET", API + "whoami", what="tell who you are").json()
        return self._me

    def relay(self, container: str, address: str, port: int) -> int:
        """The loopback port relaying to ``address``:``port`` for ``container`` (kept while it lives)."""
        with self._lock:
            found = self._relays.get((container, port))
            if found is None or found.host != address:  # a replaced container has a new address
                if found is not None:
                    found.close()
                found = self._relays[(container, port)] = TcpRelay(address, port)
            return found.port

    def close_relays(self, container: str | None = None) -> None:
        """End the relays of ``container`` (by name; None: all)."""
        with self._lock:
            for key in [k for k in self._relays if container is None or k[0] == container]:
                self._relays.pop(key).close()

    def _container(self, data: dict[str, Any]) -> BrokerContainer:
        return BrokerContainer(self, data)

    # -- the lab API --------------------------------------------------------------------------
    def describe(self) -> str:
        return str(self.call("GET", API + "engine", what="describe the engine").json()["engine"])

    def learner(self, asked: str | None) -> str:
        return L.slug(asked, what="learner id") if asked else str(self.whoami()["learner"])

    def open_lab(self, ref: LabRef, *, reclaim: bool, network: bool = True) -> tuple[str, list[ResourceRecord]]:
        data = self._post("labs/open", {"ref": ref.to_wire(), "reclaim": reclaim, "network": network},
                          f"open lab {ref.name}")
        return str(data["network"]), [ResourceRecord.from_wire(r) for r in data["reclaimed"]]

    def volume(self, ref: LabRef, name: str, *, size: str | None = None, owner: int | None = None) -> str:
        body = {"ref": ref.to_wire(), "name": name, "size": size, "owner": owner}
        return str(self._post("labs/volume", body, f"make volume {name}")["volume"])

    def run(self, ref: LabRef, request: RunRequest, *, workdir: str | None = None) -> BrokerContainer:
        data = self._post("labs/run", {"ref": ref.to_wire(), "request": request.to_wire()},
                          f"start {request.name} in lab {ref.name}")
        return self._container(data)

    def container(self, ref: LabRef, short: str) -> BrokerContainer | None:
        data = self._post("labs/container", {"ref": ref.to_wire(), "name": short}, f"find {short} in lab {ref.name}")
        return self._container(data) if data.get("container") else None

    def containers(self, ref: LabRef) -> list[BrokerContainer]:
        data = self._post("labs/containers", {"ref": ref.to_wire()}, f"list the containers of lab {ref.name}")
        return [self._container(c) for c in data["containers"]]

    def find(self, lab: str | None, learner: str | None) -> list[ResourceRecord]:
        params = {k: v for k, v in (("lab", lab), ("learner", learner)) if v}
        data = self.call("GET", API + "resources", params=params, what="list lab resources").json()
        return [ResourceRecord.from_wire(r) for r in data["resources"]]

    def remove(self, records: list[ResourceRecord]) -> tuple[list[ResourceRecord], list[tuple[ResourceRecord, str]]]:
        data = self._post("resources/remove", {"resources": [r.to_wire() for r in records]}, "remove lab resources")
        removed = [ResourceRecord.from_wire(r) for r in data["removed"]]
        for r in removed:
            if r.kind == "container":
                self.close_relays(r.name)
        return removed, [(ResourceRecord.from_wire(r), str(why)) for r, why in data["failed"]]

    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", API + "images", params={"ref": ref}, what=f"inspect image {ref}").json()["image"]
        except docker.errors.NotFound:
            return None

    # -- brokered operations of higher layers (the learner's Dockerfile build, ...) -------------
    def stream(self, path: str, body: dict[str, Any], *, what: str, timeout: float) -> Iterator[dict[str, Any]]:
        """POST ``body`` and yield the broker's JSON lines as they come."""
        response = self.call("POST", API + path, json=body, what=what, stream=True, timeout=timeout + SLACK)
        try:
            for line in response.iter_lines(chunk_size=None):
                if line:
                    yield json.loads(line)
        finally:
            response.close()

    def operation(self, path: str, body: dict[str, Any], *, what: str, timeout: float = TIMEOUT) -> Any:
        """POST ``body`` to a brokered operation and return its JSON answer."""
        return self.call("POST", API + path, json=body, what=what, timeout=timeout).json()
