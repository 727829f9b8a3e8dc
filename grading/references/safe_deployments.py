"""Module 3's reference answers (trusted: read on the instructor's host only, never shipped to learners).

The notebook's solution artifacts (``safe-deployments/*.yaml``; a test keeps each equal to the notebook's
solution cell, so benches and tests deploy exactly what a learner is expected to write), the right rows of the
graded recorded deployments, worked out by hand next to their construction in
``careops.checks.safe_deployments.recorded.make_deployment_record``, and the right change records of the
hidden audit logs. Loaded with ``careops.grading.references.load("safe_deployments")``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from careops.checks.safe_deployments import recorded

HERE = Path(__file__).with_name("safe-deployments")

#: the notebook's artifact cells and the files holding their solutions
SOLUTION_FILES = {"router_config": "router", "blue_green_rollout": "blue-green", "canary_rollout": "canary",
                  "rollback_rollout": "rollback", "rolling_rollout": "rolling"}


def solution_artifact(name: str) -> str:
    """A solution artifact by file name ("router", "blue-green", "canary", "rollback", "rolling")."""
    if name not in SOLUTION_FILES.values():
        raise ValueError(f"no solution artifact {name!r}: one of {sorted(SOLUTION_FILES.values())}")
    return (HERE / f"{name}.yaml").read_text(encoding="utf-8")


#: graded case -> the right row (exercise 5b's hidden recorded deployments)
GRADED_ROWS: dict[str, dict[str, float]] = {
    # + the failed request exactly at start and the failed message exactly at end; +9.99 and +20.01 are outside
    "outside the window": {"seconds": 10.0, "http_requests": 102, "failed_requests": 1, "failed_messages": 1,
                           "p95_ms": 10.0, "side_by_side_seconds": 0.05},
    # v2-faulty got every other request in +12.0 .. +14.9 and failed +12.0, +12.4, ... +14.8 (8); its first
    # answer is at +12.2 and v1 answers until +19.9
    "rolled back": {"seconds": 10.0, "http_requests": 100, "failed_requests": 8, "failed_messages": 1,
                    "p95_ms": 10.0, "side_by_side_seconds": 7.7},
    "never served": {"seconds": 10.0, "http_requests": 50, "failed_requests": 0, "failed_messages": 0,
                     "p95_ms": 10.0, "side_by_side_seconds": 0.0},
    "nothing in the window": {"seconds": 10.0, "http_requests": 0, "failed_requests": 0, "failed_messages": 0,
                              "p95_ms": 0.0, "side_by_side_seconds": 0.0},
    # the practice cases count too
    "slow tail": recorded.PRACTICE_ROW_ANSWERS["slow tail"],
    "stop-and-replace": recorded.PRACTICE_ROW_ANSWERS["stop-and-replace"],
}


def change_record(seed: int) -> list[dict[str, Any]]:
    """The right answer for ``recorded.sample_change_log(seed)``, written out from the same list of deployments."""
    out = []
    for _seq, at, actor, strategy, image, change, approver, outcome, rolled_back in recorded._deployments(seed):
        started, ended = recorded._started_ended(at)
        out.append({"change_id": change, "deployed_by": actor, "approved_by": approver, "strategy": strategy,
                    "image": image, "started": started, "ended": ended, "outcome": outcome,
                    "rolled_back": rolled_back})
    return out


def change_record_cases(seeds: tuple[int, ...] = (3, 4)) -> list[tuple[str, Any, list[dict[str, Any]]]]:
    """Exercise 6's hidden audit logs: (label, log, right record) per seed."""
    return [(f"audit log #{seed}", recorded.sample_change_log(seed), change_record(seed)) for seed in seeds]
