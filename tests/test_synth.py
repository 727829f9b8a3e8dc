"""careops.synth: reproducible, realistic, synthetic-only cohorts; FHIR bundles and HL7 feeds that hold up.

The HL7 feed is proven against the real legacy service (a subprocess, as in
test_legacy_adt.py); the FHIR checks are proven both ways on tampered bundles.
"""
from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from careops.errors import CareOpsError
from careops.hl7 import MllpClient
from careops.phi import scan_dataframe
from careops.synth import Anomalies, Cohort, age_on, generate
from careops.synth import codes as C
from careops.synth.export import read_hl7_file, write_csv, write_fhir, write_hl7
from careops.synth.fhir import patient_bundles, validate_bundle, value_set_problems
from careops.synth.hl7 import DEFECTS, adt_feed, adt_messages

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def clean() -> Cohort:
    return generate(600, 11)


@pytest.fixture(scope="module")
def messy() -> Cohort:
    return generate(500, 12, anomalies=Anomalies.edge_cases(), rare=200)


@pytest.fixture(scope="module")
def big() -> Cohort:
    return generate(4000, 13)


# --- reproducibility ----------------------------------------------------------------------------

def _bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_csv(tmp_path: Path) -> None:
    a = Anomalies.edge_cases()
    write_csv(generate(150, 99, anomalies=a), tmp_path / "one")
    write_csv(generate(150, 99, anomalies=a), tmp_path / "two")
    write_csv(generate(150, 100, anomalies=a), tmp_path / "other")
    one, two, other = _bytes(tmp_path / "one"), _bytes(tmp_path / "two"), _bytes(tmp_path / "other")
    assert set(one) == {"patients.csv", "encounters.csv", "conditions.csv", "observations.csv", "medications.csv",
                        "anomalies.csv"}
    assert one == two
    assert all(one[name] != other[name] for name in one)  # another seed changes every table
    generate(150, 99, anomalies=a).to_csv(tmp_path / "method")  # the Cohort method writes the same files
    assert _bytes(tmp_path / "method") == one


def test_same_seed_gives_identical_fhir_and_hl7(tmp_path: Path) -> None:
    for run in ("a", "b"):
        c = generate(20, 5, anomalies=Anomalies.edge_cases())
        write_fhir(c, tmp_path / run / "fhir")
        write_hl7(c, tmp_path / run / "hl7")
    assert _bytes(tmp_path / "a" / "fhir") == _bytes(tmp_path / "b" / "fhir")
    assert _bytes(tmp_path / "a" / "hl7") == _bytes(tmp_path / "b" / "hl7")


def test_the_clock_does_not_matter() -> None:
    """as_of is an argument, never today: a cohort generated next year is the same cohort."""
    c = generate(30, 1)
    assert c.as_of == date(2026, 1, 1)
    assert generate(30, 1, as_of=date(2020, 6, 30)).patients["BIRTHDATE"].max() <= "2020-06-30"


# --- structure and identifiers -----------------------------------------------------------------

@pytest.mark.parametrize("which", ["clean", "messy"])
def test_foreign_keys_always_resolve(which: str, request: pytest.FixtureRequest) -> None:
    c = request.getfixturevalue(which)
    assert c.foreign_key_problems() == []
    assert c.patients["Id"].is_unique and c.encounters["Id"].is_unique and c.patients["MRN"].is_unique


def test_foreign_key_check_reports_broken_references(clean: Cohort) -> None:
    broken = copy.copy(clean)
    broken.conditions = clean.conditions.copy()
    broken.conditions.loc[0, "ENCOUNTER"] = "no-such-encounter"
    broken.observations = clean.observations.copy()
    broken.observations.loc[0, "PATIENT"] = "no-such-patient"
    problems = broken.foreign_key_problems()
    assert any(p.startswith("conditions.ENCOUNTER: 1 row(s)") for p in problems), problems
    assert any(p.startswith("observations.PATIENT: 1 row(s)") for p in problems), problems


def test_every_identifier_carries_a_synthetic_marker(messy: Cohort) -> None:
    p = messy.patients
    ids = p[["MRN", "SSN", "PHONE", "EMAIL"]]
    report = scan_dataframe(ids, kinds=("ssn", "phone", "email", "mrn"))
    assert report.ok, str(report)
    assert p["MRN"].str.fullmatch(r"SYN-\d{6}").all()
    filled = p[p["SSN"] != ""]
    assert filled["SSN"].str.fullmatch(r"999-\d{2}-\d{4}").all()
    assert p.loc[p["PHONE"] != "", "PHONE"].str.fullmatch(r"\d{3}-555-01\d{2}").all()
    assert p.loc[p["EMAIL"] != "", "EMAIL"].str.endswith("@example.org").all()


def test_codes_come_from_the_value_sets(messy: Cohort) -> None:
    assert set(messy.conditions["CODE"]) <= set(C.CONDITION_CODES)
    assert set(messy.medications["CODE"]) <= set(C.MEDICATIONS)
    assert set(messy.medications["REASONCODE"]) <= set(C.CONDITION_CODES)
    assert set(messy.encounters["CODE"]) <= set(C.ENCOUNTER_CODES)
    units = messy.observations.groupby("CODE")["UNITS"].unique()
    assert {code: list(u) for code, u in units.items()} == {v.code: [v.unit] for v in C.VITALS}
    assert {"8867-4", "9279-1", "8310-5", "8302-2", "29463-7", "39156-5", "8480-6", "8462-4", "2708-6"} == set(units.index)


# --- realism -------------------------------------------------------------------------------------

def test_age_and_sex_follow_the_population_table(big: Cohort) -> None:
    ages = big.ages()
    for (low, high), (share, female) in zip(C.AGE_BANDS, C.AGE_SEX_TABLE):
        in_band = (ages >= low) & (ages < high)
        assert abs(in_band.mean() - share) < 0.025, (low, high, in_band.mean(), share)
    women = (big.patients["GENDER"] == "F").mean()
    assert 0.48 < women < 0.55


def test_condition_prevalence_rises_with_age(big: Cohort) -> None:
    ages = pd.Series(big.ages().to_numpy(), index=big.patients["Id"])
    def prevalence(code: str, low: int, high: int) -> float:
        ids = set(ages[(ages >= low) & (ages < high)].index)
        return len(ids & set(big.conditions.loc[big.conditions["CODE"] == code, "PATIENT"])) / len(ids)
    assert prevalence("59621000", 65, 200) > 2 * prevalence("59621000", 18, 45)
    assert prevalence("44054006", 45, 200) > 3 * prevalence("44054006", 0, 30)
    assert prevalence("59621000", 0, 5) == 0.0


def test_vitals_depend_on_age_and_conditions_and_stay_in_range(big: Cohort) -> None:
    age = pd.Series(big.ages().to_numpy(), index=big.patients["Id"])
    o = big.observations.assign(AGE=big.observations["PATIENT"].map(age))
    for v in C.VITALS:
        values = o.loc[o["CODE"] == v.code, "VALUE"]
        assert values.between(v.low, v.high).all(), v.code
    sbp = o[(o["CODE"] == "8480-6") & (o["AGE"] >= 18)]
    assert np.corrcoef(sbp["AGE"], sbp["VALUE"])[0, 1] > 0.3
    hr = o[o["CODE"] == "8867-4"]
    assert hr.loc[hr["AGE"] < 3, "VALUE"].median() > hr.loc[hr["AGE"] >= 18, "VALUE"].median() + 20
    htn = set(big.conditions.loc[big.conditions["CODE"] == "59621000", "PATIENT"])
    adult = sbp.assign(HTN=sbp["PATIENT"].isin(htn))
    assert adult.loc[adult["HTN"], "VALUE"].median() > adult.loc[~adult["HTN"], "VALUE"].median() + 10
    # BMI = weight / height^2 within rounding, per encounter
    wide = o.pivot_table(index="ENCOUNTER", columns="CODE", values="VALUE")
    bmi = wide["29463-7"] / (wide["8302-2"] / 100) ** 2
    assert (bmi - wide["39156-5"]).abs().max() < 0.3
    # obesity is a finding exactly for adults whose BMI reached 30
    obese = set(big.conditions.loc[big.conditions["CODE"] == C.OBESITY.code, "PATIENT"])
    measured = set(o.loc[(o["CODE"] == "39156-5") & (o["VALUE"] >= 30) & (o["AGE"] >= 18), "PATIENT"])
    assert obese == measured and obese


def test_encounters_happen_over_time_and_inpatient_stays_are_lognormal(big: Cohort) -> None:
    e = big.encounters
    start = pd.to_datetime(e["START"])
    stop = pd.to_datetime(e["STOP"])
    assert (stop > start).all()
    assert start.min() >= pd.Timestamp("2023-01-01", tz="UTC") - pd.Timedelta(days=2)
    assert start.max() < pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(days=1)
    counts = e["ENCOUNTERCLASS"].value_counts()
    assert counts["wellness"] == 3 * len(big.patients)  # yearly, over 3 years
    assert counts["outpatient"] > counts["emergency"] > counts["inpatient"] > 0
    stay = (stop - start)[e["ENCOUNTERCLASS"] == "inpatient"].dt.total_seconds() / 86400
    assert 2.5 < stay.median() < 5 and stay.max() > 2 * stay.median()  # a long right tail
    birth = e["PATIENT"].map(dict(zip(big.patients["Id"], big.patients["BIRTHDATE"])))
    assert (e["START"].str.slice(0, 10) >= birth).all()


# --- knobs -----------------------------------------------------------------------------------------

def test_each_anomaly_kind_is_listed_and_really_there(messy: Cohort) -> None:
    n = 500
    a = Anomalies.edge_cases()
    kinds = messy.anomalies["KIND"].value_counts()
    assert kinds["duplicate_patient"] == round(a.duplicate_patients * n) == len(messy.patients) - n
    assert kinds["non_ascii_name"] == round(a.non_ascii_names * n)
    assert kinds["missing_field"] == round(a.missing_fields * n)
    assert kinds["boundary_date"] == round(a.boundary_dates * n)
    p = messy.patients.set_index("Id")
    for row in messy.anomalies.itertuples():
        if row.KIND == "non_ascii_name":
            assert not (p.at[row.ROW_ID, "FIRST"] + p.at[row.ROW_ID, "LAST"]).isascii()
        elif row.KIND == "missing_field":
            assert p.at[row.ROW_ID, row.COLUMN] == ""
        elif row.KIND == "boundary_date":
            assert p.at[row.ROW_ID, "BIRTHDATE"] == row.DETAIL.rsplit(": ", 1)[1]
        elif row.KIND == "duplicate_patient":
            original = row.DETAIL.rsplit(" ", 1)[1]
            assert p.at[row.ROW_ID, "BIRTHDATE"] == p.at[original, "BIRTHDATE"]
            assert p.at[row.ROW_ID, "LAST"].strip().lower() == p.at[original, "LAST"].strip().lower()
            assert p.at[row.ROW_ID, "MRN"] != p.at[original, "MRN"]
        elif row.KIND == "out_of_range":
            obs = messy.observations.loc[int(row.ROW_ID)]
            v = C.VITAL_BY_CODE[obs["CODE"]]
            assert not v.low <= obs["VALUE"] <= v.high, row.DETAIL
    boundary = set(messy.anomalies.loc[messy.anomalies["KIND"] == "boundary_date", "DETAIL"])
    assert {"turns 90 on as_of: 1936-01-01", "turns 90 tomorrow (still 89): 1936-01-02", "leap day: 2000-02-29"} <= boundary
    ages = dict(zip(messy.patients["BIRTHDATE"], messy.ages()))
    assert ages["1936-01-01"] == 90 and ages["1936-01-02"] == 89 and ages["2026-01-01"] == 0


def test_out_of_range_values_only_where_listed(messy: Cohort) -> None:
    listed = set(messy.anomalies.loc[messy.anomalies["KIND"] == "out_of_range", "ROW_ID"].astype(int))
    o = messy.observations
    outside = {i for i, code, value in zip(o.index, o["CODE"], o["VALUE"])
               if not C.VITAL_BY_CODE[code].low <= value <= C.VITAL_BY_CODE[code].high}
    assert outside == listed and listed


def test_rare_knob() -> None:
    rare = [c.code for c in C.CONDITIONS if c.rare]
    assert not generate(800, 3, rare=0).conditions["CODE"].isin(rare).any()
    assert generate(800, 3, rare=200).conditions["CODE"].isin(rare).sum() >= 3


@pytest.mark.parametrize("kwargs, message", [
    ({"patients": 0, "seed": 1}, "patients must be a whole number of at least 1, got 0"),
    ({"patients": 10, "seed": -1}, "seed must be a non-negative whole number, got -1"),
    ({"patients": 10, "seed": 1, "years": 0}, "years of history must be between 1 and 20, got 0"),
    ({"patients": 10, "seed": 1, "rare": -2}, "rare must be a multiplier of 0 or more"),
])
def test_bad_arguments_say_what_was_expected(kwargs: dict, message: str) -> None:
    with pytest.raises(CareOpsError, match=message) as err:
        generate(**kwargs)
    assert err.value.fix


def test_anomaly_shares_are_checked() -> None:
    with pytest.raises(CareOpsError, match=r"anomaly share out_of_range must be a number between 0 and 1, got 1.5"):
        Anomalies(out_of_range=1.5)
    assert not Anomalies().any and Anomalies.edge_cases().any


def test_age_on_counts_completed_years() -> None:
    ages = age_on(pd.Series(["2000-01-01", "2000-01-02", "2000-02-29", "", None]), date(2026, 1, 1))
    assert ages.iloc[:3].tolist() == [26, 25, 25] and ages.iloc[3:].isna().all()


# --- FHIR ------------------------------------------------------------------------------------------

def test_bundles_of_a_clean_cohort_validate(clean: Cohort) -> None:
    bundles = list(patient_bundles(generate(60, 21)))
    assert len(bundles) == 60
    for b in bundles:
        assert validate_bundle(b) == [], b["id"]
    types = {e["resource"]["resourceType"] for b in bundles for e in b["entry"]}
    assert types == {"Patient", "Encounter", "Condition", "Observation", "MedicationRequest"}
    panels = [e["resource"] for b in bundles for e in b["entry"]
              if e["resource"]["resourceType"] == "Observation" and e["resource"]["code"]["coding"][0]["code"] == "85354-9"]
    assert panels and all({c["code"]["coding"][0]["code"] for c in p["component"]} == {"8480-6", "8462-4"} for p in panels)


def test_bundles_flag_the_planted_out_of_range_values() -> None:
    cohort = generate(120, 12, anomalies=Anomalies(out_of_range=0.01, non_ascii_names=0.1, missing_fields=0.1))
    planted = (cohort.anomalies["KIND"] == "out_of_range").sum()
    flagged = [b for b in patient_bundles(cohort) if validate_bundle(b)]
    problems = [p for b in flagged for p in validate_bundle(b)]
    assert len(problems) == planted > 0
    assert all("outside the physiological range" in p for p in problems)
    assert not [p for b in flagged for p in validate_bundle(b, ranges=False)]


def _bundle() -> dict:
    return next(patient_bundles(generate(3, 4)))


def _first(bundle: dict, rtype: str) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype
                and ("valueQuantity" in e["resource"] or rtype != "Observation"))


@pytest.mark.parametrize("tamper, expected", [
    (lambda b: _first(b, "Patient").update(gender="woman"), "gender 'woman' is not in AdministrativeGender"),
    (lambda b: _first(b, "Patient")["identifier"][0].update(value="MRN-1"), "MRN must carry the synthetic marker SYN-"),
    (lambda b: _first(b, "Observation")["code"]["coding"][0].update(code="banana"), "LOINC code ['banana'] is not a course vital sign"),
    (lambda b: _first(b, "Observation")["valueQuantity"].update(code="[degF]"), "expected http://unitsofmeasure.org|"),
    (lambda b: _first(b, "Encounter")["subject"].update(reference="urn:uuid:nobody"), "subject reference urn:uuid:nobody does not resolve"),
    (lambda b: b.update(type="batch"), "Bundle.type is 'batch', expected 'transaction'"),
    (lambda b: _first(b, "Patient").update(birthDate="31/12/1999"), "FHIR R4B structure: entry.0.resource"),
])
def test_validation_catches_tampered_bundles(tamper, expected: str) -> None:
    b = _bundle()
    assert validate_bundle(b) == []
    tamper(b)
    problems = validate_bundle(b)
    assert any(expected in p for p in problems), problems


def test_real_looking_identifiers_fail_the_value_set_check() -> None:
    b = _bundle()
    patient = _first(b, "Patient")
    next(i for i in patient["identifier"] if i["system"] == C.SSN_SYSTEM)["value"] = "-".join(["123", "45", "6789"])  # noqa: FLY002 -- built at run time for the PHI guard
    patient["telecom"] = [{"system": "phone", "value": "-".join(["212", "555", "2368"])},  # noqa: FLY002 -- built at run time for the PHI guard
                          {"system": "email", "value": "pat" + "@" + "hospital-mail.net"}]
    problems = value_set_problems(b)
    assert any("SSN must be synthetic" in p for p in problems)
    assert any("phone must be synthetic" in p for p in problems)
    assert any("e-mail must be @example.org" in p for p in problems)


# --- HL7 ------------------------------------------------------------------------------------------

def test_adt_messages_are_well_formed_and_synthetic(tmp_path: Path) -> None:
    c = generate(15, 8, anomalies=Anomalies(non_ascii_names=0.3))
    msgs = adt_messages(c)
    assert len(msgs) == 2 * len(c.encounters)
    for m in msgs:
        segs = m.split("\r")
        assert [s[:3] for s in segs] == ["MSH", "EVN", "PID", "PV1"]
        assert segs[2].split("|")[3].startswith("SYN-")
    write_hl7(c, tmp_path)
    assert read_hl7_file(tmp_path / "adt.hl7") == msgs


def test_feed_mixes_every_defect_and_resends() -> None:
    feed = adt_feed(generate(40, 9), 600, seed=3)
    assert len(feed) == 600
    assert set(feed["defect"]) - {""} == set(DEFECTS)
    valid = feed[feed["defect"] == ""]
    assert (valid["expect"] == "AA").all() and (feed.loc[feed["defect"] != "", "expect"] != "AA").all()
    resends = valid[~valid["stored"]]
    assert len(resends) > 0 and resends["control_id"].isin(valid.loc[valid["stored"], "control_id"]).all()
    assert feed.loc[feed["stored"], "control_id"].is_unique
    with pytest.raises(CareOpsError, match="invalid must be a share between 0 and 1, got 2"):
        adt_feed(generate(5, 1), 10, invalid=2)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_feed_expectations_hold_against_the_real_legacy_service(tmp_path: Path) -> None:
    """Every expectation of the feed is what ADT-Legacy v1 really answers, and `stored` is what it stores."""
    mllp, http = _free_port(), _free_port()
    service = REPO / "labs" / "legacy-adt"
    proc = subprocess.Popen(
        [sys.executable, str(service / "adt_service.py"), "--config", str(service / "adt.ini"),
         "--db", str(tmp_path / "adt.db"), "--log", str(tmp_path / "adt.log"), "--host", "127.0.0.1",
         "--http-host", "127.0.0.1", "--mllp-port", str(mllp), "--http-port", str(http)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # it answers or exits (seen at once); the deadline only catches a hang: a busy machine is slower, not failing
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{http}/health", timeout=2).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "legacy-adt did not start"
                time.sleep(0.05)
        feed = adt_feed(generate(60, 10, anomalies=Anomalies(non_ascii_names=0.3, boundary_dates=0.1)), 400, seed=4)
        with MllpClient("127.0.0.1", mllp, timeout=10) as client:
            answers = [client.send(m) for m in feed["message"]]
        wrong = [(r.control_id, r.defect, r.expect, a.code, a.text) for r, a in zip(feed.itertuples(), answers)
                 if a.code != r.expect or (a.code != "AA" and not a.text)]
        assert wrong == []
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{http}/stats", timeout=3).read())
        assert stats["messages"] == int(feed["stored"].sum())
        assert stats["patients"] == feed.loc[feed["stored"], "mrn"].nunique()
    finally:
        proc.terminate()
        proc.wait(10)
