"""careops.phi.anonymity: k-anonymity and l-diversity, with the classes that hold them down."""
from __future__ import annotations

import pandas as pd
import pytest

from careops.errors import CareOpsError
from careops.phi import anonymity_report, equivalence_classes, k_anonymity, l_diversity
from careops.report import theme


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame({
        "AGE_BAND": ["18-44"] * 4 + ["45-64"] * 3 + ["90+"],
        "SEX": ["F", "F", "M", "M", "F", "F", "F", "M"],
        "ZIP3": ["021"] * 7 + ["000"],
        "DIAGNOSIS": ["Asthma", "Asthma", "Asthma", "Pneumonia", "Asthma", "Asthma", "Asthma", "Pneumonia"],
    })


def test_k_is_the_smallest_class(table: pd.DataFrame) -> None:
    assert k_anonymity(table, ["AGE_BAND", "SEX", "ZIP3"]) == 1  # the 90+ man is alone
    assert k_anonymity(table.iloc[:7], ["AGE_BAND", "SEX", "ZIP3"]) == 2
    assert k_anonymity(table.iloc[:7], ["ZIP3"]) == 7
    assert k_anonymity(table, "SEX") == 3  # one column may be given as a string


def test_missing_values_form_a_class_of_their_own() -> None:
    df = pd.DataFrame({"A": ["x", "x", None], "B": [1, 1, 1]})
    assert k_anonymity(df, ["A", "B"]) == 1
    assert k_anonymity(df.iloc[:2], ["A", "B"]) == 2


def test_empty_table_has_k_and_l_zero(table: pd.DataFrame) -> None:
    assert k_anonymity(table.iloc[0:0], ["SEX"]) == 0
    assert l_diversity(table.iloc[0:0], ["SEX"], "DIAGNOSIS") == 0


def test_l_diversity_counts_distinct_sensitive_values(table: pd.DataFrame) -> None:
    assert l_diversity(table.iloc[:7], ["AGE_BAND", "SEX"], "DIAGNOSIS") == 1  # (45-64, F) all have asthma
    assert l_diversity(table.iloc[2:4], ["AGE_BAND", "SEX"], "DIAGNOSIS") == 2


def test_equivalence_classes_smallest_first(table: pd.DataFrame) -> None:
    classes = equivalence_classes(table, ["AGE_BAND", "SEX"])
    assert classes["size"].tolist() == [1, 2, 2, 3]
    assert classes.iloc[0][["AGE_BAND", "SEX"]].tolist() == ["90+", "M"]


def test_unknown_columns_are_named(table: pd.DataFrame) -> None:
    with pytest.raises(CareOpsError, match=r"columns \['AGE'\] are not in the table") as err:
        k_anonymity(table, ["AGE", "SEX"])
    assert err.value.fix
    with pytest.raises(CareOpsError, match="no quasi-identifiers given"):
        k_anonymity(table, [])
    with pytest.raises(CareOpsError, match=r"columns \['DX'\]"):
        l_diversity(table, ["SEX"], "DX")


def test_report_both_ways(table: pd.DataFrame) -> None:
    bad = anonymity_report(table, ["AGE_BAND", "SEX", "ZIP3"], k=2, sensitive="DIAGNOSIS", l=2)
    assert not bad.ok and bad.k == 1 and bad.l == 1
    assert "k = 1 (required 2)" in str(bad) and "fix: generalise" in str(bad)
    assert theme.PALETTE["fail"] in bad._repr_html_() and "90+" in bad._repr_html_()
    good = anonymity_report(table.iloc[:7], ["ZIP3"], k=5, sensitive="DIAGNOSIS", l=2)
    assert good.ok and good.k == 7 and good.l == 2 and "fix" not in str(good)
    assert theme.PALETTE["ok"] in good._repr_html_()
