"""A grading worker (``careops worker``): Celery's prefork worker on one Docker engine.

Before it takes a task the worker makes sure its engine can grade: the grader image and the images live checks
start labs from are there (loaded from another engine with ``docker save | docker load`` when ``images_from``
names one and the ids differ, built offline like ``careops images build`` when missing), and the sandboxes of
graders that died on this engine are removed. Then it runs ``concurrency`` grading processes; each task grades one submission in fresh
sandboxes on this engine (``DOCKER_HOST`` is set to it, so live checks' labs run here too).
"""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

from careops import engine
from careops.errors import CareOpsError
from careops.grading.course import repo_root
from careops.grading.queue.app import (
    DEFAULT_REDELIVER_AFTER,
    QUEUE_NAME,
    QueueError,
    make_app,
    ping,
    shown,
)
from careops.grading.queue.tasks import COURSE_SETTING, KUBERNETES_SETTING
from careops.grading.sandbox import GRADER_LEARNER
from careops.images.catalog import (
    CATALOG,
    COURSE,
    GRADER_IMAGE,
    LABEL_COURSE,
)
from careops.lab import resources

LOAD_CHUNK = 4 * 1024**2


def image_id(client: docker.DockerClient, tag: str) -> str:
    """The id of ``tag`` on the engine, "" when it is not there."""
    try:
        return str(client.api.inspect_image(tag)["Id"])
    except docker.errors.ImageNotFound:
        return ""


def load_image(source: docker.DockerClient, target: docker.DockerClient, image: str, tag: str) -> float:
    """Copy the image ``image`` (an id) from one engine to another as ``tag`` (docker save | docker load,
    streamed); returns the seconds. By id, not by tag: a build that retags it meanwhile changes nothing here."""
    start = time.monotonic()
    for _ in target.api.load_image(source.api.get_image(image, chunk_size=LOAD_CHUNK)):
        pass
    repository, _, version = tag.rpartition(":")
    target.api.tag(image, repository, version)
    return time.monotonic() - start


#: what grading needs: the grader and every image a live check starts labs from (not workshop mode's images:
#: the hub, the learners' servers, the queue's own Redis)
GRADING_IMAGES = [spec for spec in CATALOG if not spec.optional.startswith("workshop")]


def course_images(client: docker.DockerClient) -> dict[str, str]:
    """Tag -> id of the images grading needs on an engine ("" for those it lacks)."""
    return {spec.tag: image_id(client, spec.tag) for spec in GRADING_IMAGES}


def ensure_course_images(client: docker.DockerClient, *, images_from: str | None = None,
                         progress: bool = True) -> str:
    """Make the images grading needs usable on ``client``'s engine; returns the grader image's id.

    The grader runs the sandboxes; live checks start labs from the lab and service images. With ``images_from``
    every course image that engine has is copied where the ids differ, so both engines grade with the same
    images. Without it, the images this engine has are used as they are (as local grading does) and the missing
    ones are built offline, as ``careops images build`` would.
    """
    if images_from:
        source = docker.DockerClient(base_url=images_from, timeout=600)
        try:
            want = {tag: found for tag, found in course_images(source).items() if found}
            if GRADER_IMAGE not in want:
                raise QueueError(f"the engine {images_from} has no {GRADER_IMAGE} to load from",
                                 fix="build it there first: make images (or careops images build grader)")
            loaded = False
            for tag, found in want.items():
                if image_id(client, tag) != found:
                    loaded = True
                    try:
                        seconds = load_image(source, client, found, tag)
                    except docker.errors.NotFound:
                        raise QueueError(f"{tag} ({found[7:19]}) was replaced on {images_from} while loading it",
                                         fix="start the worker again: it loads the new one") from None
                    if progress:
                        print(f"careops worker: loaded {tag} ({found[7:19]}) from {images_from} in {seconds:.0f} s",
                              file=sys.stderr, flush=True)
                if image_id(client, tag) != found:
                    raise QueueError(f"loading {tag} from {images_from} did not give image {found[7:19]}",
                                     fix="docker save it there and docker load it on the worker's engine by hand")
            if loaded:  # the course images the loaded ones replaced (none a container still uses)
                client.images.prune(filters={"dangling": True, "label": f"{LABEL_COURSE}={COURSE}"})
            return want[GRADER_IMAGE]
        finally:
            source.close()
    from careops.images import ensure_images

    missing = [spec for spec in GRADING_IMAGES if not image_id(client, spec.tag)]
    if [s for s in missing if not s.optional]:
        ensure_images([s.name for s in missing if not s.optional], client=client, progress=progress)
    for spec in (s for s in missing if s.optional):
        try:
            ensure_images([spec.name], client=client, progress=progress)
        except CareOpsError as exc:  # only the module that needs it is affected, as with careops images build
            print(f"careops worker: {spec.tag} not built, needed only by {spec.optional}: {exc.message}",
                  file=sys.stderr, flush=True)
    return image_id(client, GRADER_IMAGE)


def reclaim_leftovers(client: docker.DockerClient) -> int:
    """Remove the grading sandboxes on this engine whose grader process is gone (a worker killed mid-task)."""
    doomed = [r for r in resources.find(learner=GRADER_LEARNER, client=client) if r.leaked]
    doomed += [r for r in resources.find(client=client)
               if r.leaked and r.lab.startswith("grade-") and r.learner.startswith("g-")]
    if doomed:
        resources.remove(doomed, client=client)
    return len(doomed)


def prepare_engine(engine_url: str | None, *, images_from: str | None = None, progress: bool = True) -> str:
    """Point this process at ``engine_url`` (DOCKER_HOST), check it answers, ensure the grader image; its id."""
    if engine_url:
        os.environ["DOCKER_HOST"] = engine_url
    client = engine.connect()
    try:
        found = ensure_course_images(client, images_from=images_from, progress=progress)
        reclaim_leftovers(client)
        return found
    finally:
        client.close()


def run_worker(*, queue: str, engine_url: str | None = None, concurrency: int = 1, course_dir: Path | None = None,
               images_from: str | None = None, name: str | None = None,
               redeliver_after: float = DEFAULT_REDELIVER_AFTER, kubernetes: str | None = None,
               loglevel: str = "INFO") -> int:
    """Prepare the engine and run a Celery worker until it is stopped (Ctrl-C, SIGTERM); its exit code.

    ``kubernetes`` (a namespace): sandboxes are Jobs there (careops.grading.queue.kubernetes_job); the engine is
    still prepared for live checks when one answers.
    """
    if concurrency < 1:
        raise QueueError(f"a worker needs at least one grading process: got --concurrency {concurrency}",
                         fix="pass --concurrency 1 or more (one per core the engine's host can spare)")
    ping(queue)
    if kubernetes:
        from careops.grading.queue.kubernetes_job import KubernetesJobs

        KubernetesJobs(namespace=kubernetes).ensure_no_network()
        where = f"Kubernetes Jobs in namespace {kubernetes}"
    else:
        grader = prepare_engine(engine_url, images_from=images_from)
        where = f"engine {os.environ.get('DOCKER_HOST', 'found by careops')} (grader image {grader[7:19]})"
    app = make_app(queue, redeliver_after=redeliver_after)
    app.conf.update({COURSE_SETTING: str(Path(course_dir or repo_root()).resolve()), KUBERNETES_SETTING: kubernetes})
    hostname = name or f"careops-{os.getpid()}@{socket.gethostname()}"
    print(f"careops worker {hostname}: grades on {where}, {concurrency} at once, queue {shown(queue)}",
          file=sys.stderr, flush=True)
    worker: Any = app.Worker(hostname=hostname, concurrency=concurrency, pool="prefork", loglevel=loglevel,
                             queues=[QUEUE_NAME], optimization="fair", without_mingle=True, without_gossip=True)
    worker.start()
    return int(worker.exitcode or 0)
