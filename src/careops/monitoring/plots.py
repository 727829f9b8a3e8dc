"""Module 5's plots: an incident drill's timeline, and an error budget's burn rate."""
from __future__ import annotations

from typing import Any

import pandas as pd

from careops.report.figure import Figure
from careops.report.theme import FIGURE

#: admissions by outcome, in the theme's colours
OUTCOMES = (("in time", FIGURE["ok"]), ("stored late", FIGURE["warn"]), ("refused", FIGURE["fail"]),
            ("unanswered", FIGURE["muted"]))


def _outcome(row: pd.Series) -> str:
    if row["code"] == "error":
        return "unanswered"
    if row["code"] != "AA":
        return "refused"
    return "in time" if row["in_time"] else "stored late"


def plot_drill(run: Any) -> Figure:
    """Three panels over a DrillRun's seconds: admissions by outcome (by when the ward created them), the age
    of each admission when it was stored, and the learner's alerts (pending, firing); the injection, the
    detection, the runbook's actions and the recovery as vertical lines."""
    fig = Figure(figsize=(10, 7.5), layout="constrained")
    ax_count, ax_age, ax_alerts = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2, 2]})
    messages = run.messages()
    t0 = run.t0
    if len(messages):
        messages = messages.assign(second=(messages["created"] - t0).floordiv(1).astype(int),
                                   outcome=messages.apply(_outcome, axis=1))
        table = messages.groupby(["second", "outcome"]).size().unstack(fill_value=0)
        bottom = pd.Series(0, index=table.index)
        for name, colour in OUTCOMES:
            if name in table:
                ax_count.bar(table.index, table[name], bottom=bottom, width=0.9, align="edge", color=colour,
                             label=name)
                bottom = bottom + table[name]
        ax_count.legend(loc="upper left", fontsize=8, ncol=4)
        ax_age.scatter(messages["created"] - t0, messages["age"], s=6, color=FIGURE["primary"])
        ax_age.axhline(2.0, color=FIGURE["fail"], linestyle=":", linewidth=1)
        ax_age.annotate("SLO: 2 s", xy=(0, 2.0), xycoords=("axes fraction", "data"), fontsize=8,
                        color=FIGURE["fail"], va="bottom")
    if len(run.rejected) and run.rejected["value"].max() > 0:
        ax_count.plot(run.rejected["t"] - t0, run.rejected["value"], color=FIGURE["fail"], linestyle="--",
                      linewidth=1, label="rejected (AR) / s, from Prometheus")
        ax_count.legend(loc="upper left", fontsize=8, ncol=5)
    ax_count.set_ylabel("admissions / s\n(by creation)")
    ax_age.set_ylabel("age when stored (s)")
    alerts = run.alerts
    names = sorted(alerts["alert"].unique()) if len(alerts) else []
    for i, name in enumerate(names):
        for state, colour, height in (("pending", FIGURE["warn"], 0.35), ("firing", FIGURE["fail"], 0.7)):
            ts = alerts[(alerts["alert"] == name) & (alerts["state"] == state)]["t"] - t0
            ax_alerts.broken_barh([(t, 0.5) for t in ts], (i - height / 2, height), color=colour)
    ax_alerts.set_yticks(range(len(names)), names, fontsize=8)
    ax_alerts.set_ylim(-0.7, max(len(names), 1) - 0.3)
    ax_alerts.set_ylabel("alerts\n(pending, firing)")
    ax_alerts.set_xlabel("seconds since the ward started sending")
    marks = [(run.injected_at, "incident", FIGURE["fail"])]
    if run.detected_at is not None:
        marks.append((run.detected_at, "detected", FIGURE["warn"]))
    marks += [(a.at, a.action, FIGURE["event"]) for a in run.actions]
    if run.recovered_at is not None:
        marks.append((run.recovered_at, "recovered", FIGURE["ok"]))
    for when, label, colour in marks:
        for ax in (ax_count, ax_age, ax_alerts):
            ax.axvline(when - t0, color=colour, linestyle="--", linewidth=1)
        ax_alerts.annotate(label, xy=(when - t0, 1), xycoords=("data", "axes fraction"), rotation=90, va="top",
                           ha="right", fontsize=8, color=colour)
    fig.suptitle(f"incident drill: {run.incident.title} (detect {_s(run.time_to_detect)}, "
                 f"recover {_s(run.time_to_recover)})")
    return fig


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:g} s"


#: burn rates the course's alerts page (fast) or open a ticket (slow) at, for a 30-day SLO
BURN_THRESHOLDS = ((14.4, "fast burn: 2 % of the budget in 1 h (page)"), (6.0, "slow burn: 5 % in 6 h (ticket)"),
                   (1.0, "budget lasts exactly 30 days"))


def plot_burn_rate(burn: pd.Series | dict[str, pd.Series], *, title: str = "error budget burn rate") -> Figure:
    """A burn-rate series (index: time) or several (name -> series), with the alerting thresholds."""
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.subplots()
    series = burn if isinstance(burn, dict) else {"burn rate": burn}
    colours = (FIGURE["primary"], FIGURE["secondary"], FIGURE["muted"])
    for (name, values), colour in zip(series.items(), colours * 3):
        ax.plot(pd.Series(values).index, pd.Series(values).to_numpy(), label=name, color=colour, linewidth=1)
    for level, label in BURN_THRESHOLDS:
        ax.axhline(level, color=FIGURE["fail"] if level > 1 else FIGURE["ok"], linestyle=":", linewidth=1)
        ax.annotate(f"{level:g}x  {label}", xy=(0, level), xycoords=("axes fraction", "data"), fontsize=8,
                    va="bottom", color=FIGURE["fail"] if level > 1 else FIGURE["ok"])
    ax.set_yscale("symlog", linthresh=1)
    top = max([float(pd.Series(v).max()) for v in series.values() if len(pd.Series(v).dropna())] + [20.0])
    ax.set_ylim(0, top * 2)
    fig.autofmt_xdate()
    ax.set_ylabel("burn rate (x the budget's pace)")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    return fig


__all__ = ["BURN_THRESHOLDS", "plot_burn_rate", "plot_drill"]
