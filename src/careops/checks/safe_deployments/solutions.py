"""The notebook's solution artifacts (labs/safe-deployments/solution/): what the benches and tests deploy.

A test keeps each file equal to the notebook's solution cell, so the benches and
the live-check tests deploy exactly what a learner is expected to write. Not
imported by the module's checks: a learner's ``check`` namespace does not offer
them.
"""
from __future__ import annotations

from careops.errors import RolloutError

#: the notebook's artifact cells and the files holding their solutions
SOLUTION_FILES = {"router_config": "router", "blue_green_rollout": "blue-green", "canary_rollout": "canary",
                  "rollback_rollout": "rollback", "rolling_rollout": "rolling"}


def solution_artifact(name: str) -> str:
    """A solution artifact by file name ("router", "blue-green", "canary", "rollback", "rolling")."""
    from careops.paths import lab_asset

    if name not in SOLUTION_FILES.values():
        raise RolloutError(f"no solution artifact {name!r}", fix=f"one of {sorted(SOLUTION_FILES.values())}")
    return lab_asset(f"safe-deployments/solution/{name}.yaml").read_text()


__all__ = ["SOLUTION_FILES", "solution_artifact"]
