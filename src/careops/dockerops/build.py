"""One reader of the classic builder's stream: typed events, a record of what it said, a time limit.

Why one: the course builds three kinds of image (its own, a learner's
Dockerfile, a pipeline's), and each needs the same facts out of the engine's
JSON chunks -- which step runs, which container runs it, which layers it made,
the image id, the error. ``stream_build`` drives ``client.api.build(...,
decode=True)`` and turns each chunk into events; the ``BuildStream`` it returns
keeps the record (``log``, ``step``, ``image_id``, ``error``, ``layers``, ...),
so a caller only decides what to show and what to say.

With a ``deadline`` or a ``watch``, the stream is watched while it runs: when
time is up, or ``watch`` names a reason (e.g. a disk budget), the running step
container is killed (the builder then fails at once and removes it) and a
``Stopped`` event says why. The engine is read in a thread of its own; events
reach the caller in the caller's thread (notebook output must come from there).
Leaving the loop early (an exception, Ctrl-C, ``break``) stops the build too.
"""
from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from queue import Empty, Queue
from typing import Any

import docker
import docker.errors
import requests

STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
RUNNING_RE = re.compile(r"^ ---> Running in ([0-9a-f]{12,64})$")
LAYER_RE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
BUILT_RE = re.compile(r"^Successfully built ([0-9a-f]{12,64})$")
CACHE_LINE = "---> Using cache"
#: Seconds between two looks at the deadline and the ``watch`` while a build runs.
POLL = 0.5


# -- events ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BuildLine:
    """A line the builder wrote (``text`` without its newline); the subclasses are lines that mean more."""

    text: str


@dataclass(frozen=True)
class Step(BuildLine):
    """``Step 3/19 : RUN ...``: step ``number`` of ``total`` starts."""

    number: int
    total: int
    instruction: str

    def __str__(self) -> str:
        return f"{self.number}/{self.total} ({self.instruction[:100]})"


@dataclass(frozen=True)
class StepContainer(BuildLine):
    """`` ---> Running in <id>``: the container that runs this step (a RUN, or a metadata step)."""

    container_id: str


@dataclass(frozen=True)
class Layer(BuildLine):
    """`` ---> <id>``: the image this step ended with (a new one, the cache's, or the FROM image)."""

    image_id: str


@dataclass(frozen=True)
class CacheHit(BuildLine):
    """`` ---> Using cache``: this step's layer came from the cache."""


@dataclass(frozen=True)
class Built(BuildLine):
    """``Successfully built <short id>``."""

    image_id: str


@dataclass(frozen=True)
class ImageId:
    """The builder's ``aux`` record of the image it made (the full ``sha256:`` id)."""

    image_id: str


@dataclass(frozen=True)
class Aux:
    """Any other ``aux`` record, as the engine sent it."""

    data: Any


@dataclass(frozen=True)
class Failed:
    """The build failed: the builder's ``error`` (``detail`` is its ``errorDetail``), or the engine's refusal.

    ``engine_lost``: the connection to the engine broke (a timeout, a restart), not the Dockerfile.
    """

    message: str
    detail: dict = field(default_factory=dict)
    engine_lost: bool = False


@dataclass(frozen=True)
class Stopped:
    """The watcher stopped the build: ``cause`` is ``"deadline"`` or ``"watch"`` (then ``message`` is its reason).

    ``container_id``: the step container that was running and was killed (None: no step container ran then).
    """

    cause: str
    message: str = ""
    container_id: str | None = None


BuildEvent = BuildLine | ImageId | Aux | Failed | Stopped
#: ``watch(container_id)`` -> a reason to stop the build, or None; called every POLL s while a step container runs.
Watch = Callable[[str], str | None]


def parse_line(line: str) -> BuildLine:
    """The event one line of the builder's ``stream`` output stands for."""
    if m := STEP_RE.match(line):
        return Step(line, int(m.group(1)), int(m.group(2)), m.group(3))
    if m := RUNNING_RE.match(line):
        return StepContainer(line, m.group(1))
    if m := LAYER_RE.match(line):
        return Layer(line, m.group(1))
    if line.strip() == CACHE_LINE:
        return CacheHit(line)
    if m := BUILT_RE.match(line):
        return Built(line, m.group(1))
    return BuildLine(line)


def parse_chunk(chunk: dict) -> list[BuildEvent]:
    """The events of one decoded chunk of ``api.build(..., decode=True)`` (empty lines dropped)."""
    events: list[BuildEvent] = []
    for line in str(chunk.get("stream", "")).splitlines():
        if line.strip():
            events.append(parse_line(line.rstrip()))
    if chunk.get("error"):
        detail = chunk.get("errorDetail") or {}
        events.append(Failed(detail.get("message") or str(chunk["error"]), dict(detail)))
    aux = chunk.get("aux")
    if isinstance(aux, dict) and aux.get("ID"):
        events.append(ImageId(str(aux["ID"])))
    elif aux is not None:
        events.append(Aux(aux))
    return events


# -- the stream ----------------------------------------------------------------------------
_END = object()


class BuildStream:
    """A build in progress: iterate it for events; its attributes are the record of what the builder said.

    ``log``: every non-empty line; ``step``: the current Step; ``steps``: the number of steps;
    ``layers``: the `` ---> <id>`` images in order; ``step_containers``: every step container;
    ``container``: the step container running now (None between steps); ``cached``: steps from cache;
    ``image_id``: the ``aux`` id, else the ``Successfully built`` one; ``error``: why it failed;
    ``stopped``: the Stopped event when the watcher stopped it.
    """

    def __init__(self, client: docker.DockerClient, build_args: dict[str, Any], *, deadline: float | None,
                 watch: Watch | None, control: docker.DockerClient | None, grace: float | None,
                 poll: float) -> None:
        self._client, self._args = client, build_args
        self._deadline, self._watch, self._control = deadline, watch, control or client
        self._grace, self._poll = grace, poll
        self.log: list[str] = []
        self.step: Step | None = None
        self.layers: list[str] = []
        self.step_containers: list[str] = []
        self.container: str | None = None
        self.cached = 0
        self.image_id = ""
        self.error = ""
        self.engine_lost = False
        self.stopped: Stopped | None = None
        self._started = False

    @property
    def steps(self) -> int:
        return self.step.total if self.step else 0

    @property
    def ok(self) -> bool:
        """Built, not stopped, no error."""
        return bool(self.image_id) and not self.error and self.stopped is None

    def step_text(self) -> str:
        """``3/19 (RUN ...)``, or ``?`` before the first step."""
        return str(self.step) if self.step else "?"

    def _record(self, event: BuildEvent) -> None:
        if isinstance(event, BuildLine):
            self.log.append(event.text)
        if isinstance(event, Step):
            self.step, self.container = event, None
        elif isinstance(event, StepContainer):
            self.container = event.container_id
            self.step_containers.append(event.container_id)
        elif isinstance(event, Layer):
            self.layers.append(event.image_id)
            self.container = None
        elif isinstance(event, CacheHit):
            self.cached += 1
        elif isinstance(event, Built):
            self.image_id = self.image_id or event.image_id
        elif isinstance(event, ImageId):
            self.image_id = event.image_id
        elif isinstance(event, Failed):
            self.error, self.engine_lost = event.message, event.engine_lost
        elif isinstance(event, Stopped):
            self.stopped = self.stopped or event

    # -- reading the engine (a thread of its own) ------------------------------------------
    def _read(self, out: Queue, cancelled: threading.Event) -> None:
        try:
            for chunk in self._client.api.build(decode=True, **self._args):
                out.put(parse_chunk(chunk))
                if cancelled.is_set():
                    return
        except docker.errors.APIError as exc:
            out.put([Failed(str(exc.explanation or exc))])
        except docker.errors.DockerException as exc:  # the SDK refused before the engine saw it (a bad context)
            out.put([Failed(f"{type(exc).__name__}: {exc}")])
        except (requests.exceptions.RequestException, OSError) as exc:
            out.put([Failed(f"lost the engine during the build ({type(exc).__name__}: {exc})", engine_lost=True)])
        except BaseException as exc:  # noqa: BLE001 - not the engine's words: raised again in the caller's thread
            out.put(exc)
        finally:
            out.put(_END)

    def _kill(self, container_id: str) -> None:
        with contextlib.suppress(docker.errors.APIError, requests.exceptions.RequestException):
            self._control.api.kill(container_id)

    def _look(self, killed: set[str]) -> Stopped | None:
        """The deadline and the watch: a Stopped event the first time either says stop; kill step containers."""
        cid = self.container
        event = None
        if self.stopped is None:
            if self._deadline is not None and time.monotonic() > self._deadline:
                event = Stopped("deadline", "", cid)
            elif cid is not None and self._watch is not None:
                why = self._watch(cid)
                if why:
                    event = Stopped("watch", why, cid)
        if (event or self.stopped) and cid is not None and cid not in killed:
            killed.add(cid)  # once stopped, every step container that still starts is killed too
            self._kill(cid)
        return event

    def __iter__(self) -> Iterator[BuildEvent]:
        if self._started:
            raise RuntimeError("a BuildStream can be read only once")
        self._started = True
        queue: Queue = Queue()
        cancelled = threading.Event()
        reader = threading.Thread(target=self._read, args=(queue, cancelled), daemon=True, name="careops-build")
        reader.start()
        watching = self._deadline is not None or self._watch is not None
        killed: set[str] = set()
        next_look = time.monotonic()
        stopped_at: float | None = None
        finished = False
        try:
            while True:
                now = time.monotonic()
                if watching and now >= next_look:
                    next_look = now + self._poll
                    event = self._look(killed)
                    if event is not None:
                        stopped_at = now
                        self._record(event)
                        yield event
                if stopped_at is not None and self._grace is not None and now - stopped_at > self._grace:
                    return  # the builder did not end after the stop: give up on it (its thread reads on)
                try:
                    item = queue.get(timeout=self._poll if watching else 1.0)
                except Empty:
                    continue
                if item is _END:
                    finished = True
                    return
                if isinstance(item, BaseException):
                    raise item
                for event in item:
                    self._record(event)
                    yield event
        finally:
            if not finished:  # left early: stop the build rather than let it run on unseen
                cancelled.set()
                if self.container is not None and self.container not in killed:
                    self._kill(self.container)


def stream_build(client: docker.DockerClient, *, deadline: float | None = None, watch: Watch | None = None,
                 control: docker.DockerClient | None = None, grace: float | None = None, poll: float = POLL,
                 **build_args: Any) -> BuildStream:
    """Start a classic-builder build: ``build_args`` go to ``client.api.build`` (``decode=True`` is set here).

    ``deadline`` (a ``time.monotonic()`` value) and ``watch`` stop the build as the module says, killing
    step containers through ``control`` (default: ``client``); after a stop the stream is read for at
    most ``grace`` more seconds (None: to its end). Iterate the result for events; nothing is sent to
    the engine before the first ``next()``.
    """
    if "decode" in build_args:
        raise TypeError("stream_build sets decode=True itself")
    return BuildStream(client, build_args, deadline=deadline, watch=watch, control=control, grace=grace, poll=poll)


__all__ = ["Aux", "BuildEvent", "BuildLine", "BuildStream", "Built", "CacheHit", "Failed", "ImageId", "Layer",
           "Step", "StepContainer", "Stopped", "Watch", "parse_chunk", "parse_line", "stream_build"]
