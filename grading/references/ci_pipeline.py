"""Module 1's reference answers (trusted: read on the instructor's host only, never shipped to learners).

Loaded with ``careops.grading.references.load("ci_pipeline")`` by the notebook's hidden tests (which run in
trusted code on the host) and by the toolkit's own tests.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

#: The reference pipeline of exercise 2 (lint -> test -> phi-scan -> build-image -> deploy-staging).
WORKFLOW = Path(__file__).with_name("ci-pipeline") / "ci.yml"


def change_record(frame: pd.DataFrame) -> pd.DataFrame:
    """Exercise 5: one row per approval decision, the agreed columns, oldest first."""
    approvals = frame[frame["action"] == "pipeline.approval"]
    out = pd.DataFrame({
        "at": approvals["at"], "run_id": approvals["details"].map(lambda d: d.get("run_id")),
        "environment": approvals["details"].map(lambda d: d.get("environment")), "approver": approvals["actor"],
        "decision": approvals["outcome"], "note": approvals["details"].map(lambda d: d.get("note", "")),
    })
    return out.sort_values("at").reset_index(drop=True)


def hidden_change_record_cases() -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """The hidden audit logs of exercise 5 with their right records: two other logs, one of them shuffled."""
    from careops.checks.ci_pipeline import sample_audit_frame

    frames = [sample_audit_frame(3), sample_audit_frame(11).sample(frac=1, random_state=1)]
    return [(f, change_record(f)) for f in frames]
