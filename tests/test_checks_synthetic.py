"""careops.checks.synthetic: every module 4 check passes a right answer and fails each kind of wrong one.

The live check (exercise 5) runs ADT-Legacy in a real lab container, as the notebook does.
"""
from __future__ import annotations

import re
from dataclasses import replace

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from careops.checks import CheckFailed
from careops.report import NOT_WRITTEN
from careops.checks import synthetic as check
from careops.phi import LOW_POPULATION_ZIP3
from careops.synth import Anomalies, generate

PLAN = check.COHORT_PLAN


def plan_cohort(**over):
    args = {"patients": PLAN["patients"], "seed": PLAN["seed"], "rare": PLAN["rare"],
            "anomalies": Anomalies(**PLAN["anomalies"]), **over}
    return generate(**args)


@pytest.fixture(scope="module")
def cohort():
    return plan_cohort()


def failed(fn, *args) -> list[str]:
    """Messages of the failed criteria ([] when the check passed)."""
    try:
        fn(*args)
    except CheckFailed as exc:
        return [line.strip()[7:] for line in str(exc).splitlines() if line.strip().startswith("[FAIL]")]
    return []


# --- exercise 2a ------------------------------------------------------------------------------------

def test_cohort_properties_both_ways(cohort) -> None:
    assert failed(check.cohort_properties, cohort) == []
    assert failed(check.cohort_properties, plan_cohort(seed=1))[0].startswith("it uses seed 2026")
    fails = failed(check.cohort_properties, plan_cohort(anomalies=replace(Anomalies(**PLAN["anomalies"]), out_of_range=0)))
    assert any(f.startswith("every anomaly share") for f in fails) and any("every kind of anomaly" in f for f in fails)
    assert any("rare condition" in f for f in failed(check.cohort_properties, plan_cohort(rare=0)))
    assert failed(check.cohort_properties, "a cohort")[0].startswith("cohort is a careops.synth Cohort")
    leaked = plan_cohort()
    leaked.patients.loc[0, "SSN"] = "-".join(["123", "45", "6789"])  # a real-looking SSN, built at run time  # noqa: FLY002 -- built at run time for the PHI guard
    assert failed(check.cohort_properties, leaked)[0].startswith("every identifier carries a synthetic marker")


# --- exercise 2b ------------------------------------------------------------------------------------

def _fidelity(min_inclusive: bool = True, by_rows: bool = False, birthday_counts: bool = True):
    def ages(p, as_of):
        b = pd.to_datetime(p["BIRTHDATE"])
        if not birthday_counts:  # year difference only: off by one before the birthday
            return as_of.year - b.dt.year
        before = (b.dt.month > as_of.month) | ((b.dt.month == as_of.month) & (b.dt.day > as_of.day))
        return as_of.year - b.dt.year - before.astype(int)

    def observed(c, t):
        p, age = c.patients, ages(c.patients, c.as_of)
        low = (age >= t.get("min_age", 0)) if min_inclusive else (age > t.get("min_age", -1))
        rng = low & (age < t.get("max_age", 999))
        ids = set(p.loc[rng, "Id"])
        if t["kind"] == "female_share":
            return (p["GENDER"] == "F").mean()
        if t["kind"] == "mean_age":
            return age.mean()
        if t["kind"] == "age_share":
            return rng.mean()
        if t["kind"] == "prevalence":
            rows = c.conditions[(c.conditions["CODE"] == t["code"]) & c.conditions["PATIENT"].isin(ids)]
            return (len(rows) if by_rows else rows["PATIENT"].nunique()) / len(ids)
        o = c.observations
        return o.loc[(o["CODE"] == t["code"]) & o["PATIENT"].isin(ids), "VALUE"].median()

    def fidelity(c, targets):
        rows = [(t["name"], t["value"], float(observed(c, t)), t["tolerance"]) for t in targets]
        df = pd.DataFrame(rows, columns=["name", "target", "observed", "tolerance"])
        df["ok"] = (df["observed"] - df["target"]).abs() <= df["tolerance"] + 1e-9
        return df
    return fidelity


def test_fidelity_both_ways(cohort) -> None:
    assert failed(check.fidelity, _fidelity(), cohort) == []
    assert failed(check.fidelity, _fidelity(min_inclusive=False))[0] == (
        "age_share (65+) is computed right (expected 0.5, got 0.3333333333333333)")
    assert failed(check.fidelity, _fidelity(by_rows=True))[0].startswith("prevalence (hypertension 45+) is computed right")
    assert any(f.startswith("mean_age") for f in failed(check.fidelity, _fidelity(birthday_counts=False)))
    no_ok = lambda c, t: _fidelity()(c, t).drop(columns="ok")
    assert failed(check.fidelity, no_ok)[0].startswith("it returns a DataFrame with the columns")
    def crash(c, t):
        raise NotImplementedError()
    assert failed(check.fidelity, crash) == [NOT_WRITTEN]  # a stub: one line, whatever the criteria
    assert check.fidelity.report(crash).failures[0].got == NOT_WRITTEN


# --- exercise 3 -------------------------------------------------------------------------------------

MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
PATTERNS = [r"\b\d{4}-\d{2}-\d{2}\b", r"\b\d{1,2}[/.]\d{1,2}[/.]\d{4}\b", r"\b\d{8}(?:\d{4}(?:\d{2})?)?\b",
            rf"\b{MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}", rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}\s+\d{{4}}"]


def _deidentify(cap: int = 90, low_zip: bool = True, patterns=PATTERNS, keep_old_birth_year: bool = False):
    def deidentify(x: pd.DataFrame) -> pd.DataFrame:
        age = x["AGE"].astype(int)
        old = age >= cap
        z = x["ZIP"].str.slice(0, 3)
        note = x["NOTE"]
        for p in patterns:
            note = note.str.replace(p, "[DATE]", regex=True, flags=re.IGNORECASE)
        by = x["BIRTHDATE"].str.slice(0, 4).astype(int).astype("Int64")
        return pd.DataFrame({"AGE": age.astype(str).where(~old, "90+"), "BIRTH_YEAR": by if keep_old_birth_year else by.mask(old),
                             "SEX": x["SEX"], "ZIP3": z.where(~(z.isin(LOW_POPULATION_ZIP3) & low_zip), "000"),
                             "ADMIT_YEAR": x["ADMIT_DATE"].str.slice(0, 4).astype(int), "DIAGNOSIS": x["DIAGNOSIS"],
                             "NOTE": note})
    return deidentify


def test_the_practice_extracts_answers_are_the_safe_harbor_rules_worked_out_ahead() -> None:
    """The check compares with data shipped beside the extract; here (trusted) the rules produce that data."""
    extract, answers = check.load_extract(), check.load_extract_answers()
    right = _deidentify()(extract)
    assert list(answers["MRN"]) == list(extract["MRN"])
    assert list(answers["AGE"]) == list(right["AGE"]) and list(answers["ZIP3"]) == list(right["ZIP3"])
    assert list(answers["BIRTH_YEAR"]) == ["" if pd.isna(y) else str(y) for y in right["BIRTH_YEAR"]]
    assert [int(y) for y in answers["ADMIT_YEAR"]] == list(right["ADMIT_YEAR"])
    with pytest.raises(ValueError, match="needs the extract's answers"):
        check.deidentified.report(_deidentify(), extract)


def test_deidentified_both_ways() -> None:
    assert failed(check.deidentified, _deidentify()) == []
    assert failed(check.deidentified, _deidentify(cap=91))[0].startswith("AGE is the age as text, and '90+' from 90 on")
    assert failed(check.deidentified, _deidentify(keep_old_birth_year=True))[0].startswith("BIRTH_YEAR is empty for patients aged 90+")
    assert failed(check.deidentified, _deidentify(low_zip=False))[0].startswith("ZIP3 keeps 3 digits, and 000")
    assert failed(check.deidentified, _deidentify(patterns=PATTERNS[:2]))[0].startswith("no date is left in NOTE")
    assert failed(check.deidentified, _deidentify(patterns=[r".+"]))[0].startswith("the rest of each note is kept")
    keep_mrn = lambda x: _deidentify()(x).assign(NOTE=x["MRN"])
    assert any(f.startswith("no SSN, phone, e-mail or MRN anywhere") for f in failed(check.deidentified, keep_mrn))
    def mutate(x):
        x["AGE"] = 1
        return _deidentify()(x)
    assert failed(check.deidentified, mutate)[0] == "the input extract is left unchanged"
    extra = lambda x: _deidentify()(x).assign(MRN=x["MRN"])
    assert failed(check.deidentified, extra)[0].startswith("exactly the columns AGE")


def _k(df, qis):
    return 0 if df.empty else int(df.groupby(qis, dropna=False).size().min())


def _generalise(bands=True):
    def band(a):
        if a == "90+":
            return a
        a = int(a)
        return "0-17" if a < 18 else "18-44" if a < 45 else "45-64" if a < 65 else "65-89"

    def generalise(d):
        out = d.drop(columns=["AGE", "BIRTH_YEAR"])
        out.insert(0, "AGE_BAND", d["AGE"].map(band) if bands else d["AGE"])
        return out
    return generalise


def test_k_anonymity_and_generalise_both_ways() -> None:
    assert failed(check.k_anonymity_fn, _k) == []
    largest = lambda df, q: int(df.groupby(q).size().max())
    assert len(failed(check.k_anonymity_fn, largest)) == 2
    deid = _deidentify()(check.load_extract())
    assert failed(check.generalised, _generalise(), deid) == []
    fails = failed(check.generalised, _generalise(bands=False), deid)
    assert any(f.startswith("AGE_BAND uses the bands") for f in fails)
    assert any(f.startswith("every (AGE_BAND, SEX, ZIP3) group has at least 5") for f in fails)
    keeps_age = lambda d: _generalise()(d).assign(AGE=d["AGE"])
    assert failed(check.generalised, keeps_age, deid)[0].startswith("exact AGE and BIRTH_YEAR are gone")
    drops = lambda d: _generalise()(d).iloc[5:]
    assert any(f.startswith("no row was dropped") for f in failed(check.generalised, drops, deid))


def test_the_extract_is_5_anonymous_only_after_zip3_and_bands() -> None:
    from careops.phi import k_anonymity

    deid = _deidentify()(check.load_extract())
    assert k_anonymity(_generalise()(deid), check.QUASI_IDENTIFIERS) >= 5
    assert k_anonymity(_generalise()(_deidentify(low_zip=False)(check.load_extract())), check.QUASI_IDENTIFIERS) < 5
    assert k_anonymity(deid, ["AGE", "SEX", "ZIP3"]) < 5


# --- exercise 4 -------------------------------------------------------------------------------------

HL7_TEXT = st.text(alphabet=st.one_of(st.sampled_from("^|&~\\EFSTR"), st.characters()), max_size=12)


@settings(max_examples=300)
@given(family=HL7_TEXT, given_name=HL7_TEXT)
def round_trip(codec, family, given_name):
    assert codec.parse_name(codec.format_name(family, given_name)) == (family, given_name)


@given(family=st.text())
def never_fails(codec, family):
    codec.format_name(family, "x")


@given(family=HL7_TEXT)
def false_alarm(codec, family):
    assert codec.format_name(family, "") == family


def test_property_test_both_ways() -> None:
    assert failed(check.property_test, round_trip) == []
    assert failed(check.property_test, never_fails)[0].startswith("it fails on the legacy helpers")
    assert failed(check.property_test, false_alarm)[0].startswith("it passes on helpers that are correct")
    assert failed(check.property_test, lambda codec: None)[0].startswith("it is a hypothesis test")

    @given(family=st.text())
    def wrong_signature(family):
        pass
    assert any(f.startswith("it can be called as test(codec)") for f in failed(check.property_test, wrong_signature))


def test_legacy_bug_is_real_and_the_fixed_helpers_round_trip() -> None:
    legacy = check.load_legacy_pid()
    assert legacy.parse_name(legacy.format_name("Smith", "Jo")) == ("Smith", "Jo")
    assert legacy.parse_name(legacy.format_name("a^b", "c")) != ("a^b", "c")
    for family, given_name in [("a^b", "c"), ("\\F\\", "|"), ("", ""), ("x&y~z", "\\")]:
        assert check.FixedPid.parse_name(check.FixedPid.format_name(family, given_name)) == (family, given_name)


# --- exercise 5 (live) -------------------------------------------------------------------------------

def _reconcile(feed, acks):
    both = feed[["control_id", "expect"]].reset_index(drop=True).join(acks[["code", "text"]].reset_index(drop=True))
    bad = (both["code"] != both["expect"]) | ((both["code"] != "AA") & (both["text"].fillna("").str.strip() == ""))
    return both[bad]


def test_reconcile_fn_both_ways() -> None:
    assert failed(check.reconcile_fn, _reconcile) == []
    by_id = lambda f, a: f.merge(a, on="control_id").query("code != expect")  # joins resends and empty ids wrongly
    assert [f.split(" (")[0] for f in failed(check.reconcile_fn, by_id)] == [
        "it flags a NAK without a reason", "it flags the wrong kind of NAK",
        "it flags a problem on a message with an empty control id", "a NAK whose text is None counts as having no reason"]
    code_only = lambda f, a: f.reset_index(drop=True)[f["expect"].to_numpy() != a["code"].to_numpy()]
    assert [f.split(" (")[0] for f in failed(check.reconcile_fn, code_only)] == [
        "it flags a NAK without a reason", "a NAK whose text is None counts as having no reason"]
    assert failed(check.reconcile_fn, lambda f, a: None)[0].startswith("it returns a DataFrame")


@pytest.mark.docker
def test_feed_reconciled_against_the_service_in_a_lab() -> None:
    from careops.hl7 import MllpClient
    from careops.lab import Lab
    from careops.synth.hl7 import adt_feed

    feed = adt_feed(generate(60, 7, anomalies=Anomalies(non_ascii_names=0.2)), 300, seed=1)
    with Lab("synthetic-data-test", workdir=check.lab_workdir()) as lab:
        adt = check.start_legacy_adt(lab)
        with MllpClient("127.0.0.1", adt.port(check.ADT_MLLP_PORT), timeout=10) as client:
            acks = pd.DataFrame([{"control_id": c, "code": client.send(m).code, "text": ""}
                                 for c, m in zip(feed["control_id"], feed["message"])])
        # the ACK texts were dropped on purpose: the check must notice, then pass with the real texts
        silent = int((feed["expect"] != "AA").sum())
        assert failed(check.feed_reconciled, feed, acks, adt) == [f"every NAK carries a reason (got {silent})"]
        with MllpClient("127.0.0.1", adt.port(check.ADT_MLLP_PORT), timeout=10) as client:
            texts = [client.send(m).text for m in feed.loc[feed["expect"] != "AA", "message"]]
        acks.loc[feed["expect"] != "AA", "text"] = texts
        assert failed(check.feed_reconciled, feed, acks, adt) == []  # resending changed nothing: all were refused
        assert failed(check.feed_reconciled, feed, acks.iloc[:-5], adt)[0].startswith("one ACK per message of the feed")
        assert any(f.startswith("every message got the answer it should")
                   for f in failed(check.feed_reconciled, feed, acks.assign(code="AA"), adt))
        short = feed.assign(stored=feed["stored"] & (feed.index < 100))  # pretend fewer should have been stored
        assert any(f.startswith("the service stored every valid message exactly once")
                   for f in failed(check.feed_reconciled, short, acks, adt))
        lab.close()
        assert failed(check.lab_is_clean, "synthetic-data-test", 10) == []
    assert failed(check.feed_reconciled, feed, acks, adt)[0].startswith("the service's /stats answers")
