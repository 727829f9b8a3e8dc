"""`careops workspace sync`: bring new learner notebooks into workspace/, keep the learner's work."""
from __future__ import annotations

from careops import workspace


def sync_main() -> int:
    """Copy what build/release has and workspace/ lacks; print what was added and kept."""
    report = workspace.sync()
    print(report)
    return 0
