"""Module 3's recorded data: traffic windows, deployments and audit logs whose right answers are known.

The learner's Python in module 3 (the canary analysis, a deployment's row, the
change record) is graded on these recordings, in the shape careops.traffic and
careops.audit produce them. Every right answer is written out here by hand,
next to the construction it was worked out from -- never computed by a
reference the learner could call. Only the practice cases' answers are here; the graded cases' answers live
with the grader (grading/references/safe_deployments.py, read on the instructor's host), and this module only
builds their inputs.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from careops.rollout.drills import V2, V2_FAULTY

# -- exercise 3: canary traffic windows ------------------------------------------------------

CANARY_UPSTREAM, BASE_UPSTREAM = "192.0.2.5:8081", "192.0.2.4:8081"
NOW = 1_800_000_000.0


def make_window(*, baseline: tuple[int, int, float] = (300, 0, 10.0), canary: tuple[int, int, float] = (120, 0, 11.0),
                window: float = 10.0, now: float = NOW, noise: bool = True, hidden_failures: bool = True,
                outside: int = 0) -> pd.DataFrame:
    """A recorded traffic window in the shape careops.traffic records: (requests, failed, latency_ms) for the
    baseline and the canary. Failed requests name no release (version "") -- only their upstream says where
    they went. ``noise`` adds MLLP rows and router errors with no upstream; ``outside`` adds that many failed,
    slow canary requests just outside the window (at ``now - window`` and after ``now``)."""
    rows: list[dict[str, Any]] = []

    def add(n: int, failed: int, ms: float, version: str, upstream: str) -> None:
        for i in range(n):
            t = now - window + (i + 1) * window / (n + 1)
            bad = i < failed
            rows.append({"kind": "http", "seq": len(rows), "id": "/health", "attempt": 1, "t_sched": t, "t_send": t,
                         "latency_ms": ms, "status": "503" if bad else "200", "ok": not bad,
                         "version": "" if bad and hidden_failures else version, "upstream": upstream,
                         "error": "service unavailable" if bad else ""})

    add(*baseline, "v1", BASE_UPSTREAM)
    add(*canary, "v2", CANARY_UPSTREAM)
    for i in range(outside):
        for t in (now - window, now + 0.5 + i * 0.01, now - window - 1 - i * 0.01):
            rows.append({"kind": "http", "seq": len(rows), "id": "/health", "attempt": 1, "t_sched": t, "t_send": t,
                         "latency_ms": 900.0, "status": "503", "ok": False, "version": "",
                         "upstream": CANARY_UPSTREAM, "error": "service unavailable"})
    if noise:
        for i in range(20):
            t = now - window + (i + 0.5) * window / 20
            rows.append({"kind": "mllp", "seq": len(rows), "id": f"TR-0-{i}", "attempt": 1, "t_sched": t, "t_send": t,
                         "latency_ms": 3000.0, "status": "error" if i % 2 else "AA", "ok": not i % 2,
                         "version": "", "upstream": CANARY_UPSTREAM if i % 2 else "", "error": ""})
        for i in range(5):
            t = now - window + (i + 0.7) * window / 5
            rows.append({"kind": "http", "seq": len(rows), "id": "/health", "attempt": 1, "t_sched": t, "t_send": t,
                         "latency_ms": 0.5, "status": "error", "ok": False, "version": "", "upstream": "",
                         "error": "ConnectionRefusedError"})
    frame = pd.DataFrame(rows).sort_values("t_send", kind="stable").reset_index(drop=True)
    frame["t"] = frame["t_send"] - frame["t_sched"].min()
    return frame


#: the rule of every recorded window, unless a case changes part of it
RULE = {"min_sample": 100, "max_error_rate": 0.02, "max_p95_ratio": 1.5}

#: a canary case: (what it is, make_window's arguments, rule changes, the right verdict)
CanaryCase = tuple[str, dict[str, Any], dict[str, Any], str]
#: the practice windows and their verdicts, worked out by hand
PRACTICE_CASES: list[CanaryCase] = [
    ("a healthy canary", {}, {}, "pass"),
    ("a canary failing 5 % of its requests", {"canary": (120, 6, 11.0)}, {}, "fail"),
    ("too few canary requests to judge", {"canary": (50, 0, 11.0)}, {}, "inconclusive"),
    ("a canary twice as slow", {"canary": (120, 0, 20.0)}, {}, "fail"),
]


# -- exercise 5b: recorded deployments ------------------------------------------------------------

def _row(kind: str, t: float, *, ok: bool = True, version: str = "v1", ms: float = 10.0, attempt: int = 1,
         seq: int = 0) -> dict[str, Any]:
    return {"kind": kind, "seq": seq, "id": "/health" if kind == "http" else f"SYN{seq:06d}", "attempt": attempt,
            "t_sched": t, "t_send": t, "latency_ms": ms, "status": ("200" if kind == "http" else "AA") if ok else
            ("error" if not version else ("503" if kind == "http" else "AE")), "ok": ok,
            "version": version if ok or version else "", "upstream": "" if not ok and not version else
            ("192.0.2.3:8081" if version == "v1" else "192.0.2.4:8081"), "error": "" if ok else "failed"}


def make_deployment_record(case: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A recorded deployment whose numbers were worked out by hand: (frame, call arguments). The cases are
    the practice ones (``PRACTICE_ROWS``) and the graded ones (their answers are with the grader)."""
    rows: list[dict[str, Any]] = []
    T = NOW

    def add(kind: str, t: float, **kw: Any) -> None:
        rows.append(_row(kind, T + t, seq=len(rows), **kw))

    args = {"start": T + 10.0, "end": T + 20.0, "old": "v1", "new": "v2"}
    if case in ("blue/green", "outside the window"):
        for i in range(200):  # 200 HTTP requests over 0..20 s: old until 15.0, new from 14.8 (drain overlap)
            t = i * 0.1
            add("http", t, version="v1" if t < 15.0 else "v2")
        add("http", 14.85, version="v2")  # the first v2 answer at +14.85, the last v1 at +14.9 -> 0.05 s
        for i in range(20):
            add("mllp", i * 1.0 + 0.05, version="v1" if i < 15 else "v2")
        if case == "outside the window":  # failures just outside [start, end] do not count; on the edges do
            add("http", 9.99, ok=False, version="")
            add("http", 20.01, ok=False, version="")
            add("http", 10.0, ok=False, version="", ms=0.5)
            add("mllp", 20.0, ok=False, version="")
    elif case == "stop-and-replace":
        for i in range(200):  # nothing answers between +14.0 and +15.5: refused connections, version ""
            t = i * 0.1
            gap = 14.0 <= t < 15.5
            add("http", t, ok=not gap, version="" if gap else ("v1" if t < 14.0 else "v2"), ms=1.0 if gap else 10.0)
        for i in range(20):
            add("mllp", i * 1.0 + 0.05, version="v1" if i < 14 else "v2")
        add("mllp", 14.05, ok=False, version="")  # no answer: the sender resends it (ACKed by v2 at +14.05)
    elif case == "slow tail":
        for i in range(100):  # within the window 90 % at 10 ms and 10 % at 50 ms: p95 is 50 ms by any method
            add("http", 10.0 + i * 0.1, version="v1" if i % 2 else "v2", ms=50.0 if i % 10 == 0 else 10.0)
        args.update(start=T + 10.0, end=T + 19.9)
    elif case == "rolled back":
        for i in range(100):  # v2-faulty failed 1 in 4 (503, named) and never served again after +15
            t = 10.0 + i * 0.1
            faulty = 12.0 <= t < 15.0 and i % 2 == 0
            add("http", t, ok=not (faulty and i % 4 == 0), version="v2-faulty" if faulty else "v1")
        add("mllp", 13.0, ok=False, version="v2-faulty")
        args.update(new="v2-faulty")
    elif case == "never served":  # the new release never answered: side by side is 0
        for i in range(50):
            add("http", 10.0 + i * 0.2, version="v1")
    elif case == "nothing in the window":
        add("http", 1.0, version="v1")
        add("mllp", 25.0, version="v2")
    frame = pd.DataFrame(rows).sort_values("t_send", kind="stable").reset_index(drop=True)
    frame["t"] = frame["t_send"] - frame["t_sched"].min()
    return frame, args


#: practice case -> the right row, worked out by hand from the construction above
PRACTICE_ROW_ANSWERS: dict[str, dict[str, float]] = {
    # [10, 20]: the 0.1 s grid gives +10.0 .. +19.9 (100 requests), plus the v2 answer at +14.85; MLLP all ACKed;
    # the first v2 answer is at +14.85 and the last v1 one at +14.9
    "blue/green": {"seconds": 10.0, "http_requests": 101, "failed_requests": 0, "failed_messages": 0,
                   "p95_ms": 10.0, "side_by_side_seconds": 0.05},
    # +14.0 .. +15.4 refused (15 requests); one MLLP send unanswered; v1 and v2 never answered at the same time
    "stop-and-replace": {"seconds": 10.0, "http_requests": 100, "failed_requests": 15, "failed_messages": 1,
                         "p95_ms": 10.0, "side_by_side_seconds": 0.0},
    # 10 of 100 at 50 ms; v2 answers first at +10.0, v1 last at +19.9
    "slow tail": {"seconds": 9.9, "http_requests": 100, "failed_requests": 0, "failed_messages": 0,
                  "p95_ms": 50.0, "side_by_side_seconds": 9.9},
}
PRACTICE_ROWS = list(PRACTICE_ROW_ANSWERS)


# -- exercise 6: audit logs --------------------------------------------------------------------------

#: (seq, at, actor, strategy, image, change_id, approved_by, outcome, rolled_back) -- deployments in an audit log
_DEPLOYMENTS = [
    (3, "2026-11-10T09:00:00.000Z", "Dana Reyes", "blueGreen", V2, "CHG-2001", "cab-chair", "promoted", False),
    (5, "2026-11-10T10:30:00.000Z", "Sam Okoye", "canary", V2_FAULTY, "CHG-2002", "cab-chair", "rolled-back", True),
    (6, "2026-11-11T08:15:00.000Z", "Sam Okoye", "canary", V2, "CHG-2003", "", "aborted", False),
    (8, "2026-11-12T14:45:00.000Z", "Ana Lind", "canary", V2, "CHG-2004", "Dr. Kim (CAB)", "promoted", False),
]


def _deployments(seed: int) -> list[tuple[Any, ...]]:
    rows = list(_DEPLOYMENTS)
    if seed:
        rows = [(seq, at.replace("2026-11-1", f"2026-1{seed % 2}-1"), f"{actor} {seed}", strat, image,
                 f"{change}-{seed}", approver, outcome, rb)
                for seq, at, actor, strat, image, change, approver, outcome, rb in rows]
    return rows


def _started_ended(at: str) -> tuple[str, str]:
    stamp = pd.Timestamp(at)
    return ((stamp - pd.Timedelta(seconds=42)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def sample_change_log(seed: int = 0) -> pd.DataFrame:
    """An audit log as ``AuditLog.to_dataframe()`` gives it: deployments among other events, newest first."""
    def row(seq: int, at: str, actor: str, role: str, action: str, resource: str, outcome: str,
            details: dict[str, Any]) -> dict[str, Any]:
        return {"seq": seq, "at": at, "actor": actor, "role": role, "action": action, "resource": resource,
                "outcome": outcome, "purpose": "change", "source": "careops.rollout", "details": details,
                "prev": "", "hash": "", "mac": ""}

    rows = [row(1, "2026-11-09T16:00:00.000Z", "ci-bot", "developer", "pipeline.run", "pipeline/r1", "success",
                {"run_id": "r1"}),
            row(2, "2026-11-09T16:05:00.000Z", "cab-chair", "approver", "pipeline.approval", "pipeline/r1",
                "approved", {"run_id": "r1", "environment": "staging", "note": ""}),
            row(4, "2026-11-10T09:10:00.000Z", "Ana Lind", "operator", "lab.reset", "lab/ci", "success", {}),
            row(7, "2026-11-12T08:00:00.000Z", "ci-bot", "developer", "pipeline.run", "pipeline/r2", "failure",
                {"run_id": "r2"})]
    for seq, at, actor, strategy, image, change, approver, outcome, rolled_back in _deployments(seed):
        started, ended = _started_ended(at)
        rows.append(row(seq, at, actor, "deployer", f"deploy.{strategy}", "rollout/legacy-adt", outcome,
                        {"image": image, "from": "adt-blue", "to": "adt-green", "approved_by": approver,
                         "change_id": change, "started": started, "ended": ended, "rollback": rolled_back,
                         "reason": "analysis failed" if rolled_back else "", "reload_seconds": [0.2]}))
    frame = pd.DataFrame(sorted(rows, key=lambda r: -r["seq"]))
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


#: The right change record of the practice log (``sample_change_log()``), written out from ``_DEPLOYMENTS``.
PRACTICE_CHANGE_RECORD: list[dict[str, Any]] = [
    {"change_id": "CHG-2001", "deployed_by": "Dana Reyes", "approved_by": "cab-chair", "strategy": "blueGreen",
     "image": V2, "started": "2026-11-10T08:59:18.000Z", "ended": "2026-11-10T09:00:00.000Z",
     "outcome": "promoted", "rolled_back": False},
    {"change_id": "CHG-2002", "deployed_by": "Sam Okoye", "approved_by": "cab-chair", "strategy": "canary",
     "image": V2_FAULTY, "started": "2026-11-10T10:29:18.000Z", "ended": "2026-11-10T10:30:00.000Z",
     "outcome": "rolled-back", "rolled_back": True},
    {"change_id": "CHG-2003", "deployed_by": "Sam Okoye", "approved_by": "", "strategy": "canary",
     "image": V2, "started": "2026-11-11T08:14:18.000Z", "ended": "2026-11-11T08:15:00.000Z",
     "outcome": "aborted", "rolled_back": False},
    {"change_id": "CHG-2004", "deployed_by": "Ana Lind", "approved_by": "Dr. Kim (CAB)", "strategy": "canary",
     "image": V2, "started": "2026-11-12T14:44:18.000Z", "ended": "2026-11-12T14:45:00.000Z",
     "outcome": "promoted", "rolled_back": False},
]


__all__ = [
    "BASE_UPSTREAM",
    "CANARY_UPSTREAM",
    "NOW",
    "PRACTICE_CASES",
    "PRACTICE_CHANGE_RECORD",
    "PRACTICE_ROWS",
    "PRACTICE_ROW_ANSWERS",
    "RULE",
    "CanaryCase",
    "make_deployment_record",
    "make_window",
    "sample_change_log",
]
