"""Plots that compare a synthetic cohort with its target statistics.

Why plots as well as numbers: a fidelity table says *whether* a statistic is
within tolerance; a picture shows *how* a distribution is off (a missing tail,
a spike at a default value), which is what a tester needs to fix a generator.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from careops.report.theme import FIGURE
from careops.synth import codes as C


def _axes(ax: Any) -> Any:
    """``ax``, or the axes of a new course figure (an image wherever it is shown)."""
    if ax is not None:
        return ax
    from careops.report.figure import Figure

    return Figure(figsize=(6, 4.5), layout="constrained").subplots()


def age_pyramid(cohort: Any, ax: Any = None) -> Any:
    """Population pyramid by age band and sex, with the generator's target shares as outlines."""
    ax = _axes(ax)
    ages = cohort.ages()
    labels = [f"{lo}-{hi - 1}" if hi < 105 else f"{lo}+" for lo, hi in C.AGE_BANDS]
    band = pd.cut(ages, [b[0] for b in C.AGE_BANDS] + [200], right=False, labels=labels)
    counts = pd.crosstab(band, cohort.patients["GENDER"]).reindex(labels, fill_value=0)
    share = counts / max(len(cohort.patients), 1)
    y = np.arange(len(labels))
    ax.barh(y, -share.get("F", 0), color=FIGURE["secondary"], alpha=0.7, label="women (cohort)")
    ax.barh(y, share.get("M", 0), color=FIGURE["primary"], alpha=0.7, label="men (cohort)")
    target = np.array([s for s, _ in C.AGE_SEX_TABLE])
    female = np.array([f for _, f in C.AGE_SEX_TABLE])
    ax.barh(y, -target * female, fill=False, edgecolor=FIGURE["text"], label="target")
    ax.barh(y, target * (1 - female), fill=False, edgecolor=FIGURE["text"])
    ax.set_yticks(y, labels)
    ax.set_xlabel("share of patients (women left, men right)")
    ax.axvline(0, color=FIGURE["muted"], lw=0.5)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("Age and sex")
    return ax


def fidelity_chart(report: pd.DataFrame, ax: Any = None) -> Any:
    """Observed value relative to target, with the tolerance band: a bar outside the band failed."""
    ax = _axes(ax)
    tol = report["tolerance"].astype(float).replace(0, np.nan)
    z = (report["observed"].astype(float) - report["target"].astype(float)) / tol
    y = np.arange(len(report))
    colours = [FIGURE["ok"] if ok else FIGURE["fail"] for ok in report["ok"]]
    ax.barh(y, z.fillna(0), color=colours)
    ax.axvspan(-1, 1, color=FIGURE["band-ok"], zorder=0, label="within tolerance")
    ax.set_yticks(y, report["name"])
    ax.invert_yaxis()
    ax.set_xlabel("(observed - target) / tolerance")
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("Fidelity against the targets")
    return ax


def vital_by_age(cohort: Any, code: str, ax: Any = None) -> Any:
    """One vital sign against the patient's age (points outside the physiological range in red)."""
    ax = _axes(ax)
    vital = C.VITAL_BY_CODE[code]
    age = pd.Series(cohort.ages().to_numpy(), index=cohort.patients["Id"])
    obs = cohort.observations[cohort.observations["CODE"] == code]
    x = obs["PATIENT"].map(age)
    bad = ~obs["VALUE"].between(vital.low, vital.high)
    ax.scatter(x[~bad], obs.loc[~bad, "VALUE"], s=4, alpha=0.3, color=FIGURE["primary"], label="in range")
    ax.scatter(x[bad], obs.loc[bad, "VALUE"].clip(upper=vital.high * 1.2), s=16, color=FIGURE["fail"],
               marker="x", label="out of range (anomaly, clipped for display)")
    ax.axhspan(vital.low, vital.high, color=FIGURE["band"], zorder=0)
    ax.set_xlabel("age (years)")
    ax.set_ylabel(f"{vital.display} ({vital.unit})")
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(f"{vital.display} by age")
    return ax


def compare(cohort: Any, report: pd.DataFrame | None = None) -> Any:
    """The module's comparison figure: age pyramid, systolic BP by age, and the fidelity chart.

    A course figure, not a pyplot one: as a cell's last value it shows once, as an image."""
    from careops.report.figure import Figure

    n = 3 if report is not None else 2
    fig = Figure(figsize=(6 * n, 4.5), layout="constrained")
    axes = fig.subplots(1, n)
    age_pyramid(cohort, axes[0])
    vital_by_age(cohort, "8480-6", axes[1])
    if report is not None:
        fidelity_chart(report, axes[2])
    return fig
