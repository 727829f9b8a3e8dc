"""k-anonymity and l-diversity over chosen quasi-identifiers.

Why: removing names is not enough. Age, sex and ZIP3 together can single a
person out (Sweeney re-identified a governor from ZIP, birth date and sex).
A table is k-anonymous when every combination of quasi-identifiers is shared
by at least k rows, and l-diverse when each such group holds at least l
different values of the sensitive column, so membership alone does not
reveal the diagnosis.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from careops.errors import CareOpsError
from careops.report import theme


def _columns(df: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: str | None = None) -> list[str]:
    if isinstance(quasi_identifiers, str):
        quasi_identifiers = [quasi_identifiers]
    qis = list(quasi_identifiers)
    if not qis:
        raise CareOpsError("no quasi-identifiers given", fix="name the columns an attacker could know, e.g. ['AGE', 'SEX', 'ZIP3']")
    missing = [c for c in qis + ([sensitive] if sensitive else []) if c not in df.columns]
    if missing:
        raise CareOpsError(f"columns {missing} are not in the table (it has {list(df.columns)})",
                           fix="use the column names of the de-identified table")
    return qis


def equivalence_classes(df: pd.DataFrame, quasi_identifiers: Sequence[str]) -> pd.DataFrame:
    """One row per combination of quasi-identifier values with its size, smallest first (missing is a value)."""
    qis = _columns(df, quasi_identifiers)
    sizes = df.groupby(qis, dropna=False, sort=True).size().rename("size").reset_index()
    return sizes.sort_values("size", kind="stable").reset_index(drop=True)


def k_anonymity(df: pd.DataFrame, quasi_identifiers: Sequence[str]) -> int:
    """The k of the table: the size of its smallest equivalence class (0 for an empty table)."""
    if df.empty:
        _columns(df, quasi_identifiers)
        return 0
    return int(equivalence_classes(df, quasi_identifiers)["size"].min())


def l_diversity(df: pd.DataFrame, quasi_identifiers: Sequence[str], sensitive: str) -> int:
    """Distinct l-diversity: the fewest distinct sensitive values in any equivalence class (0 if empty)."""
    qis = _columns(df, quasi_identifiers, sensitive)
    if df.empty:
        return 0
    return int(df.groupby(qis, dropna=False)[sensitive].nunique(dropna=False).min())


@dataclass
class AnonymityReport:
    """k (and l) of a table with the classes that hold them down."""

    quasi_identifiers: list[str]
    k: int
    required_k: int
    smallest: pd.DataFrame
    sensitive: str | None = None
    l: int | None = None
    required_l: int | None = None

    @property
    def ok(self) -> bool:
        return self.k >= self.required_k and (self.required_l is None or (self.l or 0) >= self.required_l)

    def __str__(self) -> str:
        text = f"k-anonymity over {self.quasi_identifiers}: k = {self.k} (required {self.required_k})"
        if self.sensitive:
            text += f"; l-diversity of {self.sensitive}: l = {self.l}" + (
                f" (required {self.required_l})" if self.required_l else "")
        return text + ("" if self.ok else "\n  fix: generalise the quasi-identifiers (age bands, ZIP3 to 000) "
                       "or suppress the rows of the smallest classes")

    def _repr_html_(self) -> str:
        title = str(self).splitlines()[0]
        table = theme.table(self.smallest.itertuples(index=False), header=list(self.smallest.columns))
        return theme.card(title, theme.section("smallest classes", table), status=theme.verdict(self.ok),
                          ok=self.ok)


def anonymity_report(df: pd.DataFrame, quasi_identifiers: Sequence[str], *, k: int = 5,
                     sensitive: str | None = None, l: int | None = None, show: int = 5) -> AnonymityReport:
    """k (and l, with ``sensitive``) of a table, against the required values, with its smallest classes."""
    qis = _columns(df, quasi_identifiers, sensitive)
    return AnonymityReport(
        quasi_identifiers=qis, k=k_anonymity(df, qis), required_k=k,
        smallest=equivalence_classes(df, qis).head(show),
        sensitive=sensitive, l=l_diversity(df, qis, sensitive) if sensitive else None, required_l=l,
    )


__all__ = ["AnonymityReport", "anonymity_report", "equivalence_classes", "k_anonymity", "l_diversity"]
