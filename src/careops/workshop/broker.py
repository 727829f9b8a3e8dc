"""The lab broker: learners' lab operations, run on the engine for the learner the hub says is asking.

A JupyterHub service (``lab-broker``) that the hub starts inside careops/hub,
the only container with the engine socket. A learner's server has no socket;
its kernels reach this service at CAREOPS_BROKER_URL with the server's hub
token (careops.lab.broker is the client). For each request the broker:

1. asks the hub who the token belongs to (``HubAuth``, cached briefly); only
   users whose token may access this service get in, services never;
2. makes that user's learner id the only one the request may touch: a
   ``DirectBackend`` with a ``Confinement`` (careops.lab.direct) re-checks
   every name, label, network, image and quota, whatever the request says;
3. runs the same careops code a laptop runs (careops.lab, and the learner's
   Dockerfile build of careops.containerize), in a thread, and answers JSON,
   streaming command output and build steps as they come.

Only the lab API exists here (``/api/v1/...``): there is no docker API to pass
through. Errors answer ``{"error": kind, "message": ..., "fix": ...}``; kinds
are policy and quota (403/429), lab (409), not_found (404), engine (502),
auth (401/403), bad_request (400).

Run by the hub: ``python3 -m careops.workshop.broker`` (settings from its environment).
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

import docker
import docker.errors
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from careops.errors import CareOpsError, PolicyViolation, QuotaExceeded
from careops.lab import labels as L
from careops.lab.backend import LabRef, ResourceRecord, RunRequest
from careops.lab.direct import Confinement, DirectBackend, DirectContainer
from careops.lab.policy import LabQuota, check_lab_image, parse_bytes
from careops.workshop.labels import (
    BROKER_CONTAINERS_ENV,
    BROKER_MEMORY_ENV,
    BROKER_PORT,
    BROKER_SCRATCH_ENV,
    BROKER_WORKSHOP_ENV,
    LABEL_HUB_USER,
    LABEL_ROLE,
    LABEL_WORKSHOP,
    ROLE_SERVER,
)

log = logging.getLogger("careops.broker")

#: Longest a command may run in a lab container through the broker.
MAX_EXEC_SECONDS = 600.0
#: Longest one wait-for-exit request blocks (the client asks again).
MAX_WAIT_SECONDS = 300.0
#: Streams (commands, builds) one learner may have at once.
STREAMS_PER_LEARNER = 6
#: Largest request body: files copied into a container, a Dockerfile.
MAX_BODY = 64 * 1024**2
MAX_DOCKERFILE = 64 * 1024
_PS_ARGS_OK = re.compile(r"^-o [a-z,%]+$")
_SIGNAL_OK = re.compile(r"^(SIG)?[A-Z0-9]{2,8}$")


class ApiError(Exception):
    """An answer other than 200: ``kind`` tells the client which exception to raise."""

    def __init__(self, status: int, kind: str, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.fix = status, kind, message, fix


def api_error(exc: BaseException) -> ApiError:
    """The answer for an exception of the lab code (a learner's mistake, a refusal, the engine's error)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, QuotaExceeded):
        return ApiError(429, "quota", exc.message, exc.fix)
    if isinstance(exc, PolicyViolation):
        return ApiError(403, "policy", exc.message, exc.fix)
    if isinstance(exc, CareOpsError):
        return ApiError(409, "lab", exc.message, exc.fix)
    if isinstance(exc, docker.errors.NotFound):
        return ApiError(404, "not_found", str(exc.explanation or exc),
                        "only your own labs are reachable: careops.lab.find() lists them")
    if isinstance(exc, docker.errors.APIError):
        return ApiError(502, "engine", str(exc.explanation or exc))
    if isinstance(exc, (ValueError, TypeError, KeyError)):
        return ApiError(400, "bad_request", f"the request is malformed: {exc}", "use careops.lab: it sends well-formed requests")
    raise exc


@dataclass(frozen=True)
class BrokerSettings:
    """What the hub's configuration hands the broker (environment variables, see careops.workshop.config)."""

    workshop: str = "careops"
    quota: LabQuota = field(default_factory=LabQuota)
    port: int = BROKER_PORT
    prefix: str = "/services/lab-broker/"
    threads: int = 32

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> BrokerSettings:
        env = dict(os.environ if env is None else env)
        quota = LabQuota(containers=int(env.get(BROKER_CONTAINERS_ENV, LabQuota.containers)),
                         memory=parse_bytes(env.get(BROKER_MEMORY_ENV, str(LabQuota.memory))))
        url = urlparse(env.get("JUPYTERHUB_SERVICE_URL") or f"http://127.0.0.1:{BROKER_PORT}")
        return cls(workshop=env.get(BROKER_WORKSHOP_ENV, "careops"), quota=quota, port=url.port or BROKER_PORT,
                   prefix=env.get("JUPYTERHUB_SERVICE_PREFIX", cls.prefix))


@dataclass
class Learner:
    """The hub user a request comes from, and the backend confined to them."""

    user: str
    learner: str
    backend: DirectBackend


@dataclass
class Broker:
    """The broker's state: the engine client, who may use it, and what each learner has running."""

    settings: BrokerSettings
    client: docker.DockerClient
    identify: Callable[[str], Any]  # token -> the hub's user model (awaitable), None when unknown
    may_use: Callable[[dict[str, Any]], bool]  # whether that token's scopes reach this service
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(32, thread_name_prefix="broker"))
    #: per learner: streams running now, and the step images of each build the broker made (tag -> ids)
    streams: dict[str, int] = field(default_factory=dict)
    builds: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def server_of(self, user: str) -> str | None:
        """The learner's server container (joined to their lab networks), or None when it does not run."""
        flt = {"label": [f"{LABEL_WORKSHOP}={self.settings.workshop}", f"{LABEL_ROLE}={ROLE_SERVER}",
                         f"{LABEL_HUB_USER}={user}"]}
        found = self.client.api.containers(filters=flt)
        return found[0]["Id"] if found else None

    def learner(self, user: str, *, attach: bool = False) -> Learner:
        learner = L.slug(user, what="learner id")
        confinement = Confinement(learner=learner, quota=self.settings.quota,
                                  attach=self.server_of(user) if attach else None,
                                  labels=((LABEL_WORKSHOP, self.settings.workshop),))
        return Learner(user, learner, DirectBackend(self.client, confinement))

    def begin_stream(self, learner: str) -> None:
        with self.lock:
            if self.streams.get(learner, 0) >= STREAMS_PER_LEARNER:
                raise QuotaExceeded(f"you have {STREAMS_PER_LEARNER} commands or builds running at once, the most "
                                    "a learner may on this workshop host",
                                    fix="wait for one to finish (or interrupt the kernel), then run the cell again")
            self.streams[learner] = self.streams.get(learner, 0) + 1

    def end_stream(self, learner: str) -> None:
        with self.lock:
            self.streams[learner] = max(0, self.streams.get(learner, 1) - 1)


# -- request bodies, checked ------------------------------------------------------------------------------


def _ref(body: dict[str, Any]) -> LabRef:
    return LabRef.from_wire(body.get("ref"))


def _text(body: dict[str, Any], key: str, *, limit: int = 4096, optional: bool = False) -> str | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(400, "bad_request", f"'{key}' must be text of at most {limit} characters")
    return value


def _seconds(body: dict[str, Any], key: str, default: float, most: float) -> float:
    value = body.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, (int, float)) or value <= 0:
        raise ApiError(400, "bad_request", f"'{key}' must be a positive number of seconds, got {value!r}")
    return min(float(value), most)


def container_answer(c: DirectContainer) -> dict[str, Any]:
    attrs = c.attrs
    return {"container": attrs, "image_tags": [(attrs.get("Config") or {}).get("Image") or ""]}


# -- handlers -----------------------------------------------------------------------------------------------


class BrokerHandler(web.RequestHandler):
    """Authenticates every request with the hub; answers errors as JSON."""

    broker: Broker
    who: Learner

    def initialize(self, broker: Broker) -> None:
        self.broker = broker

    def check_xsrf_cookie(self) -> None:  # token-authenticated API: no cookies, no xsrf
        return None

    async def prepare(self) -> None:
        self._started = time.monotonic()
        header = self.request.headers.get("Authorization", "")
        m = re.match(r"(?:token|bearer)\s+(\S+)$", header, re.IGNORECASE)
        if not m:
            raise ApiError(401, "auth", "no hub token in the request (Authorization: token ...)",
                           "use careops.lab from your server in the workshop hub: it sends the server's token")
        model = await self.broker.identify(m.group(1))
        if model is None:
            raise ApiError(403, "auth", "the hub does not know this token (it expired, or was never issued)",
                           "log in to the hub again and restart your server")
        if model.get("kind") != "user":
            raise ApiError(403, "auth", f"only learners' servers use the lab broker, not {model.get('kind')} "
                                        f"{model.get('name')!r}", "use a learner's server")
        if not self.broker.may_use(model):
            raise ApiError(403, "auth", f"user {model.get('name')}'s token may not use the lab broker",
                           "ask the instructor: learners and instructors get it with the workshop's lab-user role")
        self.who = self.broker.learner(str(model["name"]))
        self._authenticated = time.monotonic()

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError:
            raise ApiError(400, "bad_request", "the request body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "bad_request", "the request body must be a JSON object")
        return data

    async def blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run lab code in the broker's threads (the engine's calls block)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.broker.pool, lambda: fn(*args, **kwargs))
        except ApiError:
            raise
        except Exception as exc:  # noqa: BLE001 - every lab error becomes its answer; others are raised again
            raise api_error(exc) from None

    def answer(self, data: Any) -> None:
        now = time.monotonic()  # where a request's time went (the bench reads it): asking the hub, then the work
        self.set_header("Server-Timing", f"auth;dur={(self._authenticated - self._started) * 1000:.1f}, "
                                         f"work;dur={(now - self._authenticated) * 1000:.1f}")
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            err = exc
        elif isinstance(exc, web.HTTPError):
            err = ApiError(exc.status_code, "not_found" if exc.status_code == 404 else "bad_request",
                           exc.log_message or self._reason)
        else:
            log.exception("the broker failed a request", exc_info=kwargs.get("exc_info"))
            err = ApiError(500, "broker", f"the lab broker failed: {type(exc).__name__}: {exc}",
                           "tell the instructor; the hub's log (docker logs <workshop>-hub) has the details")
        self.set_status(err.status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": err.kind, "message": err.message, "fix": err.fix}))

    def arg(self, name: str, default: str | None = None, *, limit: int = 255) -> str:
        value = self.get_argument(name, default)
        if value is None or len(value) > limit:
            raise ApiError(400, "bad_request", f"the query needs '{name}' (text of at most {limit} characters)")
        return value

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, (CareOpsError, docker.errors.DockerException, ApiError)):
            err = api_error(e)
            self.send_error(err.status, exc_info=(type(err), err, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def log_exception(self, typ, value, tb) -> None:  # noqa: ANN001 - tornado's signature
        if not isinstance(value, ApiError):
            super().log_exception(typ, value, tb)

    async def stream_lines(self, produce: Callable[[Callable[[dict[str, Any]], None]], dict[str, Any]]) -> None:
        """Run ``produce(emit)`` in a thread of its own; send each emitted dict, then its result, as JSON lines."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        learner = self.who.learner
        self.broker.begin_stream(learner)

        def emit(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def work() -> None:
            try:
                emit(produce(emit))
            except Exception as exc:  # noqa: BLE001 - reported to the client as the stream's last line
                try:
                    err = api_error(exc)
                    emit({"error": err.kind, "message": err.message, "fix": err.fix})
                except Exception as unknown:  # noqa: BLE001 - not a lab error: logged, and reported too
                    log.exception("a stream failed")
                    emit({"error": "broker", "message": f"{type(unknown).__name__}: {unknown}", "fix": None})
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)
                self.broker.end_stream(learner)

        self.set_header("Content-Type", "application/x-ndjson")
        self.set_header("Cache-Control", "no-store")
        threading.Thread(target=work, daemon=True, name=f"stream-{learner}").start()
        try:
            while (event := await queue.get()) is not None:
                self.write(json.dumps(event) + "\n")
                await self.flush()
        except StreamClosedError:
            return  # the kernel went away; the command still ends at its own limit
        self.finish()


class WhoAmIHandler(BrokerHandler):
    async def get(self) -> None:
        quota = self.broker.settings.quota
        in_use = await self.blocking(self.who.backend.memory_in_use, self.who.learner)
        self.answer({"user": self.who.user, "learner": self.who.learner, "quota": asdict(quota),
                     "usage": {"containers": len(in_use), "memory": sum(in_use.values())}})


class EngineHandler(BrokerHandler):
    async def get(self) -> None:
        self.answer({"engine": await self.blocking(self.who.backend.describe)})


class LabHandler(BrokerHandler):
    """POST labs/<op>: open, volume, run, container, containers (each names its lab with a LabRef)."""

    async def post(self, op: str) -> None:
        body = self.body()
        if op == "open":
            who = self.broker.learner(self.who.user, attach=True)
            network, reclaimed = await self.blocking(who.backend.open_lab, _ref(body), reclaim=bool(body.get("reclaim")),
                                                     network=body.get("network") is not False)
            self.answer({"network": network, "reclaimed": [r.to_wire() for r in reclaimed]})
        elif op == "volume":
            name = _text(body, "name", limit=64)
            size = body.get("size")
            owner = body.get("owner")
            if not (size is None or (isinstance(size, (str, int)) and len(str(size)) <= 16)) or not (
                    owner is None or (isinstance(owner, int) and 0 <= owner < 65536)):
                raise ApiError(400, "bad_request", "'size' must be text such as '16m' and 'owner' a uid")
            self.answer({"volume": await self.blocking(self.who.backend.volume, _ref(body), name, size=size,
                                                       owner=owner)})
        elif op == "run":
            ref, request = _ref(body), RunRequest.from_wire(body.get("request"))
            c = await self.blocking(self.who.backend.run, ref, request)
            log.info("%s started %s from %s", self.who.user, c.name, request.image)
            self.answer(container_answer(c))
        elif op == "container":
            c = await self.blocking(self.who.backend.container, _ref(body), _text(body, "name", limit=64))
            self.answer(container_answer(c) if c is not None else {"container": None})
        elif op == "containers":
            found = await self.blocking(self.who.backend.containers, _ref(body))
            self.answer({"containers": [container_answer(c) for c in found]})
        else:
            raise ApiError(404, "not_found", f"the lab API has no operation labs/{op}",
                           "use careops.lab: open, volume, run, container, containers")


class ResourcesHandler(BrokerHandler):
    async def get(self) -> None:
        found = await self.blocking(self.who.backend.find, self.get_argument("lab", None) or None,
                                    self.get_argument("learner", None) or None)
        self.answer({"resources": [r.to_wire() for r in found]})


class RemoveHandler(BrokerHandler):
    async def post(self) -> None:
        records = self.body().get("resources")
        if not isinstance(records, list) or len(records) > 500:
            raise ApiError(400, "bad_request", "'resources' must be a list (at most 500)")
        removed, failed = await self.blocking(self.who.backend.remove, [ResourceRecord.from_wire(r) for r in records])
        self.answer({"removed": [r.to_wire() for r in removed], "failed": [[r.to_wire(), why] for r, why in failed]})


class ContainerHandler(BrokerHandler):
    """containers/<name>[/<op>]: the operations of LabContainer, on the asking learner's containers only."""

    async def mine(self, name: str) -> DirectContainer:
        return await self.blocking(self.who.backend.by_name, name)

    async def get(self, name: str, op: str | None = None) -> None:
        c = await self.mine(name)
        if op is None:
            self.answer(container_answer(c))
        elif op == "archive":
            data = await self.blocking(c.get_archive, self.arg("path"))
            self.set_header("Content-Type", "application/x-tar")
            self.finish(data)
        elif op == "logs":
            tail_arg = self.get_argument("tail", "200")
            tail = None if tail_arg == "all" else int(tail_arg)
            data = await self.blocking(c.logs, tail, self.get_argument("stdout", "1") == "1",
                                       self.get_argument("stderr", "1") == "1")
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(data)
        elif op == "top":
            ps_args = self.arg("ps_args", "-o pid,uid,comm")
            if not _PS_ARGS_OK.match(ps_args):
                raise ApiError(403, "policy", f"ps arguments {ps_args!r} are refused: only '-o <columns>'",
                               "e.g. container.processes('-o pid,uid,comm')")
            self.answer(await self.blocking(c.top, ps_args))
        else:
            raise ApiError(404, "not_found", f"the lab API has no operation GET containers/<name>/{op}")

    async def put(self, name: str, op: str | None = None) -> None:
        if op != "archive":
            raise ApiError(404, "not_found", f"the lab API has no operation PUT containers/<name>/{op}")
        c = await self.mine(name)
        path = self.arg("path")
        if not path.startswith("/"):
            raise ApiError(400, "bad_request", f"copy into an absolute folder inside the container, got {path!r}")
        await self.blocking(c.put_archive, path, self.request.body)
        self.answer({"ok": True})

    async def delete(self, name: str, op: str | None = None) -> None:
        if op is not None:
            raise ApiError(404, "not_found", f"the lab API has no operation DELETE containers/<name>/{op}")
        c = await self.mine(name)
        await self.blocking(c.remove)
        self.answer({"removed": c.name})

    async def post(self, name: str, op: str | None = None) -> None:
        body = self.body()
        if op == "exec":
            await self.exec(name, body)
            return
        c = await self.mine(name)
        if op == "start":
            await self.blocking(c.start)
        elif op in ("stop", "restart"):
            timeout = int(_seconds(body, "timeout", 10, 60))
            await self.blocking(getattr(c, op), timeout)
        elif op == "kill":
            signal = body.get("signal")
            if signal is not None and not (isinstance(signal, int) and 1 <= signal <= 64) and \
                    not (isinstance(signal, str) and _SIGNAL_OK.match(signal)):
                raise ApiError(400, "bad_request", f"signal {signal!r} is not a signal name or number")
            await self.blocking(c.kill, signal)
        elif op == "wait":
            code = await self.blocking(c.wait, _seconds(body, "timeout", MAX_WAIT_SECONDS, MAX_WAIT_SECONDS))
            self.answer({"exit_code": code})
            return
        else:
            raise ApiError(404, "not_found", f"the lab API has no operation POST containers/<name>/{op}")
        self.answer({"ok": True})

    async def exec(self, name: str, body: dict[str, Any]) -> None:
        argv = body.get("argv")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ApiError(400, "bad_request", "'argv' must be a non-empty list of text")
        env = body.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise ApiError(400, "bad_request", "'env' must map text to text")
        user = _text(body, "user", limit=64, optional=True) or ""
        workdir = _text(body, "workdir", limit=255, optional=True)
        if workdir is not None and not workdir.startswith("/"):
            raise ApiError(400, "bad_request", f"'workdir' must be an absolute path, got {workdir!r}")
        timeout = _seconds(body, "timeout", 30, MAX_EXEC_SECONDS)
        c = await self.mine(name)
        session = await self.blocking(c.exec_open, argv, timeout=timeout, env=env, user=user, workdir=workdir)

        def produce(emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
            for chunk in session.chunks():
                emit({"o": base64.b64encode(chunk).decode()})
            return {"exit": session.exit_code()}

        await self.stream_lines(produce)


class ImageHandler(BrokerHandler):
    """images (GET ?ref=), images/remove, images/scan: the course's images and the learner's own builds."""

    async def get(self, op: str | None = None) -> None:
        ref = self.arg("ref")
        info = await self.blocking(self.who.backend.image_inspect, ref)
        if info is None:
            raise ApiError(404, "not_found", f"image {ref} is not on the workshop host")
        self.answer({"image": info})

    def _own_build(self, ref: str) -> None:
        learner = self.who.learner
        labels = ((self.broker.client.api.inspect_image(ref).get("Config") or {}).get("Labels") or {})
        c = self.who.backend.confinement
        check_lab_image(ref, learner=learner, course_images=(), build_repo=c.build_repo, image_labels=labels)

    def _remove(self, ref: str) -> list[str]:
        from careops.containerize.build import LearnerBuild

        try:
            self._own_build(ref)
        except docker.errors.ImageNotFound:
            return []
        with self.broker.lock:
            created = self.broker.builds.get(self.who.learner, {}).pop(ref, [])
        LearnerBuild(True, tag=ref, created=created).remove(self.broker.client)
        return [ref]

    def _scan(self, ref: str, base: str) -> dict[str, Any]:
        from careops.containerize.layers import scan_image

        self.who.backend.image_inspect(ref)  # the course's or the learner's own, else refused
        c = self.who.backend.confinement
        if base not in c.course_images:
            raise PolicyViolation(f"base image {base} is not one of the course's images",
                                  fix="scan against the image your Dockerfile starts FROM")
        return asdict(scan_image(ref, base, client=self.broker.client))

    async def post(self, op: str | None = None) -> None:
        body = self.body()
        if op == "remove":
            self.answer({"removed": await self.blocking(self._remove, _text(body, "ref", limit=255))})
        elif op == "scan":
            self.answer(await self.blocking(self._scan, _text(body, "ref", limit=255), _text(body, "base", limit=255)))
        else:
            raise ApiError(404, "not_found", f"the lab API has no operation images/{op}")


class BuildHandler(BrokerHandler):
    """POST builds: build the learner's Dockerfile as the grader does (offline, bounded), streaming its steps."""

    async def post(self) -> None:
        from careops.containerize.build import build_learner_image

        body = self.body()
        dockerfile = _text(body, "dockerfile", limit=MAX_DOCKERFILE)
        dockerignore = _text(body, "dockerignore", limit=MAX_DOCKERFILE, optional=True)
        self.who.backend.learner(_text(body, "learner", limit=64, optional=True))  # another learner's: refused
        learner, broker, confinement = self.who.learner, self.broker, self.who.backend.confinement

        def course_image(image: str) -> None:  # never FROM the grader's image (it holds the solutions), the hub's ...
            labels = None
            if image.startswith(f"{confinement.build_repo}:{learner}-"):
                labels = (broker.client.api.inspect_image(image).get("Config") or {}).get("Labels")
            check_lab_image(image, learner=learner, course_images=confinement.course_images,
                            build_repo=confinement.build_repo, image_labels=labels)

        def produce(emit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
            started = time.monotonic()
            build = build_learner_image(dockerfile, dockerignore, learner=learner, progress=False,
                                        nocache=bool(body.get("nocache")), client=broker.client, check_image=course_image,
                                        on_step=lambda s: emit({"step": s.number, "total": s.total,
                                                                "instruction": s.instruction[:200]}))
            if build.ok and build.tag:
                with broker.lock:
                    broker.builds.setdefault(learner, {})[build.tag] = list(build.created)
            log.info("%s built %s in %.1f s: %s", learner, build.tag, time.monotonic() - started,
                     "ok" if build.ok else build.reason)
            return {"build": build.to_wire()}

        await self.stream_lines(produce)


class NoSuchOperation(BrokerHandler):
    """Everything else: the broker is not a docker API."""

    async def prepare(self) -> None:  # also without a token: say what exists
        raise ApiError(404, "not_found", f"the lab broker has no operation {self.request.method} {self.request.path}: "
                                         "it runs only the lab API of careops.lab, never the engine's own API",
                       "use careops.lab (Lab, LabContainer) from your server")


def make_app(broker: Broker) -> web.Application:
    api = broker.settings.prefix.rstrip("/") + "/api/v1/"
    name = r"([A-Za-z0-9][A-Za-z0-9_.-]{0,127})"
    args = {"broker": broker}
    return web.Application([
        (api + "whoami", WhoAmIHandler, args),
        (api + "engine", EngineHandler, args),
        (api + r"labs/([a-z]+)", LabHandler, args),
        (api + "resources", ResourcesHandler, args),
        (api + "resources/remove", RemoveHandler, args),
        (api + f"containers/{name}", ContainerHandler, args),
        (api + f"containers/{name}/([a-z]+)", ContainerHandler, args),
        (api + "images", ImageHandler, args),
        (api + r"images/([a-z]+)", ImageHandler, args),
        (api + "builds", BuildHandler, args),
        (r".*", NoSuchOperation, args),
    ], max_body_size=MAX_BODY)


def hub_identify() -> tuple[Callable[[str], Any], Callable[[dict[str, Any]], bool]]:
    """Who a token belongs to, and whether it may use this service: asked of the hub (JupyterHub's HubAuth,
    configured from the service's environment: its token, the hub's API, ``access:services!service=lab-broker``)."""
    from jupyterhub.services.auth import HubAuth

    auth = HubAuth(cache_max_age=60)

    async def identify(token: str) -> Any:
        return await auth.user_for_token(token, sync=False)

    def may_use(model: dict[str, Any]) -> bool:
        return bool(auth.access_scopes) and bool(auth.check_scopes(auth.access_scopes, model))

    return identify, may_use


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s careops.broker] %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.WARNING)  # a kernel's status polls are not news
    from careops import engine

    settings = BrokerSettings.from_env()
    scratch = os.environ.get(BROKER_SCRATCH_ENV)
    if scratch:  # image scans save an image first: more than the hub container's small /tmp holds
        os.makedirs(scratch, mode=0o700, exist_ok=True)
        tempfile.tempdir = scratch
    identify, may_use = hub_identify()
    broker = Broker(settings, engine.client(), identify, may_use,
                    pool=ThreadPoolExecutor(settings.threads, thread_name_prefix="broker"))
    server = HTTPServer(make_app(broker), max_body_size=MAX_BODY, idle_connection_timeout=600)
    server.listen(settings.port, "0.0.0.0")
    log.info("lab broker of workshop %s on :%d%s (quota %s per learner, engine %s)", settings.workshop,
             settings.port, settings.prefix, settings.quota.as_row(), engine.describe(broker.client))
    IOLoop.current().start()


if __name__ == "__main__":
    main()
