"""careops.dockerops: the one build-stream reader and the always-removed container.

The parser is tested on chunks captured from real builds (tests/fixtures/engine/build_chunks.json);
the stream, its time limit, its watch and tracked_container on the real engine, with the local base image.
"""
from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from careops import engine
from careops.dockerops import (Aux, BuildLine, Built, CacheHit, Failed, ImageId, Layer, Step, StepContainer, Stopped,
                               stream_build, tracked_container)
from careops.dockerops.build import parse_chunk

CHUNKS = json.loads((Path(__file__).parent / "fixtures" / "engine" / "build_chunks.json").read_text())
BASE = "careops/base:bookworm"
LABEL = "org.careops.test-dockerops"


def events_of(case: str) -> list:
    return [e for chunk in CHUNKS[case] for e in parse_chunk(chunk)]


# -- parsing (canned engine chunks) -------------------------------------------------------
def test_a_fresh_build_is_steps_step_containers_layers_and_the_image_id() -> None:
    events = events_of("ok")
    steps = [e for e in events if isinstance(e, Step)]
    assert [(s.number, s.total, s.instruction) for s in steps] == [
        (1, 5, "FROM careops/base:bookworm"), (2, 5, "LABEL x=1"), (3, 5, "RUN echo hello-step && echo second line"),
        (4, 5, "COPY a.txt /a.txt"), (5, 5, "LABEL org.careops.test=capture")]
    assert str(steps[2]) == "3/5 (RUN echo hello-step && echo second line)"
    assert [e.container_id for e in events if isinstance(e, StepContainer)] == [
        "d28ac94d8057", "d36e60cecd86", "b6885d4435a1"]
    assert [e.image_id for e in events if isinstance(e, Layer)] == [
        "1568b34d7194", "b831678403ec", "77e14e272be6", "c9bcf72007a4", "7362a6930884"]
    assert [e for e in events if isinstance(e, ImageId)] == [
        ImageId("sha256:7362a6930884089d7aa9435c893478130d7c4e36a3f00cf488dab0799103a1a7")]
    assert [e for e in events if isinstance(e, Built)] == [Built("Successfully built 7362a6930884", "7362a6930884")]
    plain = [e.text for e in events if type(e) is BuildLine]
    assert plain[:3] == ["Removing intermediate container d28ac94d8057", "hello-step", "second line"]
    assert not any(isinstance(e, (Failed, CacheHit, Aux)) for e in events)
    assert all(e.text.strip() for e in events if isinstance(e, BuildLine))  # the lone "\n" chunks are dropped


def test_a_cached_build_says_so_for_every_step_after_from() -> None:
    events = events_of("ok_cached")
    assert sum(isinstance(e, CacheHit) for e in events) == 4
    assert not any(isinstance(e, StepContainer) for e in events)


@pytest.mark.parametrize("case, message, code", [
    ("run_fails", "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3", 3),
    ("killed_step", "The command '/bin/sh -c echo started && sleep 60' returned a non-zero code: 137", 137),
    ("copy_missing", "COPY failed: file not found in build context or excluded by .dockerignore: stat missing.txt: "
                     "file does not exist", None),
    ("no_base", 'Get "https://registry.example.org/v2/": dial tcp: lookup registry.example.org on 192.0.2.53:53: '
                "no such host", None),
])
def test_a_failure_is_the_builders_message_and_detail(case: str, message: str, code: int | None) -> None:
    failed = [e for e in events_of(case) if isinstance(e, Failed)]
    assert len(failed) == 1 and failed[0].message == message and failed[0].detail.get("code") == code
    assert not failed[0].engine_lost
    assert not any(isinstance(e, (ImageId, Built)) for e in events_of(case))


def test_an_error_without_detail_and_an_aux_without_id() -> None:
    assert parse_chunk({"error": "no detail"}) == [Failed("no detail", {})]
    assert parse_chunk({"aux": {"Digest": "sha256:0"}}) == [Aux({"Digest": "sha256:0"})]
    assert parse_chunk({"stream": " ---> Using cache\n ---> 77e14e272be6\n"}) == [
        CacheHit(" ---> Using cache"), Layer(" ---> 77e14e272be6", "77e14e272be6")]


# -- the stream on the real engine -------------------------------------------------------
def context(dockerfile: str, **files: bytes) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def cl() -> docker.DockerClient:
    client = engine.client()
    yield client
    for img in client.images.list(filters={"label": LABEL}):
        for ref in img.tags or [img.id]:
            try:
                client.api.remove_image(ref, force=True)
            except docker.errors.APIError:
                pass


def build_args(dockerfile: str, **files: bytes) -> dict:
    return dict(fileobj=context(dockerfile, **files), custom_context=True, rm=True, forcerm=True, pull=False,
                network_mode="none", labels={LABEL: uuid.uuid4().hex[:8]})


@pytest.mark.docker
def test_a_real_build_from_the_local_base_keeps_the_record(cl: docker.DockerClient) -> None:
    marker = uuid.uuid4().hex
    build = stream_build(cl, **build_args(f"FROM {BASE}\nCOPY note.txt /note.txt\nRUN echo {marker}\n",
                                          **{"note.txt": b"SYN-0001\n"}))
    events = list(build)
    assert build.ok and build.error == "" and build.stopped is None
    assert [s.number for s in events if isinstance(s, Step)] == [1, 2, 3, 4] and build.steps == 4
    assert build.image_id.startswith("sha256:") and cl.api.inspect_image(build.image_id)["Id"] == build.image_id
    assert marker in build.log and len(build.step_containers) >= 1 and build.container is None
    assert build.layers[-1] == build.image_id[7:19] and build.cached == 0
    again = stream_build(cl, **build_args(f"FROM {BASE}\nCOPY note.txt /note.txt\nRUN echo {marker}\n",
                                          **{"note.txt": b"SYN-0001\n"}))
    list(again)
    assert again.ok and again.cached == 2 and len(again.step_containers) == 1  # only the new LABEL step runs
    with pytest.raises(RuntimeError, match="read only once"):
        list(build)


@pytest.mark.docker
def test_a_failed_real_build_has_the_step_and_the_error(cl: docker.DockerClient) -> None:
    build = stream_build(cl, **build_args(f"FROM {BASE}\nRUN echo about to fail && exit 3\n"))
    failed = [e for e in build if isinstance(e, Failed)]
    assert not build.ok and failed and build.error.endswith("returned a non-zero code: 3")
    assert build.step is not None and build.step.number == 2 and build.step_text().startswith("2/3 (RUN echo")
    assert "about to fail" in build.log and build.image_id == ""


@pytest.mark.docker
def test_the_deadline_kills_the_running_step_and_says_so(cl: docker.DockerClient) -> None:
    started = time.monotonic()
    build = stream_build(cl, deadline=started + 3, **build_args(f"FROM {BASE}\nRUN echo looping; sleep 300\n"))
    stops = [e for e in build if isinstance(e, Stopped)]
    assert time.monotonic() - started < 30, "the killed step ends the build at once"
    assert len(stops) == 1 and stops[0].cause == "deadline" and stops[0].container_id in build.step_containers
    assert not build.ok and "returned a non-zero code: 137" in build.error
    with pytest.raises(docker.errors.NotFound):
        cl.api.inspect_container(stops[0].container_id)  # forcerm: the builder removed the killed step's container


@pytest.mark.docker
def test_a_watch_stops_the_build_with_its_reason(cl: docker.DockerClient) -> None:
    seen: list[str] = []

    def watch(container_id: str) -> str | None:
        seen.append(container_id)
        return "over the test's budget" if len(seen) >= 2 else None

    build = stream_build(cl, watch=watch, poll=0.2, **build_args(f"FROM {BASE}\nRUN sleep 300\n"))
    stops = [e for e in build if isinstance(e, Stopped)]
    assert [(s.cause, s.message) for s in stops] == [("watch", "over the test's budget")]
    assert set(seen) == {stops[0].container_id} and build.stopped == stops[0] and not build.ok


@pytest.mark.docker
def test_leaving_the_loop_early_stops_the_build(cl: docker.DockerClient) -> None:
    build = stream_build(cl, **build_args(f"FROM {BASE}\nRUN echo waiting; sleep 300\n"))
    for event in build:
        if isinstance(event, StepContainer):
            running = event.container_id
            break
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if not cl.api.inspect_container(running)["State"]["Running"]:
                break
        except docker.errors.NotFound:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the step container still runs after the loop was left")


@pytest.mark.docker
def test_tracked_container_is_removed_after_success_and_after_an_error(cl: docker.DockerClient) -> None:
    with tracked_container(cl, BASE, ["sh", "-c", "echo SYN-0002"], network_mode="none",
                           labels={LABEL: "tracked"}) as c:
        c.start()
        assert c.wait(timeout=30)["StatusCode"] == 0 and c.logs() == b"SYN-0002\n"
    with pytest.raises(docker.errors.NotFound):
        cl.api.inspect_container(c.id)
    with pytest.raises(ZeroDivisionError):
        with tracked_container(cl, BASE, ["true"], labels={LABEL: "tracked"}) as failing:
            1 / 0
    with pytest.raises(docker.errors.NotFound):
        cl.api.inspect_container(failing.id)
    with pytest.raises(docker.errors.ImageNotFound):
        with tracked_container(cl, "careops/no-such-image:never", ["true"]):
            pass
