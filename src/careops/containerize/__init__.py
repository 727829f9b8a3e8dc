"""Live grading of learner Dockerfiles: sandboxed builds, live checks in a Lab, layer scans, scoring."""
from __future__ import annotations

from careops.containerize.build import (
    LearnerBuild,
    build_learner_image,
    leftover_images,
    remove_leftover_images,
)

__all__ = ["LearnerBuild", "build_learner_image", "leftover_images", "remove_leftover_images"]
