"""careops.containerize.build and .grade: bad Dockerfiles end with a reason, a score, and nothing left behind.

Every case goes through the grader's own entry point (``grade``) on a real
engine: the build without network, with a time limit and a disk budget; the
run in a Lab. After each one, no image, step container, container, volume or
network of the run may remain.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import docker
import pytest

from careops import engine
from careops.containerize.build import (
    LABEL_BUILD,
    LearnerBuild,
    build_learner_image,
    leftover_images,
)
from careops.containerize.grade import grade
from careops.lab import find, reset

pytestmark = pytest.mark.docker

SOLUTION = Path(__file__).resolve().parents[1] / "grading" / "references" / "containerize"
GOOD = (SOLUTION / "Dockerfile").read_text()
IGNORE = (SOLUTION / ".dockerignore").read_text()
BASE = "FROM careops/base:bookworm\n"


@pytest.fixture
def learner() -> str:
    who = f"t-{uuid.uuid4().hex[:8]}"
    yield who
    reset(None, who)


def assert_nothing_left(learner: str, build: LearnerBuild | None) -> None:
    cl = engine.client()
    assert leftover_images(learner) == []
    assert cl.images.list(filters={"label": f"{LABEL_BUILD}"}, name=f"careops-learner/adt:{learner}*") == []
    if build is not None:
        for image_id in build.created:
            with pytest.raises(docker.errors.ImageNotFound):
                cl.api.inspect_image(image_id)
        for cid in build.step_containers:
            with pytest.raises(docker.errors.NotFound):
                cl.api.inspect_container(cid)
    assert find(None, learner) == []  # no lab container, network or volume


# Dockerfiles the build refuses or that fail while building: (id, dockerfile, reason words)
BUILD_FAILS = [
    ("not-parseable", BASE + "RUNN echo hi\n", "cannot be read: line 2: unknown instruction"),
    ("missing-base", "FROM python:3.11-slim\nRUN true\n", "base image python:3.11-slim is not on this machine"),
    ("arg-base-without-default", "ARG BASE\nFROM ${BASE}\n", "build argument without a default"),
    ("copy-from-remote-image", BASE + "COPY --from=busybox:1.36 /bin/busybox /bin/\n",
     "base image busybox:1.36 is not on this machine"),
    ("add-url", BASE + "ADD https://example.org/tool.tgz /opt/\n", "ADD of a URL"),
    ("loops-forever", BASE + "RUN while true; do :; done\n", "did not finish within the build's 8 s"),
    ("fills-the-disk", BASE + "RUN dd if=/dev/zero of=/filler bs=1M count=4000\n", "over the build's disk budget"),
    ("tries-the-network", BASE + "RUN python3 -c \"import urllib.request; urllib.request.urlopen('http://deb.debian.org/')\"\n",
     "tried to use the network, and builds have none"),
    ("copies-a-missing-file", BASE + "RUN echo step > /step\nCOPY adt_server.py /app/\n",
     "names a file that is not in the build context"),
    ("run-fails", BASE + "RUN echo about to fail && exit 3\n", "returned a non-zero code: 3"),
]


@pytest.mark.parametrize("name, dockerfile, reason", BUILD_FAILS, ids=[c[0] for c in BUILD_FAILS])
def test_a_broken_dockerfile_gets_a_reason_a_score_and_leaves_nothing(learner, name, dockerfile, reason) -> None:
    sub = grade(dockerfile, IGNORE, learner=learner, timeout=8)
    assert sub.build is not None and not sub.build.ok
    assert reason in sub.build.reason, sub.build.reason
    assert sub.build.hint
    assert sub.score < sub.max_score and not sub.reports["live"].passed
    assert any(reason in r for r in sub.reasons), sub.reasons
    assert sub.seconds < 60  # the time limit holds (the loop case is bounded by timeout=8 plus clean-up)
    assert_nothing_left(learner, sub.build)


# Dockerfiles that build, but break a rule the static, security or live checks catch
RULE_FAILS = [
    ("runs-as-root", GOOD.replace("USER 10001:10001", "USER root"), IGNORE,
     ["static: DF03", "security: course policy POL-1", "live: the image's default user is not root"]),
    ("shell-form-cmd", GOOD.replace('CMD ["python3", "/app/adt_service.py"]', "CMD python3 /app/adt_service.py")
     .replace('ENTRYPOINT ["tini", "--"]\n', ""), IGNORE,
     ["static: DF08", "security: hadolint", "live: SIGTERM during traffic stops the service cleanly"]),
    ("secret-in-env", GOOD.replace("ENV ADT_DB", "ENV ADT_ADMIN_PASSWORD=Zq8vR2kLmN4pX7sT1wY9 ADT_DB"), IGNORE,
     ["static: DF10", "security: course policy POL-4", "live: no secret in the image's layers, history or ENV"]),
    ("no-healthcheck", GOOD.split("HEALTHCHECK")[0] + 'ENTRYPOINT ["tini", "--"]\nCMD ["python3", "/app/adt_service.py"]\n',
     IGNORE, ["static: DF04", "security: course policy POL-9", "live: the image has a HEALTHCHECK"]),
    ("copies-everything-without-dockerignore",
     GOOD.replace("COPY --chown=root:root adt_service.py /app/adt_service.py", "COPY . /app/"), None,
     ["static: DF12", "live: no secret in the image's layers", "live: no real-looking patient data"]),
    ("over-the-size-budget", GOOD.replace("COPY --chown", "RUN head -c 40000000 /dev/urandom > /opt/blob\nCOPY --chown"),
     IGNORE, ["live: the image adds at most 25 MiB to its base"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, dockerfile, ignore, reasons", RULE_FAILS, ids=[c[0] for c in RULE_FAILS])
def test_a_rule_breaking_dockerfile_loses_exactly_those_points(learner, name, dockerfile, ignore, reasons) -> None:
    sub = grade(dockerfile, ignore, learner=learner)
    assert sub.score < sub.max_score
    for reason in reasons:
        assert any(r.startswith(reason) for r in sub.reasons), (reason, sub.reasons)
    assert_nothing_left(learner, sub.build)


@pytest.mark.slow
def test_the_solution_gets_full_marks_and_leaves_nothing(learner) -> None:
    sub = grade(GOOD, IGNORE, learner=learner)
    assert sub.score == sub.max_score, str(sub)
    assert sub.build is not None and sub.build.ok and sub.build.removed
    assert_nothing_left(learner, sub.build)


def test_a_warm_build_reuses_the_cache_and_remove_is_idempotent(learner) -> None:
    with build_learner_image(GOOD, IGNORE, learner=learner, progress=False) as cold:
        assert cold.ok and cold.tag and leftover_images(learner) == [cold.tag]
        with build_learner_image(GOOD, IGNORE, learner=learner, progress=False) as warm:
            assert warm.ok and warm.cached_steps >= warm.steps - 2  # only the per-build label step is new
    cold.remove()
    assert_nothing_left(learner, cold)


@pytest.mark.slow
def test_grader_setups_bind_what_the_live_cells_use(learner) -> None:
    """The setups careops.grading.live runs for module 2's live cells, with the solution's artifacts."""
    from careops.checks import containerize as check
    from careops.checks.containerize import setup_facade_bridge, setup_live
    from careops.lab import Lab

    artifacts = {"adt_dockerfile": GOOD, "adt_dockerignore": IGNORE}
    with Lab("grade-m2", learner=learner, reclaim=False) as lab:
        live_names = setup_live(lab, artifacts)
        assert {k: live_names[k] for k in artifacts} == artifacts
        bound = live_names["check"]
        assert bound.learner == learner and bound.dockerfile_static is check.dockerfile_static
        names = setup_facade_bridge(lab, artifacts)
        assert check.facade_bridge(names["adt"], names["facade"]).passed
        del names
    import gc

    del lab
    gc.collect()
    assert_nothing_left(learner, None)
