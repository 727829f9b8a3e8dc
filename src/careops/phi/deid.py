"""Safe Harbor transformations (45 CFR 164.514(b)(2)) for tables of patient data.

Why helpers and not a one-liner: the rules have sharp edges that naive code
misses: an age of 90 or more must become "90+" (and the birth year with it),
a ZIP code keeps only 3 digits and becomes 000 where those 3 digits cover
20,000 people or fewer, and dates hide in free text too. This module applies
the rules and checks a result; it teaches the practice, it does not certify
compliance (expert determination is the other HIPAA route).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import date, datetime

import pandas as pd

from careops.errors import CareOpsError

#: 3-digit ZIP areas with 20,000 people or fewer (2000 census); Safe Harbor turns them into 000.
LOW_POPULATION_ZIP3: frozenset[str] = frozenset({
    "036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879", "884",
    "890", "893",
})
AGE_CAP = 90
AGE_CAP_LABEL = "90+"
DATE_PLACEHOLDER = "[DATE]"

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE_PATTERNS = [
    re.compile(r"(?<!\d)(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?:[T ]\d{1,2}:\d{2}(?::\d{2})?Z?)?(?!\d)"),
    re.compile(r"(?<!\d)(?:0?[1-9]|[12]\d|3[01])[-/.](?:0?[1-9]|[12]\d|3[01])[-/.](?:19|20)?\d{2}(?!\d)"),
    re.compile(rf"\b{_MONTHS}\s+(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?(?:,?\s+(?:19|20)\d{{2}})?\b", re.IGNORECASE),
    re.compile(rf"\b(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}(?:,?\s+(?:19|20)\d{{2}})?\b", re.IGNORECASE),
    re.compile(r"(?<!\d)(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:\d{4,6})?(?!\d)"),  # HL7 DTM
]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def zip3(value: object) -> str:
    """'03601-1234' -> '000' (low-population area), '02139' -> '021'; anything unreadable -> '000'."""
    text = "" if _missing(value) else str(value).strip()
    digits = text.split("-")[0]
    if len(digits) < 3 or not digits[:3].isdigit():
        return "000"
    if isinstance(value, (int, float)) and not isinstance(value, bool):  # 2139 read as a number lost its 0
        digits = f"{int(value):05d}"
    return "000" if digits[:3] in LOW_POPULATION_ZIP3 else digits[:3]


def safe_age(age: object) -> str:
    """Ages of 90 and over become '90+'; others the whole number as text; missing stays ''."""
    if _missing(age) or str(age).strip() == "":
        return ""
    text = str(age).strip()
    text = text.removesuffix("+")
    try:
        years = int(float(text))
    except ValueError:
        raise CareOpsError(f"age {age!r} is not a number", fix="pass ages in whole years, e.g. 47") from None
    return AGE_CAP_LABEL if years >= AGE_CAP else str(years)


def year_of(value: object) -> int | None:
    """The year of a date (date, datetime, Timestamp or text such as 2024-03-05 or 03/05/2024), else None."""
    if _missing(value) or value == "":
        return None
    if isinstance(value, (date, datetime, pd.Timestamp)):
        return int(value.year)
    ts = pd.to_datetime(str(value), errors="coerce")
    if pd.isna(ts):
        m = re.search(r"(?:19|20)\d{2}", str(value))
        return int(m.group(0)) if m else None
    return int(ts.year)


def redact_dates(text: object, placeholder: str = DATE_PLACEHOLDER) -> str:
    """Replace every date in free text (ISO, US, European, month names, HL7 timestamps) by a placeholder.

    A year on its own is allowed by Safe Harbor and is kept.
    """
    if _missing(text):
        return ""
    out = str(text)
    for rx in _DATE_PATTERNS:
        out = rx.sub(placeholder, out)
    return out


def _require(df: pd.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise CareOpsError(f"columns {missing} are not in the table (it has {list(df.columns)})",
                           fix="name the columns as they are spelled in the table")


def safe_harbor(df: pd.DataFrame, *, drop: Iterable[str] = (), dates: Iterable[str] = (), ages: Iterable[str] = (),
                zips: Iterable[str] = (), free_text: Iterable[str] = (), birth_dates: Iterable[str] = (),
                age_column: str | None = None) -> pd.DataFrame:
    """A de-identified copy: ``drop`` direct identifiers, ``dates`` to years, ``ages`` to 0..89 or '90+',
    ``zips`` to ZIP3 (000 for low-population areas), dates in ``free_text`` redacted.

    ``birth_dates`` become years too, but blank where the patient is 90 or older (the birth year would
    reveal the age); that needs ``age_column``, the age before capping. The input is never changed.
    """
    drop, dates, ages, zips, free_text, birth_dates = map(list, (drop, dates, ages, zips, free_text, birth_dates))
    _require(df, drop + dates + ages + zips + free_text + birth_dates + ([age_column] if age_column else []))
    if birth_dates and not age_column:
        raise CareOpsError("birth dates need the age column to hide the birth year of patients aged 90+",
                           fix="pass age_column='AGE' (the age in years before it is capped)")
    out = df.copy()
    for col in birth_dates:
        old = pd.to_numeric(df[age_column], errors="coerce") >= AGE_CAP
        years = df[col].map(year_of).astype("Int64")
        out[col] = years.mask(old)
    for col in dates:
        out[col] = df[col].map(year_of).astype("Int64")
    for col in ages:
        out[col] = df[col].map(safe_age)
    for col in zips:
        out[col] = df[col].map(zip3)
    for col in free_text:
        out[col] = df[col].map(redact_dates)
    return out.drop(columns=drop)


def safe_harbor_problems(df: pd.DataFrame, *, ages: Iterable[str] = (), zips: Iterable[str] = (),
                         text: Iterable[str] | None = None) -> list[str]:
    """What still breaks the pattern-checkable Safe Harbor rules in a table (empty: none found).

    Checks ages over 89, ZIP codes longer than 3 digits or low-population ZIP3s not set to 000, and runs the
    course's PHI scanner (SSNs, phones, e-mails, MRNs, dates, ...) over ``text`` columns (default: all).
    """
    from careops.phi.scanner import scan_dataframe

    ages, zips = list(ages), list(zips)
    _require(df, ages + zips)
    problems = []
    for col in ages:
        numeric = pd.to_numeric(df[col].astype(str).str.rstrip("+"), errors="coerce")
        plain = df[col].astype(str) != AGE_CAP_LABEL
        bad = df.index[plain & (numeric >= AGE_CAP)]
        if len(bad):
            problems.append(f"{col}: {len(bad)} age(s) of 90 or more shown exactly (expected '90+'), rows {list(bad[:5])}")
    for col in zips:
        values = df[col].astype(str)
        long_ = df.index[values.str.fullmatch(r"\d{4,}(-\d{4})?")]
        if len(long_):
            problems.append(f"{col}: {len(long_)} ZIP code(s) with more than 3 digits, rows {list(long_[:5])}")
        low = df.index[values.isin(LOW_POPULATION_ZIP3)]
        if len(low):
            problems.append(f"{col}: {len(low)} low-population ZIP3(s) not replaced by 000, rows {list(low[:5])}")
    columns = list(text) if text is not None else [c for c in df.columns if c not in ages + zips]
    report = scan_dataframe(df[columns], name="table")
    for f in report.findings:  # synthetic markers are still identifiers: Safe Harbor removes them all
        problems.append(f"{f.source} row {f.line}: {f.kind} {f.masked} is an identifier Safe Harbor removes")
    return problems


__all__ = [
    "AGE_CAP_LABEL",
    "DATE_PLACEHOLDER",
    "LOW_POPULATION_ZIP3",
    "redact_dates",
    "safe_age",
    "safe_harbor",
    "safe_harbor_problems",
    "year_of",
    "zip3",
]
