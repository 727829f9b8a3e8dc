"""Module 6's reference answers (trusted: read on the instructor's host only, never shipped to learners).

The notebook's solution artifacts (``patient-data/*``; a test keeps each equal to the notebook's solution cell),
the hidden role x resource cases of exercise 2, the hidden sign-off cases of exercise 4, and exercise 5's hidden
audit log with its answer worked out by hand. Loaded with ``careops.grading.references.load("patient_data")``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from careops.checks import patient_data as check

HERE = Path(__file__).with_name("patient-data")

#: the notebook's artifact cells and the files holding their solutions
SOLUTION_FILES = {"deployment": "deployment.yaml", "access_policy": "access.yaml", "rotation": "rotation.yaml",
                  "signoff_policy": "signoff.rego"}


def solution_artifact(name: str) -> str:
    """A solution artifact by its cell's name (deployment, access_policy, rotation, signoff_policy)."""
    if name not in SOLUTION_FILES:
        raise ValueError(f"no solution artifact {name!r}: one of {sorted(SOLUTION_FILES)}")
    return (HERE / SOLUTION_FILES[name]).read_text(encoding="utf-8")


#: exercise 2's hidden cases, same form as check.PRACTICE_CASES (patients 0, 2, 4 on 4B; 1, 3, 5 on 5A)
ACCESS_CASES: list[tuple[str, str | None, dict[str, str], int, str, int]] = [
    ("clerk, own ward", "ward-clerk", {"ward": "5A"}, 3, "", 200),
    ("clerk, other ward", "ward-clerk", {"ward": "5A"}, 2, "", 403),
    ("clerk tries break-glass", "ward-clerk", {"ward": "5A"}, 2, "emergency", 403),
    ("nurse, break-glass without a reason", "ward-nurse", {"ward": "5A"}, 4, " ", 403),
    ("portal, someone else's record", "patient-portal", {"patient": "#2"}, 3, "", 403),
    ("auditor reads a patient", "records-auditor", {"ward": "4B"}, 0, "", 403),
    ("a role nobody defined", "porter", {"ward": "4B"}, 0, "", 403),
]

#: exercise 4's hidden cases: (name, input, should sign)
SIGNOFF_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("author in other letters", check.signoff_input("J.Rivera", "j.rivera"), False),
    ("empty approver list", check.signoff_input("a.khan", "j.rivera", approvers=()), False),
    ("review meaning", check.signoff_input("a.khan", "m.ito", meaning="review"), True),
    ("responsibility meaning", check.signoff_input("a.khan", "j.rivera", meaning="responsibility"), True),
    ("no printed name", check.signoff_input("a.khan", "m.ito", name="  "), False),
    ("author on the list signs own", check.signoff_input("m.ito", "m.ito"), False),
]


def outside_ward(audit: pd.DataFrame, staff: pd.DataFrame) -> pd.DataFrame:
    """Exercise 5's reference: every answered read by staff of a patient outside their ward, in log order."""
    reads = audit[(audit["action"] == "read") & (audit["outcome"] == "200")].copy()
    reads["patient"] = reads["resource"].str.removeprefix("Patient/")
    reads["patient_ward"] = reads["details"].map(lambda d: d.get("patient_ward", ""))
    reads["break_glass"] = reads["details"].map(lambda d: bool(d.get("break_glass", False)))
    joined = reads.merge(staff.rename(columns={"ward": "staff_ward"}), on="actor", how="inner")
    joined = joined.sort_values("seq")
    out = joined[joined["staff_ward"] != joined["patient_ward"]]
    return out[check.REVIEW_COLUMNS].reset_index(drop=True)


def review_case() -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[Any, ...]]]:
    """Exercise 5's hidden audit log, its roster, and the right rows worked out by hand."""
    rows = [  # actor, resource, outcome, purpose, patient ward, break-glass, action
        ("n.ahmed", "Patient/pt-c1", "200", "treatment", "5A", False, "read"),      # 4B nurse on 5A: listed
        ("n.ahmed", "Patient/pt-c1", "200", "treatment", "5A", False, "update"),    # not a read
        ("d.lee", "Patient/pt-c2", "200", "break-glass", "4B", True, "read"),       # 6C on 4B, glass: listed
        ("d.lee", "Patient/pt-c3", "403", "treatment", "4B", False, "read"),        # refused: nothing seen
        ("visitor", "Patient/pt-c2", "200", "treatment", "4B", False, "read"),      # not on the roster
        ("c.olsen", "Patient/pt-c4", "200", "treatment", "5A", False, "read"),      # own ward
        ("c.olsen", "Patient/pt-c5", "200", "treatment", "", False, "read"),        # no ward known: listed
    ]
    frame = check.audit_frame([(a, "staff", res, o, p, w, g, act) for a, res, o, p, w, g, act in rows],
                              start="2026-12-02T10:00Z")
    staff = pd.DataFrame({"actor": ["n.ahmed", "d.lee", "c.olsen"], "ward": ["4B", "6C", "5A"]})
    answer = [("n.ahmed", "pt-c1", "4B", "5A", "200", False), ("d.lee", "pt-c2", "6C", "4B", "200", True),
              ("c.olsen", "pt-c5", "5A", "", "200", False)]
    return frame, staff, answer
