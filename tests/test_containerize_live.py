"""careops.containerize.live: each live criterion fails on an image that breaks it (the solution passes in
test_containerize_build), run for real in a Lab."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from careops.containerize.build import build_learner_image
from careops.containerize.live import data_folder, live_report
from careops.lab import find, reset

pytestmark = [pytest.mark.docker, pytest.mark.slow]
SOLUTION = Path(__file__).resolve().parents[1] / "grading" / "references" / "containerize"
GOOD = (SOLUTION / "Dockerfile").read_text()
IGNORE = (SOLUTION / ".dockerignore").read_text()

CASES = [
    ("database-outside-the-volume",
     GOOD.replace("install -d -o 10001 -g 10001 -m 0750 /data", "install -d -o 10001 -g 10001 -m 0750 /data /srv/adt")
         .replace("ADT_DB=/data/adt.db", "ADT_DB=/srv/adt/adt.db"),
     "a new container on the same volume still has every admitted patient"),
    ("http-on-loopback-only", GOOD.replace("ADT_HTTP_HOST=0.0.0.0", "ADT_HTTP_HOST=127.0.0.1"),
     "GET /health from outside answers"),
    ("mllp-on-loopback-only", GOOD.replace("ADT_HOST=0.0.0.0", "ADT_HOST=127.0.0.1"),
     "admissions sent over MLLP from outside get AA acknowledgements"),
    ("log-to-a-file", GOOD.replace("ADT_LOG=-", "ADT_LOG=/data/adt.log"),
     "the service logs to stdout"),
]


@pytest.mark.parametrize("name, dockerfile, failing", CASES, ids=[c[0] for c in CASES])
def test_a_live_criterion_fails_on_an_image_that_breaks_it(name: str, dockerfile: str, failing: str) -> None:
    learner = f"t-{uuid.uuid4().hex[:8]}"
    try:
        with build_learner_image(dockerfile, IGNORE, learner=learner, progress=False) as image:
            assert image.ok, image.reason
            report = live_report(image, learner=learner)
        failed = [c.message for c in report.failures]
        assert any(m.startswith(failing) for m in failed), str(report)
        assert report.criteria[0].passed  # it built
        assert find(None, learner) == []  # the lab is closed whatever failed
    finally:
        reset(None, learner)


def test_the_volume_is_only_where_the_image_declares_one() -> None:
    learner = f"t-{uuid.uuid4().hex[:8]}"
    no_volume = GOOD.replace('VOLUME ["/data"]\n', "")
    with build_learner_image(GOOD, IGNORE, learner=learner, progress=False) as good, \
            build_learner_image(no_volume, IGNORE, learner=learner, progress=False) as bare:
        assert data_folder(good.tag) == "/data"
        assert data_folder(bare.tag) is None
