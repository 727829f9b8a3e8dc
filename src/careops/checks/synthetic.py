"""Checks for Module 4 (synthetic data testing). Visible cells call these; hidden tests add cases.

Each check runs the learner's function on small tables whose right answers are
written out here (never computed by a reference implementation the learner
could call), and reports one criterion per rule with a hint.
"""
from __future__ import annotations

import atexit
import json
import re
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from datetime import date
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pandas as pd

from careops import legacy_adt, paths
from careops.polling import eventually
from careops.report import CheckReport, call_learner, learner_check

#: The test plan of exercise 1: the cohort the learner must generate.
COHORT_PLAN: dict[str, Any] = {
    "patients": 400, "seed": 2026, "rare": 100.0, "years": 3,
    "anomalies": {"missing_fields": 0.02, "out_of_range": 0.01, "duplicate_patients": 0.02,
                  "non_ascii_names": 0.05, "boundary_dates": 0.02},
}
FIDELITY_COLUMNS = ["name", "target", "observed", "tolerance", "ok"]
DEID_COLUMNS = ["AGE", "BIRTH_YEAR", "SEX", "ZIP3", "ADMIT_YEAR", "DIAGNOSIS", "NOTE"]
QUASI_IDENTIFIERS = ["AGE_BAND", "SEX", "ZIP3"]
ADT_MLLP_PORT, ADT_HTTP_PORT = legacy_adt.MLLP_PORT, legacy_adt.HTTP_PORT


def lab_dir() -> Path:
    """labs/synthetic-data (the extract, the targets, the legacy PID helpers): the checkout's, or the grader's copy."""
    return paths.lab_asset("synthetic-data")


def load_targets(path: str | Path | None = None) -> list[dict[str, Any]]:
    """The target statistics of exercise 1 (labs/synthetic-data/targets.yaml)."""
    import yaml

    return list(yaml.safe_load(Path(path or lab_dir() / "targets.yaml").read_text(encoding="utf-8")))


def load_extract(path: str | Path | None = None) -> pd.DataFrame:
    """The admissions extract of exercise 2, read as text so ZIP codes keep their leading zeros."""
    df = pd.read_csv(path or lab_dir() / "admissions_extract.csv", dtype=str, keep_default_na=False)
    df["AGE"] = df["AGE"].astype(int)
    return df


def load_legacy_pid() -> ModuleType:
    """The legacy PID-5 helpers with the planted bug, imported from labs/synthetic-data/legacy_pid.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("legacy_pid", lab_dir() / "legacy_pid.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module




# ---------------------------------------------------------------------------------------------
# exercise 1a: a cohort with stated properties

@learner_check
def cohort_properties(cohort: Any) -> CheckReport:
    """The cohort follows the test plan: size, seed, anomalies, rare conditions, synthetic identifiers."""
    from careops.phi import scan_dataframe
    from careops.synth import Cohort

    plan = COHORT_PLAN
    report = CheckReport("Exercise 1a: a cohort for the test plan")
    if not report.check(isinstance(cohort, Cohort), "cohort is a careops.synth Cohort", expected="Cohort",
                        got=type(cohort).__name__, hint="cohort = generate(patients=..., seed=..., ...)"):
        return report
    report.check(cohort.seed == plan["seed"], f"it uses seed {plan['seed']}, so anyone can regenerate it",
                 expected=plan["seed"], got=cohort.seed, hint="generate(..., seed=2026)")
    a = cohort.settings.get("anomalies")
    base = cohort.settings.get("patients")
    report.check(base == plan["patients"], f"{plan['patients']} patients before duplicates", expected=plan["patients"],
                 got=base, hint="patients=400 (duplicates are added on top)")
    report.check(cohort.settings.get("rare") == plan["rare"], "rare conditions are 100 times as common as in life",
                 expected=plan["rare"], got=cohort.settings.get("rare"), hint="rare=100")
    shares = {k: getattr(a, k, None) for k in plan["anomalies"]}
    report.check(shares == plan["anomalies"], "every anomaly share is as the plan says", expected=plan["anomalies"],
                 got=shares, hint="anomalies=Anomalies(missing_fields=0.02, out_of_range=0.01, ...)")
    kinds = set(cohort.anomalies["KIND"])
    want = {"missing_field", "out_of_range", "duplicate_patient", "non_ascii_name", "boundary_date"}
    report.check(want <= kinds, "the cohort contains every kind of anomaly", expected=sorted(want), got=sorted(kinds),
                 hint="an anomaly share of 0 adds none of that kind")
    rare = cohort.conditions["CODE"].isin(["190905008", "58756001", "86044005"])
    report.check(cohort.conditions.loc[rare, "PATIENT"].nunique() >= 3, "at least 3 patients have a rare condition",
                 got=int(cohort.conditions.loc[rare, "PATIENT"].nunique()), hint="raise rare")
    report.check(not cohort.foreign_key_problems(), "every reference between the tables resolves",
                 got=cohort.foreign_key_problems()[:2])
    ids = cohort.patients[["MRN", "SSN", "PHONE", "EMAIL"]]
    scan = scan_dataframe(ids, name="patients", kinds=("ssn", "phone", "email", "mrn"))
    report.check(scan.ok, "every identifier carries a synthetic marker", got=[str(f) for f in scan.phi[:3]],
                 hint="use careops.synth: it only makes SYN-, 999-, 555-01xx and @example.org identifiers")
    return report


# ---------------------------------------------------------------------------------------------
# exercise 1b: fidelity against target statistics

def _tiny_cohort() -> SimpleNamespace:
    """Six patients whose statistics are easy to work out by hand (as of 2026-01-01)."""
    patients = pd.DataFrame({
        "Id": ["p1", "p2", "p3", "p4", "p5", "p6"],
        "BIRTHDATE": ["2016-06-01", "1990-01-01", "1976-01-02", "1960-12-31", "1950-07-01", "1940-03-03"],
        "GENDER": ["F", "M", "F", "F", "M", "M"],
    })  # ages on 2026-01-01: 9, 36, 49 (birthday tomorrow), 65, 75, 85
    conditions = pd.DataFrame({
        "PATIENT": ["p3", "p4", "p4", "p5", "p1", "p4"],
        "ENCOUNTER": ["e3", "e4", "e4", "e5", "e1", "e4b"],
        "CODE": ["59621000", "59621000", "44054006", "44054006", "195967001", "59621000"],
    })
    observations = pd.DataFrame({
        "PATIENT": ["p1", "p1", "p2", "p3", "p4", "p5", "p6", "p2"],
        "CODE": ["8867-4", "8867-4", "8480-6", "8480-6", "8480-6", "8480-6", "8480-6", "8867-4"],
        "VALUE": [100.0, 90.0, 110.0, 120.0, 150.0, 140.0, 1300.0, 70.0],
    })
    return SimpleNamespace(patients=patients, conditions=conditions, observations=observations,
                           as_of=date(2026, 1, 1))


TINY_TARGETS: list[tuple[dict[str, Any], float, str]] = [
    ({"name": "women", "kind": "female_share", "value": 0.5, "tolerance": 0.01}, 0.5,
     "share of patients whose GENDER is F"),
    ({"name": "mean age", "kind": "mean_age", "value": 60.0, "tolerance": 1.0}, (9 + 36 + 49 + 65 + 75 + 85) / 6,
     "age in completed years on as_of: a birthday tomorrow does not count yet"),
    ({"name": "65+", "kind": "age_share", "min_age": 65, "value": 0.5, "tolerance": 0.0}, 0.5,
     "min_age is inclusive: a patient who turned 65 counts"),
    ({"name": "children", "kind": "age_share", "max_age": 18, "value": 0.2, "tolerance": 0.01}, 1 / 6,
     "max_age is exclusive"),
    ({"name": "hypertension 45+", "kind": "prevalence", "code": "59621000", "min_age": 45, "value": 0.5,
      "tolerance": 0.05}, 0.5, "prevalence counts patients, not condition rows: p4 has two rows"),
    ({"name": "adult systolic", "kind": "vital_median", "code": "8480-6", "min_age": 18, "value": 140.0,
      "tolerance": 5.0}, 140.0, "median of the VALUE of that LOINC code, over patients in the age range"),
    ({"name": "child heart rate", "kind": "vital_median", "code": "8867-4", "max_age": 18, "value": 80.0,
      "tolerance": 10.0}, 95.0, "vital_median with max_age 18: only p1's two readings"),
]


@learner_check
def fidelity(fn: Callable[[Any, list[dict[str, Any]]], pd.DataFrame], cohort: Any = None) -> CheckReport:
    """Exercise 1b: fidelity(cohort, targets) computes each statistic and says whether it is within tolerance."""
    report = CheckReport("Exercise 1b: fidelity against target statistics")
    tiny = _tiny_cohort()
    targets = [t for t, _, _ in TINY_TARGETS]
    got, err = call_learner(fn, tiny, [dict(t) for t in targets])
    if not report.check(err is None, "it runs on a small cohort", got=err,
                        hint="fidelity(cohort, targets) returns a DataFrame; see the error above"):
        return report
    if not report.check(isinstance(got, pd.DataFrame) and list(got.columns) == FIDELITY_COLUMNS,
                        "it returns a DataFrame with the columns name, target, observed, tolerance, ok",
                        expected=FIDELITY_COLUMNS, got=list(getattr(got, "columns", [])) or type(got).__name__,
                        hint="pd.DataFrame(rows, columns=[...])"):
        return report
    report.check(list(got["name"]) == [t["name"] for t in targets], "one row per target, in the targets' order",
                 expected=[t["name"] for t in targets], got=list(got["name"]))
    if len(got) == len(targets):
        for (t, want, hint), (_, row) in zip(TINY_TARGETS, got.iterrows()):
            obs = pd.to_numeric(pd.Series([row["observed"]]), errors="coerce").iloc[0]
            report.check(abs(obs - want) < 1e-6, f"{t['kind']} ({t['name']}) is computed right",
                         expected=round(want, 4), got=row["observed"], hint=hint)
        oks = [bool(v) for v in got["ok"]]
        want_ok = [abs(w - t["value"]) <= t["tolerance"] + 1e-9 for t, w, _ in TINY_TARGETS]
        report.check(oks == want_ok, "ok says whether |observed - target| <= tolerance (the boundary counts as ok)",
                     expected=want_ok, got=oks)
    if cohort is not None:
        real, err = call_learner(fn, cohort, load_targets())
        report.check(err is None and isinstance(real, pd.DataFrame) and len(real) == len(load_targets()),
                     "it runs on your exercise cohort with the course's targets", got=err)
    return report


# ---------------------------------------------------------------------------------------------
# exercise 2: de-identification and k-anonymity

def _note_kept(original: str, result: str) -> bool:
    """The words of a note that are not dates are still there."""
    from careops.phi.deid import redact_dates

    pieces = [re.sub(r"^[\s,.;:()]+|[\s,.;:()]+$", "", p) for p in redact_dates(original).split("[DATE]")]
    return all(p in result for p in pieces if len(p) > 3)


def load_extract_answers(path: str | Path | None = None) -> pd.DataFrame:
    """The practice extract's right AGE, BIRTH_YEAR, ZIP3 and ADMIT_YEAR, worked out ahead (one row per input row,
    as text; labs/synthetic-data/admissions_extract.answers.csv). The check compares with these instead of running
    the Safe Harbor rules itself: those rules are the exercise."""
    return pd.read_csv(path or lab_dir() / "admissions_extract.answers.csv", dtype=str, keep_default_na=False)


@learner_check
def deidentified(fn: Callable[[pd.DataFrame], pd.DataFrame], extract: pd.DataFrame | None = None,
                 answers: pd.DataFrame | None = None) -> CheckReport:
    """Exercise 2a: deidentify(extract) follows Safe Harbor on the visible extract.

    Another ``extract`` needs its ``answers`` (:func:`load_extract_answers`' columns) beside it.
    """
    from careops.phi import scan_dataframe
    from careops.phi.deid import redact_dates

    if answers is None:
        if extract is not None:
            raise ValueError("deidentified(fn, extract) needs the extract's answers too (see load_extract_answers)")
        answers = load_extract_answers()
    report = CheckReport("Exercise 2a: a Safe Harbor de-identification")
    src = load_extract() if extract is None else extract
    before = src.copy()
    out, err = call_learner(fn, src)
    if not report.check(err is None and isinstance(out, pd.DataFrame), "it returns a DataFrame", got=err or type(out).__name__,
                        hint="deidentify(extract) -> pd.DataFrame"):
        return report
    report.check(src.equals(before), "the input extract is left unchanged", hint="work on extract.copy()")
    report.check(list(out.columns) == DEID_COLUMNS, "exactly the columns AGE, BIRTH_YEAR, SEX, ZIP3, ADMIT_YEAR, "
                 "DIAGNOSIS, NOTE (direct identifiers are gone)", expected=DEID_COLUMNS, got=list(out.columns),
                 hint="drop MRN, NAME, SSN, PHONE, EMAIL; build the new columns from BIRTHDATE, ZIP, ADMIT_DATE")
    if list(out.columns) != DEID_COLUMNS or len(out) != len(src):
        report.fail("one output row per input row, in the same order", hint="do not filter or sort rows")
        return report
    want_age = list(answers["AGE"])
    got_age = [str(v) for v in out["AGE"]]
    bad = [i for i, (w, g) in enumerate(zip(want_age, got_age)) if w != g]
    report.check(not bad, "AGE is the age as text, and '90+' from 90 on", got=[got_age[i] for i in bad[:3]],
                 expected=[want_age[i] for i in bad[:3]], hint="89 stays '89'; 90 and over become '90+'")
    old = (answers["AGE"] == "90+").to_numpy()
    birth_old = out.loc[old, "BIRTH_YEAR"]
    report.check(birth_old.isna().all(), "BIRTH_YEAR is empty for patients aged 90+ (the year would reveal the age)",
                 got=birth_old.dropna().tolist()[:3], hint="use None or pd.NA where the age is 90 or more")
    want_by = [int(y) for y in answers.loc[~old, "BIRTH_YEAR"]]
    got_by = pd.to_numeric(out.loc[~old, "BIRTH_YEAR"], errors="coerce").tolist()
    report.check(want_by == got_by, "BIRTH_YEAR is the year of birth for everyone younger",
                 hint="the first four characters of an ISO date, as a number")
    want_ay = [int(y) for y in answers["ADMIT_YEAR"]]
    report.check(pd.to_numeric(out["ADMIT_YEAR"], errors="coerce").tolist() == want_ay, "ADMIT_YEAR is the admission year",
                 hint="dates become years")
    want_zip = list(answers["ZIP3"])
    got_zip = [str(z) for z in out["ZIP3"]]
    bad = [i for i, (w, g) in enumerate(zip(want_zip, got_zip)) if w != g]
    report.check(not bad, "ZIP3 keeps 3 digits, and 000 for the low-population areas",
                 expected=[want_zip[i] for i in bad[:3]], got=[got_zip[i] for i in bad[:3]],
                 hint="LOW_POPULATION_ZIP3 lists the 17 areas of 20,000 people or fewer")
    notes = [str(n) for n in out["NOTE"]]
    left = [n for n in notes if redact_dates(n) != n]
    report.check(not left, "no date is left in NOTE", got=left[:2],
                 hint="ISO 2024-03-05, US 03/05/2024, 05.03.2024, 'May 1, 2025', '9th of June 2024', HL7 20240305")
    lost = [o for o, n in zip(src["NOTE"], notes) if not _note_kept(o, n)]
    report.check(not lost, "the rest of each note is kept", got=lost[:2], hint="replace only the dates, with [DATE]")
    scan = scan_dataframe(out.astype(str), name="deidentified", kinds=("ssn", "phone", "email", "mrn"))
    report.check(not scan.findings, "no SSN, phone, e-mail or MRN anywhere in the result",
                 got=[str(f) for f in scan.findings[:3]])
    report.check(out["SEX"].tolist() == src["SEX"].tolist() and out["DIAGNOSIS"].tolist() == src["DIAGNOSIS"].tolist(),
                 "SEX and DIAGNOSIS are kept as they are", hint="they are not identifiers; the analysis needs them")
    return report


@learner_check
def k_anonymity_fn(fn: Callable[[pd.DataFrame, list[str]], int]) -> CheckReport:
    """Exercise 2b: k_anonymity(df, quasi_identifiers) is the size of the smallest group."""
    report = CheckReport("Exercise 2b: k-anonymity")
    df = pd.DataFrame({"AGE_BAND": ["18-44", "18-44", "18-44", "45-64", "45-64", "90+"],
                       "SEX": ["F", "F", "M", "F", "F", "F"], "ZIP3": ["021"] * 5 + ["000"]})
    cases = [
        (df, ["SEX"], 1, "one column: F appears 5 times, M once"),
        (df.iloc[:5], ["AGE_BAND", "SEX"], 1, "(18-44, M) is alone"),
        (df.iloc[[0, 1, 3, 4]], ["AGE_BAND", "SEX", "ZIP3"], 2, "groups of equal values over all the columns"),
        (df.iloc[[0, 1, 3, 4]], ["ZIP3"], 4, "a single group holds every row"),
    ]
    for frame, qis, want, hint in cases:
        got, err = call_learner(fn, frame.copy(), list(qis))
        report.check(err is None and got == want, f"k over {qis} of a {len(frame)}-row table is {want}",
                     expected=want, got=err or got, hint=hint)
    return report


@learner_check
def generalised(fn: Callable[[pd.DataFrame], pd.DataFrame], deidentified_extract: pd.DataFrame,
                k: int = 5) -> CheckReport:
    """Exercise 2b: the generalised extract is k-anonymous over AGE_BAND, SEX, ZIP3 (checked with careops.phi)."""
    from careops.phi import k_anonymity

    report = CheckReport(f"Exercise 2b: the shared extract is {k}-anonymous")
    out, err = call_learner(fn, deidentified_extract.copy())
    if not report.check(err is None and isinstance(out, pd.DataFrame), "generalise returns a DataFrame",
                        got=err or type(out).__name__):
        return report
    report.check(set(QUASI_IDENTIFIERS) <= set(out.columns), "it has the columns AGE_BAND, SEX and ZIP3",
                 got=list(out.columns))
    report.check(not {"AGE", "BIRTH_YEAR"} & set(out.columns), "exact AGE and BIRTH_YEAR are gone",
                 got=sorted({"AGE", "BIRTH_YEAR"} & set(out.columns)), hint="an exact age re-identifies the 104-year-old")
    report.check(len(out) == len(deidentified_extract), "no row was dropped", expected=len(deidentified_extract),
                 got=len(out), hint="generalise the values; the bands given are enough")
    bands = {"0-17", "18-44", "45-64", "65-89", "90+"}
    if "AGE_BAND" in out:
        report.check(set(out["AGE_BAND"].astype(str)) <= bands, "AGE_BAND uses the bands 0-17, 18-44, 45-64, 65-89, 90+",
                     got=sorted(set(out["AGE_BAND"].astype(str)) - bands))
    if set(QUASI_IDENTIFIERS) <= set(out.columns):
        kk = k_anonymity(out, QUASI_IDENTIFIERS)
        report.check(kk >= k, f"every (AGE_BAND, SEX, ZIP3) group has at least {k} patients", expected=f">= {k}",
                     got=kk, hint="careops.phi.equivalence_classes(df, [...]) shows the smallest groups")
    return report


# ---------------------------------------------------------------------------------------------
# exercise 3: a property-based test that finds the planted bug

_UNESCAPE = re.compile(r"\\([EFSTR])\\")
_RAW = {"E": "\\", "F": "|", "S": "^", "T": "&", "R": "~"}


class FixedPid:
    """The PID-5 helpers done right: split the field into components first, then unescape each."""

    @staticmethod
    def escape(text: str) -> str:
        return "".join({"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"}.get(c, c) for c in text)

    @staticmethod
    def unescape(text: str) -> str:
        return _UNESCAPE.sub(lambda m: _RAW[m.group(1)], text)

    @classmethod
    def format_name(cls, family: str, given: str) -> str:
        return cls.escape(family) + "^" + cls.escape(given)

    @classmethod
    def parse_name(cls, field: str) -> tuple[str, str]:
        parts = field.split("^")
        return cls.unescape(parts[0]), cls.unescape(parts[1]) if len(parts) > 1 else ""


def _repeatable(test: Callable[..., Any]) -> None:
    """Make a hypothesis test's runs repeatable and leave no files behind, keeping its own settings.

    No randomness (the grader sees what the learner saw), no example database (the grader's disk is
    read-only), no deadline (a busy laptop is not a bug). Other tests in the same kernel are not touched.
    """
    from hypothesis import HealthCheck, settings

    own = getattr(test, "_hypothesis_internal_use_settings", None)
    if own is not None:
        test._hypothesis_internal_use_settings = settings(  # type: ignore[attr-defined]
            own, database=None, derandomize=True, deadline=None,
            suppress_health_check=[*own.suppress_health_check, HealthCheck.too_slow])


def catches(test: Callable[[Any], None], codec: Any) -> tuple[bool, str]:
    """Run a property test against one implementation: (did it fail?, how)."""
    _repeatable(test)
    try:
        test(codec)
    except TypeError as exc:
        if "positional argument" in str(exc) or "unexpected keyword" in str(exc):
            raise
        return True, f"{type(exc).__name__}: {str(exc)[:200]}"
    except Exception as exc:  # noqa: BLE001 - the property failed: that is what we look for
        return True, f"{type(exc).__name__}: {str(exc)[:200]}"
    return False, "passed"


@learner_check
def property_test(test: Callable[[Any], None]) -> CheckReport:
    """Exercise 3: the property test passes on correct helpers and fails on the legacy ones."""
    report = CheckReport("Exercise 3: a property-based test finds the planted bug")
    report.check(hasattr(test, "hypothesis"), "it is a hypothesis test (decorated with @given)",
                 hint="@given(family=st.text(), given_name=st.text()) above def test_name_round_trip(codec, family, given_name)")
    try:
        failed, how = catches(test, FixedPid)
    except TypeError as exc:
        report.fail(f"it can be called as test(codec): {exc}", hint="codec is the first parameter and is not drawn by @given")
        return report
    report.check(not failed, "it passes on helpers that are correct (no false alarm)", got=how,
                 hint="compare parse_name(format_name(family, given)) with (family, given)")
    failed, how = catches(test, load_legacy_pid())
    report.check(failed, "it fails on the legacy helpers: it finds the planted bug", got=how,
                 hint="let hypothesis draw text that contains the HL7 delimiters and the escape character \\")
    return report


# ---------------------------------------------------------------------------------------------
# exercise 4: the live legacy service and 1,000 messages

def lab_workdir() -> Path:
    """A fresh folder holding a copy of the legacy service, readable by the lab's uid 1000."""
    work = Path(tempfile.mkdtemp(prefix="careops-synthetic-data-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    work.chmod(0o755)
    service = paths.lab_asset("legacy-adt")
    for name in ("adt_service.py", "adt.ini"):
        shutil.copy(service / name, work / name)
        (work / name).chmod(0o644)
    return work


def start_legacy_adt(lab: Any, *, name: str = legacy_adt.CONTAINER, timeout: float = 60.0) -> Any:
    """Run ADT-Legacy v1 in the lab (lab-runtime image, read-only, non-root) and wait until /health answers."""
    container = lab.run(
        name=name,
        command=["python3", "/app/adt_service.py", "--config", "/app/adt.ini", "--db", "/tmp/adt/adt.db",
                 "--log", "/tmp/adt/adt.log"],
        binds={lab.workdir: "/app"}, ports=[ADT_MLLP_PORT, ADT_HTTP_PORT], user="1000", read_only=True,
        memory="256m", cpus=1.0, pids=64, labels={"hospital.data": "synthetic", "hospital.owner": "module-4"},
    )
    eventually(lambda: service_get(container, legacy_adt.HEALTH_PATH), until=lambda r: r.get("status") == "ok",
               timeout=timeout, what=f"ADT-Legacy answering {legacy_adt.HEALTH_PATH}")
    return container


def service_get(container: Any, path: str) -> dict[str, Any]:
    """GET a JSON path of the service's status port through its published 127.0.0.1 port."""
    url = f"http://127.0.0.1:{container.port(ADT_HTTP_PORT)}{path}"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def _stored_names(container: Any, mrns: list[str]) -> dict[str, str]:
    code = ("import json,sqlite3,sys; c=sqlite3.connect('/tmp/adt/adt.db'); m=json.loads(sys.argv[1]); "
            "print(json.dumps(dict(c.execute('SELECT mrn, family FROM patients WHERE mrn IN (%s)' "
            "% ','.join('?'*len(m)), m).fetchall())))")
    res = container.exec(["python3", "-c", code, json.dumps(mrns)], timeout=30)
    return json.loads(res.output.strip().splitlines()[-1])


def _reconcile_cases() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seven-message feed (a resend and two empty control ids included) and the right ACKs for it."""
    feed = pd.DataFrame({
        "control_id": ["SYN-MSG-1", "SYN-MSG-2", "SYN-BAD-3", "", "SYN-MSG-1", "SYN-BAD-6", ""],
        "expect": ["AA", "AA", "AE", "AR", "AA", "AR", "AR"],
    })
    acks = pd.DataFrame({
        "control_id": list(feed["control_id"]),
        "code": ["AA", "AA", "AE", "AR", "AA", "AR", "AR"],
        "text": ["", "", "PID-3 (patient MRN) is missing", "MSH-10 (message control id) is empty",
                 "duplicate of an already processed message; not stored again", "unsupported message type",
                 "MSH-10 (message control id) is empty"],
    })
    return feed, acks


@learner_check
def reconcile_fn(reconcile: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]) -> CheckReport:
    """Exercise 4a: reconcile(feed, acks) lists exactly the messages whose answer is wrong."""
    report = CheckReport("Exercise 4a: reconcile a feed with its ACKs")
    feed, acks = _reconcile_cases()
    got, err = call_learner(reconcile, feed.copy(), acks.copy())
    if not report.check(err is None and isinstance(got, pd.DataFrame), "it returns a DataFrame",
                        got=err or type(got).__name__, hint="reconcile(feed, acks) -> pd.DataFrame"):
        return report
    report.check(got.empty, "a run where every answer is right has no problem", got=len(got),
                 hint="compare acks['code'] with feed['expect'] row by row; a resend answered AA is right")
    if not report.check("control_id" in got.columns, "the result has a control_id column", got=list(got.columns)):
        return report
    cases = [
        ("a valid message refused", 1, {"code": "AE", "text": "internal error"}, "expected AA, got AE"),
        ("an invalid message accepted", 2, {"code": "AA", "text": ""}, "expected AE, got AA: it was stored"),
        ("a NAK without a reason", 5, {"text": ""}, "AR but the text is empty: the sender cannot tell anyone why"),
        ("the wrong kind of NAK", 3, {"code": "AE"}, "expected AR, got AE"),
        ("a problem on a message with an empty control id", 3, {"code": "AA", "text": ""},
         "match rows by position, not by control id"),
    ]
    for what, row, change, hint in cases:
        bad = acks.copy()
        for col, value in change.items():
            bad.loc[row, col] = value
        found, err = call_learner(reconcile, feed.copy(), bad)
        ids = list(found["control_id"]) if isinstance(found, pd.DataFrame) and "control_id" in found else None
        report.check(ids == [feed["control_id"].iloc[row]], f"it flags {what} (and nothing else)",
                     expected=[feed["control_id"].iloc[row]], got=err or ids, hint=hint)
    missing_text = acks.copy()
    missing_text["text"] = missing_text["text"].astype(object)
    missing_text.loc[2, "text"] = None
    found, err = call_learner(reconcile, feed.copy(), missing_text)
    ids = list(found["control_id"]) if isinstance(found, pd.DataFrame) and "control_id" in found else None
    report.check(ids == ["SYN-BAD-3"], "a NAK whose text is None counts as having no reason", got=err or ids,
                 hint="fill missing text with '' before you test it")
    return report


@learner_check
def feed_reconciled(feed: pd.DataFrame, acks: pd.DataFrame, container: Any) -> CheckReport:
    """Exercise 4b: every valid message stored once, every invalid one NAKed with a reason, in the live service."""
    report = CheckReport("Exercise 4b: 1,000 synthetic messages through the live service")
    if not report.check(isinstance(acks, pd.DataFrame) and {"control_id", "code", "text"} <= set(acks.columns),
                        "acks is a DataFrame with the columns control_id, code and text",
                        got=list(getattr(acks, "columns", [])) or type(acks).__name__,
                        hint="one row per message sent: the control id you sent, ack.code, ack.text"):
        return report
    report.check(len(acks) == len(feed) and list(acks["control_id"]) == list(feed["control_id"]),
                 "one ACK per message of the feed, in the feed's order", expected=len(feed), got=len(acks),
                 hint="send every row of feed, resends included, in order")
    if len(acks) == len(feed):
        codes = acks["code"].astype(str).tolist()
        wrong = [i for i, (w, g) in enumerate(zip(feed["expect"], codes)) if w != g]
        report.check(not wrong, "every message got the answer it should (AA, or AE/AR for a defect)",
                     got=[f"{feed['control_id'].iloc[i]}: expected {feed['expect'].iloc[i]}, got {codes[i]}"
                          for i in wrong[:3]])
        naks = [i for i, c in enumerate(codes) if c != "AA"]
        silent = [i for i in naks if not str(acks["text"].iloc[i] or "").strip()]
        report.check(bool(naks) and not silent, "every NAK carries a reason", got=len(silent))
    stats, err = call_learner(service_get, container, "/stats")
    if report.check(err is None, "the service's /stats answers", got=err, hint="is the adt container still running?"):
        want = int(feed["stored"].sum())
        report.check(stats["messages"] == want, "the service stored every valid message exactly once",
                     expected=want, got=stats["messages"], hint="resends must not be stored again; defects not at all")
        stored = feed[feed["stored"]]
        report.check(stats["patients"] == stored["mrn"].nunique(), "one patient row per MRN that was admitted",
                     expected=int(stored["mrn"].nunique()), got=stats["patients"])
        special = {}
        for _, row in stored[stored["event"] == "A01"].iterrows():
            family = row["message"].split("\r")[2].split("|")[5].split("^")[0]
            if not family.isascii():
                special[row["mrn"]] = family
        sample = sorted(special)[:50]
        names, err = call_learner(_stored_names, container, sample)
        report.check(err is None and bool(sample) and all(names.get(m) == special[m] for m in sample),
                     "names with non-ASCII characters are stored unchanged", got=err or f"{len(sample)} checked")
    return report


@learner_check
def lab_is_clean(lab: str = "synthetic-data", timeout: float = 30.0) -> CheckReport:
    """Nothing of the lab is left after lab.close()."""
    from careops.checks.orientation import clean_up_report

    return clean_up_report(lab, timeout=timeout, hint=f"lab.close(), or careops labs reset {lab}")


__all__ = ["COHORT_PLAN", "FixedPid", "catches", "cohort_properties", "deidentified", "feed_reconciled", "fidelity",
           "generalised", "k_anonymity_fn", "lab_dir", "lab_is_clean", "lab_workdir", "load_extract",
           "load_extract_answers", "load_legacy_pid", "load_targets", "property_test", "reconcile_fn", "service_get", "start_legacy_adt"]
