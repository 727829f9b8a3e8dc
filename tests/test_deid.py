"""careops.phi.deid: the Safe Harbor transformations and the check that finds what is left.

Every rule is shown both ways: the transformation fixes the raw extract, and
``safe_harbor_problems`` reports the raw extract and passes the fixed one.
"""
from __future__ import annotations

import pandas as pd
import pytest

from careops.errors import CareOpsError
from careops.phi import (
    LOW_POPULATION_ZIP3,
    redact_dates,
    safe_age,
    safe_harbor,
    safe_harbor_problems,
    zip3,
)
from careops.phi.deid import year_of


def test_low_population_list_is_the_2000_census_list() -> None:
    assert sorted(LOW_POPULATION_ZIP3) == ["036", "059", "063", "102", "203", "556", "692", "790", "821", "823",
                                          "830", "831", "878", "879", "884", "890", "893"]


@pytest.mark.parametrize("value, expected", [
    ("02139", "021"), ("10025-1234", "100"), ("03601", "000"), ("89301-0001", "000"), ("20301", "000"),
    (2139, "021"), ("", "000"), (None, "000"), (float("nan"), "000"), ("ab123", "000"), ("12", "000"),
])
def test_zip3(value, expected: str) -> None:
    assert zip3(value) == expected


@pytest.mark.parametrize("zip5", [z + "01" for z in sorted(LOW_POPULATION_ZIP3)])
def test_every_low_population_area_becomes_000(zip5: str) -> None:
    assert zip3(zip5) == "000"


@pytest.mark.parametrize("age, expected", [(0, "0"), (89, "89"), (90, "90+"), (104, "90+"), ("90+", "90+"),
                                           ("47", "47"), (47.0, "47"), ("", ""), (None, "")])
def test_safe_age(age, expected: str) -> None:
    assert safe_age(age) == expected


def test_safe_age_rejects_text_with_a_clear_error() -> None:
    with pytest.raises(CareOpsError, match="age 'old' is not a number") as err:
        safe_age("old")
    assert "whole years" in err.value.fix


@pytest.mark.parametrize("value, expected", [("2024-03-05", 2024), ("03/05/2024", 2024), ("2024-03-05T10:00:00Z", 2024),
                                             (pd.Timestamp("1999-12-31"), 1999), ("", None), (None, None),
                                             ("sometime in 2021", 2021), ("unknown", None)])
def test_year_of(value, expected) -> None:
    assert year_of(value) == expected


@pytest.mark.parametrize("text, expected", [
    ("Admitted 2024-03-05 via ED", "Admitted [DATE] via ED"),
    ("seen 03/05/2024 and 3/5/24", "seen [DATE] and [DATE]"),
    ("transferred (05.03.2024)", "transferred ([DATE])"),
    ("review on May 1, 2025.", "review on [DATE]."),
    ("discharged on the 9th of June 2024", "discharged on the [DATE]"),
    ("on 2 March 2025 and Mar. 4", "on [DATE] and [DATE]"),
    ("stamp 20240202083000 and 20240202", "stamp [DATE] and [DATE]"),
    ("at 2024-06-01T08:30:00Z", "at [DATE]"),
])
def test_redact_dates_finds_every_format(text: str, expected: str) -> None:
    assert redact_dates(text) == expected


@pytest.mark.parametrize("text", ["only the year 2024 stays", "dose 5/10 mg", "room 1203, bed 4", "BP 120/80",
                                  "call 555-0101", "SYN-000123", ""])
def test_redact_dates_keeps_what_is_not_a_date(text: str) -> None:
    assert redact_dates(text) == text


def _extract() -> pd.DataFrame:
    return pd.DataFrame({
        "MRN": ["SYN-000001", "SYN-000002", "SYN-000003"],
        "NAME": ["Old, Ada", "Border, Ben", "Young, Cy"],
        "PHONE": ["212-555-0101", "212-555-0102", "212-555-0103"],
        "BIRTHDATE": ["1930-05-01", "1935-03-03", "2010-07-04"],
        "AGE": [94, 89, 14],
        "ZIP": ["03601", "10025", "02139"],
        "ADMIT_DATE": ["2024-06-01", "2024-06-02", "2025-01-01"],
        "NOTE": ["seen 2024-06-01", "no dates", "next visit May 1, 2025"],
    })


def test_safe_harbor_applies_every_rule_and_leaves_the_input_alone() -> None:
    raw = _extract()
    before = raw.copy()
    out = safe_harbor(raw, drop=["MRN", "NAME", "PHONE"], dates=["ADMIT_DATE"], birth_dates=["BIRTHDATE"],
                      age_column="AGE", ages=["AGE"], zips=["ZIP"], free_text=["NOTE"])
    assert raw.equals(before)
    assert list(out.columns) == ["BIRTHDATE", "AGE", "ZIP", "ADMIT_DATE", "NOTE"]
    assert out["AGE"].tolist() == ["90+", "89", "14"]
    assert pd.isna(out["BIRTHDATE"].iloc[0]) and out["BIRTHDATE"].iloc[1:].tolist() == [1935, 2010]
    assert out["ZIP"].tolist() == ["000", "100", "021"]
    assert out["ADMIT_DATE"].tolist() == [2024, 2024, 2025]
    assert out["NOTE"].tolist() == ["seen [DATE]", "no dates", "next visit [DATE]"]


def test_safe_harbor_explains_missing_columns_and_birth_dates_without_age() -> None:
    with pytest.raises(CareOpsError, match=r"columns \['ZIPCODE'\] are not in the table"):
        safe_harbor(_extract(), zips=["ZIPCODE"])
    with pytest.raises(CareOpsError, match="birth dates need the age column") as err:
        safe_harbor(_extract(), birth_dates=["BIRTHDATE"])
    assert "age_column='AGE'" in err.value.fix


def test_problems_are_found_in_the_raw_extract_and_gone_after_safe_harbor() -> None:
    raw = _extract().rename(columns={"ZIP": "ZIP3"})
    raw["ZIP3"] = ["036", "10025", "021"]
    problems = safe_harbor_problems(raw, ages=["AGE"], zips=["ZIP3"])
    text = "\n".join(problems)
    assert "AGE: 1 age(s) of 90 or more shown exactly" in text
    assert "ZIP3: 1 ZIP code(s) with more than 3 digits" in text
    assert "ZIP3: 1 low-population ZIP3(s) not replaced by 000" in text
    for kind in ("mrn", "phone", "date"):
        assert any(f": {kind} " in p for p in problems), kind
    assert not any("SYN-000001" in p for p in problems)  # findings are masked
    clean = safe_harbor(raw, drop=["MRN", "NAME", "PHONE", "BIRTHDATE"], dates=["ADMIT_DATE"], ages=["AGE"],
                        zips=["ZIP3"], free_text=["NOTE"])
    clean["ZIP3"] = clean["ZIP3"].astype(str)
    assert safe_harbor_problems(clean.astype({"ADMIT_DATE": str}), ages=["AGE"], zips=["ZIP3"]) == []
