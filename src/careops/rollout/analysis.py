"""careops' own canary analysis: canary vs baseline over a recent window, with a minimum sample.

The controller uses this (the spec's thresholds) to decide a canary step; the
learner writes their own version in pandas, graded on recorded traffic.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from careops.rollout.spec import Analysis
from careops.report import theme


@dataclass(frozen=True)
class Verdict:
    """``passed`` is None when there were too few canary requests to judge (inconclusive)."""

    passed: bool | None
    reason: str
    canary_requests: int
    baseline_requests: int
    canary_error_rate: float
    baseline_error_rate: float
    canary_p95_ms: float
    baseline_p95_ms: float

    def _repr_html_(self) -> str:
        word = {True: "pass", False: "fail", None: "inconclusive"}[self.passed]
        status = theme.state({True: "passed", False: "failed", None: "skipped"}[self.passed], word)
        return theme.card("Canary analysis", theme.esc(self.reason), status=status, ok=self.passed)


def _stats(rows: pd.DataFrame) -> tuple[int, float, float]:
    n = len(rows)
    if not n:
        return 0, 0.0, 0.0
    return n, float((~rows["ok"]).sum() / n), float(rows["latency_ms"].quantile(0.95))


def analyze(frame: pd.DataFrame, *, canary: str, baseline: str, analysis: Analysis, now: float,
            canary_upstreams: set[str] | None = None) -> Verdict:
    """Judge the canary on HTTP requests sent in the last ``window_seconds`` before ``now`` (epoch seconds).

    A request belongs to the canary when the canary release answered it, or when
    it failed on its way to the canary's address (``canary_upstreams``, e.g.
    {"192.0.2.5:8081"}): a failed request names no release.
    """
    http = frame[(frame["kind"] == "http") & (frame["t_send"] > now - analysis.window_seconds)
                 & (frame["t_send"] <= now)]
    upstream = http["upstream"] if "upstream" in http else pd.Series("", index=http.index)
    to_canary = (http["version"] == canary) | upstream.isin(canary_upstreams or set())
    to_baseline = (http["version"] == baseline) & ~to_canary
    cn, ce, cp = _stats(http[to_canary])
    bn, be, bp = _stats(http[to_baseline])
    numbers = dict(canary_requests=cn, baseline_requests=bn, canary_error_rate=ce, baseline_error_rate=be,
                   canary_p95_ms=cp, baseline_p95_ms=bp)
    if cn < analysis.min_sample:
        return Verdict(None, f"only {cn} canary requests in the last {analysis.window_seconds:g} s, "
                             f"need {analysis.min_sample}", **numbers)
    if ce > analysis.max_error_rate:
        return Verdict(False, f"canary error rate {ce:.1%} > {analysis.max_error_rate:.1%} "
                              f"(baseline {be:.1%})", **numbers)
    if bn and bp > 0 and cp > analysis.max_p95_latency_ratio * bp:
        return Verdict(False, f"canary p95 {cp:.0f} ms > {analysis.max_p95_latency_ratio:g} x baseline p95 "
                              f"{bp:.0f} ms", **numbers)
    return Verdict(True, f"canary error rate {ce:.1%}, p95 {cp:.0f} ms (baseline {be:.1%}, {bp:.0f} ms)", **numbers)


def failed_since(frame: pd.DataFrame, since: float) -> int:
    """Failed HTTP requests and MLLP messages sent at or after ``since`` (epoch seconds): what a failure
    budget counts."""
    recent = frame[frame["t_send"] >= since] if len(frame) else frame
    if not len(recent):
        return 0
    http_failed = int(((recent["kind"] == "http") & ~recent["ok"]).sum())
    mllp_failed = int(((recent["kind"] == "mllp") & ~recent["ok"]).sum())
    return http_failed + mllp_failed
