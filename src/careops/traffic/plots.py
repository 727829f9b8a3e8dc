"""Plots of a deployment under traffic: who answered, what failed, how slow -- with the cutover marked."""
from __future__ import annotations

from typing import Iterable

import pandas as pd
from careops.report.figure import Figure
from careops.report.theme import FIGURE

#: A release's colour: the old one neutral blue, the new one green, the faulty one red.
RELEASE_COLOURS = {"v1": FIGURE["primary"], "v2": FIGURE["ok"], "v2-faulty": FIGURE["fail"], "": FIGURE["muted"]}


def per_second(frame: pd.DataFrame) -> pd.DataFrame:
    """Answered requests per second by release, failures per second (all, HTTP, MLLP attempts), p95 latency
    (ms) per second."""
    if not len(frame):
        return pd.DataFrame(columns=["second", "failed", "p95_ms"])
    f = frame.assign(second=frame["t"].astype(float).floordiv(1).astype(int))
    ok = f[f["ok"]]
    by_version = ok.groupby(["second", "version"]).size().unstack(fill_value=0)
    bad = f[~f["ok"]]
    failed = bad.groupby("second").size().rename("failed")
    failed_http = bad[bad["kind"] == "http"].groupby("second").size().rename("failed_http")
    failed_mllp = bad[bad["kind"] == "mllp"].groupby("second").size().rename("failed_mllp")
    p95 = f.groupby("second")["latency_ms"].quantile(0.95).rename("p95_ms")
    out = pd.concat([by_version, failed, failed_http, failed_mllp, p95], axis=1).fillna(0)
    return out.reset_index().rename(columns={"index": "second"})


def plot_rollout(frame: pd.DataFrame, marks: Iterable[tuple[str, float]] = (), *, t0: float | None = None,
                 title: str = "deployment under traffic") -> Figure:
    """Three stacked panels over time: requests/s by release, failures/s, p95 latency; ``marks`` are
    (label, epoch seconds) events such as the router switch, drawn as vertical lines."""
    fig = Figure(figsize=(10, 7), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    table = per_second(frame).set_index("second") if len(frame) else pd.DataFrame()
    start = t0 if t0 is not None else (float(frame["t_sched"].min()) if len(frame) else 0.0)
    versions = [c for c in table.columns if c not in ("failed", "failed_http", "failed_mllp", "p95_ms")]
    for v in versions:
        axes[0].plot(table.index, table[v], label=str(v), color=RELEASE_COLOURS.get(str(v), FIGURE["muted"]),
                     drawstyle="steps-post")
    axes[0].set_ylabel("answered / s\n(HTTP + MLLP)")
    if versions:
        axes[0].legend(title="release", loc="upper left")
    if "failed" in table:
        axes[1].bar(table.index, table["failed_http"], color=FIGURE["fail"], width=0.9, align="edge", label="HTTP")
        axes[1].bar(table.index, table["failed_mllp"], bottom=table["failed_http"], color=FIGURE["warn"], width=0.9,
                    align="edge", label="MLLP attempt (resent)")
        axes[1].legend(loc="upper left")
        axes[2].plot(table.index, table["p95_ms"], color=FIGURE["text"], drawstyle="steps-post")
    axes[1].set_ylabel("failed / s")
    axes[2].set_ylabel("p95 latency (ms)")
    axes[2].set_xlabel("seconds since traffic started")
    for label, when in marks:
        for ax in axes:
            ax.axvline(when - start, color=FIGURE["event"], linestyle="--", linewidth=1)
        axes[0].annotate(label, xy=(when - start, 1), xycoords=("data", "axes fraction"), rotation=90,
                         va="top", ha="right", fontsize=8, color=FIGURE["event"])
    fig.suptitle(title)
    return fig
