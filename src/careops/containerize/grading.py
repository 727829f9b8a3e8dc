"""Setups for the grader's live checks of module 2 (for ``careops.grading.live``'s registry).

The grader runs a live test cell on the host with the names it uses bound by
a setup ``fn(lab, artifacts) -> names``; these are module 2's. Register them
in careops/grading/live.py with::

    from careops.containerize import grading as _m2
    live_check("containerize.live")(_m2.setup_live)
    live_check("containerize.facade_bridge")(_m2.setup_facade_bridge)
"""
from __future__ import annotations

import weakref
from typing import Any

from careops.containerize.build import build_learner_image
from careops.containerize.live import run_service
from careops.errors import LabError

FACADE_IMAGE = "careops/fhir-facade:latest"


class LearnerBoundChecks:
    """``careops.checks.containerize`` with the grader's learner id bound into the live check.

    The live cell opens its own lab; bound to the graded learner's id, two submissions graded at the same
    time never share (and never reclaim) each other's lab or images.
    """

    def __init__(self, learner: str) -> None:
        self.learner = learner

    def live(self, dockerfile: str, dockerignore: str | None) -> Any:
        from careops.checks import containerize

        return containerize.live(dockerfile, dockerignore, learner=self.learner)

    def __getattr__(self, name: str) -> Any:
        from careops.checks import containerize

        return getattr(containerize, name)


def setup_live(lab: Any, artifacts: dict[str, str]) -> dict[str, Any]:
    """Exercise 3: the cell builds and runs the artifacts itself; it needs their text and a learner-bound ``check``."""
    return {"adt_dockerfile": artifacts["adt_dockerfile"], "adt_dockerignore": artifacts.get("adt_dockerignore"),
            "check": LearnerBoundChecks(lab.learner)}


def setup_facade_bridge(lab: Any, artifacts: dict[str, str]) -> dict[str, Any]:
    """Exercise 5: the learner's image as ``adt`` and the course's façade in front of it, in the grader's lab.

    The learner image is removed when the lab object goes away (or at exit), whatever the test did.
    """
    image = build_learner_image(artifacts["adt_dockerfile"], artifacts.get("adt_dockerignore"), learner=lab.learner,
                                progress=False, client=lab.client)
    if not image.ok:
        raise LabError(f"your Dockerfile does not build: {image.reason}", fix=image.hint)
    weakref.finalize(lab, image.remove)
    adt = run_service(lab, str(image.tag))
    adt.wait_until("healthy", timeout=60)
    facade = lab.run(FACADE_IMAGE, name="fhir-facade", ports=[2575, 8080], env={"FACADE_UPSTREAM": "adt:2575"})
    facade.wait_until("healthy", timeout=60)
    return {"adt": adt, "facade": facade, "adt_dockerfile": artifacts["adt_dockerfile"],
            "adt_dockerignore": artifacts.get("adt_dockerignore")}
