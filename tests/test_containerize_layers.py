"""careops.containerize.layers: a real image's own layers, history and ENV scanned for secrets and PHI."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from careops.containerize.build import build_learner_image
from careops.containerize.layers import scan_image

pytestmark = pytest.mark.docker
SOLUTION = Path(__file__).resolve().parents[1] / "grading" / "references" / "containerize"
GOOD = (SOLUTION / "Dockerfile").read_text()
IGNORE = (SOLUTION / ".dockerignore").read_text()


def test_clean_image_and_a_leaky_one() -> None:
    learner = f"t-{uuid.uuid4().hex[:8]}"
    with build_learner_image(GOOD, IGNORE, learner=learner, progress=False) as clean:
        result = scan_image(clean.tag, clean.base_image)
        assert result.ok and result.layers >= 1 and result.files >= 1
    # a file deleted in a later step is still in its layer; an ARG value is in the history
    leaky = GOOD.replace("COPY --chown=root:root adt_service.py /app/adt_service.py",
                         "COPY . /app/\nRUN rm -rf /app/secrets /app/test-data") \
                .replace("FROM careops/base:bookworm", "FROM careops/base:bookworm\nARG GH=ghp_abcdefghijklmnopqrstuvwxyz0123456789\nRUN echo $GH > /dev/null")
    with build_learner_image(leaky, None, learner=learner, progress=False) as bad:
        assert bad.ok, bad.reason
        result = scan_image(bad.tag, bad.base_image)
    assert any("secrets/adt-admin.env" in s for s in result.secrets)
    assert any(s.startswith("history.sh") and "GitHub Token" in s for s in result.secrets)
    assert {p.split(": ")[1].split()[0] for p in result.phi} >= {"ssn", "phone"}
    assert "1120" not in " ".join(result.phi)  # masked
