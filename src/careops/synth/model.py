"""The synthetic cohort: Synthea-style tables, realistic by construction, reproducible by seed.

Why not just random rows: tests pass on naive fakes ("Test Patient", age 40,
heart rate 70) and then production meets a 97-year-old with a leap-day birth
date, a name with a diacritic and a temperature typed in Fahrenheit. The
generator draws ages and sexes from a population table, conditions from
age-banded prevalence, vitals that depend on age and conditions, and
encounters over time; knobs add rare conditions and data anomalies on
purpose, and every anomaly is listed in ``Cohort.anomalies`` so a test can
target it. One seed gives byte-identical output; every identifier carries a
synthetic marker (SSN 999-, phone 555-01xx, @example.org, MRN SYN-).
"""
from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from careops.errors import CareOpsError
from careops.synth import codes as C
from careops.report import theme

DEFAULT_AS_OF = date(2026, 1, 1)
DAY = 86400
_EPOCH = date(1970, 1, 1)

PATIENT_COLUMNS = ["Id", "MRN", "BIRTHDATE", "DEATHDATE", "SSN", "FIRST", "LAST", "GENDER",
                   "ADDRESS", "CITY", "STATE", "ZIP", "PHONE", "EMAIL"]
ENCOUNTER_COLUMNS = ["Id", "START", "STOP", "PATIENT", "ENCOUNTERCLASS", "CODE", "DESCRIPTION"]
CONDITION_COLUMNS = ["START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"]
OBSERVATION_COLUMNS = ["DATE", "PATIENT", "ENCOUNTER", "CATEGORY", "CODE", "DESCRIPTION", "VALUE", "UNITS", "TYPE"]
MEDICATION_COLUMNS = ["START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "REASONCODE"]
ANOMALY_COLUMNS = ["KIND", "TABLE", "ROW_ID", "COLUMN", "DETAIL"]
TABLES = ("patients", "encounters", "conditions", "observations", "medications")

#: Names that break ASCII-only code paths (encodings, sorting, fixed-width fields).
NON_ASCII_FIRST = ("José", "Zoë", "Łukasz", "Björn", "Søren", "François", "Chloé", "Ðorđe", "Nguyễn", "Siobhán",
                   "Ayşe", "Jürgen", "Małgorzata", "Øystein", "Renée", "Íñigo")
NON_ASCII_LAST = ("Müller", "Ñúñez", "Đặng", "Østergård", "Kowalczyk-Żak", "Gonçalves", "Åberg", "Çelik",
                  "Schrödinger", "Lefèvre", "Ó Súilleabháin", "Þórsdóttir", "王", "Αλεξίου")
MISSABLE = ("PHONE", "EMAIL", "ADDRESS", "ZIP", "SSN")


@dataclass(frozen=True)
class Anomalies:
    """Shares of deliberately broken data, each between 0 and 1 (all 0: clean data).

    ``missing_fields``: patients with one blank optional field (phone, e-mail, address, ZIP or SSN);
    ``out_of_range``: vital-sign values outside the physiological range (unit mix-ups, typos);
    ``duplicate_patients``: patients registered a second time under a new MRN;
    ``non_ascii_names``: patients whose first or last name is not ASCII;
    ``boundary_dates``: birth dates on edges (leap day, 31 Dec/1 Jan, the age-90 line, born on ``as_of``, 1900-01-01).
    """

    missing_fields: float = 0.0
    out_of_range: float = 0.0
    duplicate_patients: float = 0.0
    non_ascii_names: float = 0.0
    boundary_dates: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise CareOpsError(
                    f"anomaly share {f.name} must be a number between 0 and 1, got {value!r}",
                    fix=f"e.g. Anomalies({f.name}=0.02) for 2 % of the rows",
                )

    @classmethod
    def edge_cases(cls) -> Anomalies:
        """A preset with every kind of anomaly at a few per cent: for tests that must meet them all."""
        return cls(missing_fields=0.03, out_of_range=0.01, duplicate_patients=0.02,
                   non_ascii_names=0.05, boundary_dates=0.03)

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self))


@dataclass
class Cohort:
    """The tables of one generated cohort, plus the list of anomalies put in on purpose."""

    patients: pd.DataFrame
    encounters: pd.DataFrame
    conditions: pd.DataFrame
    observations: pd.DataFrame
    medications: pd.DataFrame
    anomalies: pd.DataFrame
    seed: int
    as_of: date
    settings: dict[str, object] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        """The five clinical tables by name (as in Synthea's CSV export)."""
        return {name: getattr(self, name) for name in TABLES}

    def ages(self) -> pd.Series:
        """Each patient's age in completed years at ``as_of`` (NaN where the birth date is missing)."""
        return age_on(self.patients["BIRTHDATE"], self.as_of)

    def foreign_key_problems(self) -> list[str]:
        """Every reference that does not resolve (empty: all do)."""
        problems = []
        pids = set(self.patients["Id"])
        eids = set(self.encounters["Id"])
        enc_patient = dict(zip(self.encounters["Id"], self.encounters["PATIENT"]))
        for name in ("encounters", "conditions", "observations", "medications"):
            t = getattr(self, name)
            bad = t.loc[~t["PATIENT"].isin(pids), "PATIENT"]
            if len(bad):
                problems.append(f"{name}.PATIENT: {len(bad)} row(s) name no patient, e.g. {bad.iloc[0]}")
            if "ENCOUNTER" in t:
                bad = t.loc[~t["ENCOUNTER"].isin(eids), "ENCOUNTER"]
                if len(bad):
                    problems.append(f"{name}.ENCOUNTER: {len(bad)} row(s) name no encounter, e.g. {bad.iloc[0]}")
                wrong = t["ENCOUNTER"].map(enc_patient) != t["PATIENT"]
                if wrong.any():
                    problems.append(f"{name}: {int(wrong.sum())} row(s) belong to another patient's encounter")
        return problems

    def summary(self) -> pd.DataFrame:
        """Rows per table and anomalies per kind: what a test report should show first."""
        rows = [{"what": f"{name} rows", "count": len(t)} for name, t in self.tables().items()]
        for kind, n in self.anomalies["KIND"].value_counts().sort_index().items():
            rows.append({"what": f"anomaly: {kind}", "count": int(n)})
        return pd.DataFrame(rows)

    def to_csv(self, out: str | Path) -> list[Path]:
        """Write one CSV per table (patients.csv, encounters.csv, ...) and anomalies.csv into the folder ``out``;
        returns the paths written."""
        path = output_folder(out)
        written = []
        for name, table in {**self.tables(), "anomalies": self.anomalies}.items():
            target = path / f"{name}.csv"
            table.to_csv(target, index=False, lineterminator="\n", encoding="utf-8")
            written.append(target)
        return written

    def __repr__(self) -> str:
        return (f"<Cohort seed={self.seed} as_of={self.as_of}: {len(self.patients)} patients, "
                f"{len(self.encounters)} encounters, {len(self.anomalies)} anomalies>")

    def _repr_html_(self) -> str:
        table = theme.table(([r.what, r.count] for r in self.summary().itertuples()), header=["what", "count"])
        head = theme.para(theme.esc(f"seed {self.seed}, as of {self.as_of}; every identifier is synthetic"))
        return theme.card("Synthetic cohort", head + table)


# ---------------------------------------------------------------------------------------------
# helpers

def output_folder(out: str | Path) -> Path:
    """The folder a cohort's files are written to, created if needed (a file there is a CareOpsError)."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise CareOpsError(f"output path {path} is a file, expected a folder", fix="pass a folder with --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CareOpsError(f"cannot create the output folder {path}: {exc.strerror}",
                           fix="choose a folder you can write to") from None
    return path


def _days(d: date) -> int:
    return (d - _EPOCH).days


def _iso_dates(days: np.ndarray) -> np.ndarray:
    return np.datetime_as_string(np.asarray(days, dtype="int64").astype("datetime64[D]"), unit="D")


def _iso_times(seconds: np.ndarray) -> np.ndarray:
    s = np.datetime_as_string(np.asarray(seconds, dtype="int64").astype("datetime64[s]"), unit="s")
    return np.char.add(s.astype(str), "Z")


def age_on(birthdates: pd.Series, as_of: date) -> pd.Series:
    """Completed years between ISO birth dates and ``as_of`` (NaN for missing dates)."""
    b = pd.to_datetime(birthdates, errors="coerce")
    before_birthday = (b.dt.month > as_of.month) | ((b.dt.month == as_of.month) & (b.dt.day > as_of.day))
    age = as_of.year - b.dt.year - before_birthday.astype(int)
    return age.where(b.notna())


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(16 * n)
    return [str(uuid.UUID(bytes=raw[i * 16:(i + 1) * 16], version=4)) for i in range(n)]


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum()) or "patient"


def _faker(seed: int):
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    return fake


# ---------------------------------------------------------------------------------------------
# the generator

def generate(patients: int, seed: int, *, as_of: date = DEFAULT_AS_OF, years: int = 3, rare: float = 1.0,
             anomalies: Anomalies | None = None, progress: bool = False) -> Cohort:
    """Generate a cohort of ``patients`` synthetic patients with ``years`` of history before ``as_of``.

    ``rare`` multiplies the prevalence of the rare conditions (e.g. 200 to see a few in 1,000 patients);
    ``anomalies`` adds broken data on purpose. Same arguments, same tables, byte for byte.
    """
    if not isinstance(patients, (int, np.integer)) or isinstance(patients, bool) or patients < 1:
        raise CareOpsError(f"patients must be a whole number of at least 1, got {patients!r}",
                           fix="e.g. generate(patients=500, seed=42)")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise CareOpsError(f"seed must be a non-negative whole number, got {seed!r}",
                           fix="pick any fixed number, e.g. seed=2026: the same seed gives the same cohort")
    if not 1 <= years <= 20:
        raise CareOpsError(f"years of history must be between 1 and 20, got {years!r}", fix="e.g. years=3")
    if rare < 0:
        raise CareOpsError(f"rare must be a multiplier of 0 or more, got {rare!r}",
                           fix="1 keeps real-world prevalence; 100 makes rare conditions 100 times as common")
    anomalies = anomalies or Anomalies()
    from careops.progress import Progress

    shown = Progress("synthetic cohort", total=6, unit="step", enabled=progress)
    rng = np.random.default_rng(int(seed))
    fake = _faker(int(seed))
    anomaly_rows: list[dict[str, str]] = []

    shown.step("patients")
    people = _people(rng, fake, int(patients), as_of, anomalies, anomaly_rows)
    shown.step("conditions each patient has")
    has, cond_codes = _condition_matrix(rng, people, rare)
    shown.step("encounters")
    enc, enc_patient = _encounters(rng, people, has, as_of, years)
    shown.step("conditions and medications")
    conditions, medications = _conditions(rng, people, has, cond_codes, enc, enc_patient)
    shown.step("observations")
    observations = _observations(rng, people, has, cond_codes, enc, anomalies, anomaly_rows)
    enc.attrs.clear()  # generation bookkeeping; the table is what Synthea exports
    # obesity follows measured BMI: a finding at the encounter where BMI first reached 30
    conditions = _obesity(conditions, observations, people)
    shown.step("the patient table")
    pats = _patient_table(people)
    pats = _duplicates(rng, pats, anomalies, anomaly_rows)
    shown.close()
    anomalies_df = pd.DataFrame(anomaly_rows, columns=ANOMALY_COLUMNS)
    return Cohort(
        patients=pats, encounters=enc, conditions=conditions, observations=observations,
        medications=medications, anomalies=anomalies_df, seed=int(seed), as_of=as_of,
        settings={"patients": int(patients), "years": years, "rare": rare, "anomalies": anomalies},
    )


def _people(rng: np.random.Generator, fake, n: int, as_of: date, anomalies: Anomalies,
            anomaly_rows: list[dict[str, str]]) -> pd.DataFrame:
    shares = np.array([s for s, _ in C.AGE_SEX_TABLE])
    female = np.array([f for _, f in C.AGE_SEX_TABLE])
    band = rng.choice(len(C.AGE_BANDS), size=n, p=shares / shares.sum())
    low = np.array([b[0] for b in C.AGE_BANDS])[band]
    high = np.array([b[1] for b in C.AGE_BANDS])[band]
    age = rng.integers(low, high)
    last = band == len(C.AGE_BANDS) - 1  # 80+: few centenarians
    age[last] = 80 + np.minimum(rng.exponential(6.0, last.sum()), 24).astype(int)
    sex = np.where(rng.random(n) < female[band], "F", "M")
    today = _days(as_of)
    birth = today - np.floor(age * 365.25 + rng.random(n) * 365.0).astype(np.int64) - 1
    birth = np.minimum(birth, today)
    ids = _uuids(rng, n)
    # boundary birth dates replace the sampled ones before anything depends on age
    n_boundary = round(anomalies.boundary_dates * n)
    if n_boundary:
        edges = [
            ("leap day", date(2000, 2, 29)), ("leap day", date(1960, 2, 29)),
            ("last day of a year", date(1999, 12, 31)), ("first day of a year", date(1970, 1, 1)),
            ("turns 90 on as_of", _years_before(as_of, 90)),
            ("turns 90 tomorrow (still 89)", date.fromordinal(_years_before(as_of, 90).toordinal() + 1)),
            ("born on as_of", as_of), ("default date 1900-01-01", date(1900, 1, 1)),
        ]
        for k, i in enumerate(rng.choice(n, n_boundary, replace=False)):
            what, when = edges[k % len(edges)]
            birth[i] = _days(when)
            anomaly_rows.append({"KIND": "boundary_date", "TABLE": "patients", "ROW_ID": ids[i],
                                 "COLUMN": "BIRTHDATE", "DETAIL": f"{what}: {when.isoformat()}"})
    first = [fake.first_name_female() if s == "F" else fake.first_name_male() for s in sex]
    last_names = [fake.last_name() for _ in range(n)]
    n_non_ascii = round(anomalies.non_ascii_names * n)
    for k, i in enumerate(rng.choice(n, n_non_ascii, replace=False) if n_non_ascii else []):
        if k % 3 != 2:  # first name, last name, or both
            first[i] = NON_ASCII_FIRST[int(rng.integers(len(NON_ASCII_FIRST)))]
        if k % 3 != 1:
            last_names[i] = NON_ASCII_LAST[int(rng.integers(len(NON_ASCII_LAST)))]
        anomaly_rows.append({"KIND": "non_ascii_name", "TABLE": "patients", "ROW_ID": ids[i],
                             "COLUMN": "FIRST LAST", "DETAIL": "name with characters outside ASCII"})
    address = [fake.street_address() for _ in range(n)]
    city = [fake.city() for _ in range(n)]
    state = [fake.state_abbr(include_territories=False) for _ in range(n)]
    zips = [fake.zipcode() for _ in range(n)]
    ssn_serial = rng.choice(10**6, size=n, replace=n > 10**6)
    ssn = [f"999-{s // 10**4:02d}-{s % 10**4:04d}" for s in ssn_serial]
    area = rng.integers(201, 990, n)
    line = rng.integers(0, 100, n)
    phone = [f"{a}-555-01{x:02d}" for a, x in zip(area, line)]
    email = [f"{_ascii(f)}.{_ascii(la)}{i}@example.org" for i, (f, la) in enumerate(zip(first, last_names), 1)]
    people = pd.DataFrame({
        "Id": ids, "MRN": [f"SYN-{i:06d}" for i in range(1, n + 1)], "BIRTH_DAY": birth, "SSN": ssn,
        "FIRST": first, "LAST": last_names, "GENDER": sex, "ADDRESS": address, "CITY": city, "STATE": state,
        "ZIP": zips, "PHONE": phone, "EMAIL": email,
    })
    people["AGE"] = age_on(pd.Series(_iso_dates(people["BIRTH_DAY"].to_numpy())), as_of).astype(int)
    n_missing = round(anomalies.missing_fields * n)
    for k, i in enumerate(rng.choice(n, n_missing, replace=False) if n_missing else []):
        col = MISSABLE[k % len(MISSABLE)]
        people.loc[i, col] = ""
        anomaly_rows.append({"KIND": "missing_field", "TABLE": "patients", "ROW_ID": ids[i],
                             "COLUMN": col, "DETAIL": f"{col} left blank"})
    return people


def _years_before(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year - years)
    except ValueError:  # 29 Feb in a year that has none
        return d.replace(year=d.year - years, day=28)


def _condition_matrix(rng: np.random.Generator, people: pd.DataFrame, rare: float) -> tuple[np.ndarray, list[str]]:
    band = np.array([C.age_band_index(int(a)) for a in people["AGE"]])
    prev = np.array([c.prevalence for c in C.CONDITIONS]).T  # bands x conditions
    scale = np.array([rare if c.rare else 1.0 for c in C.CONDITIONS])
    p = np.clip(prev[band] * scale, 0.0, 1.0)
    has = rng.random(p.shape) < p
    codes = [c.code for c in C.CONDITIONS]
    # comorbidity: diabetes raises the chance of hypertension and hyperlipidemia
    dm, htn, hld = codes.index("44054006"), codes.index("59621000"), codes.index("55822004")
    has[:, htn] |= has[:, dm] & (rng.random(len(people)) < 0.3)
    has[:, hld] |= has[:, dm] & (rng.random(len(people)) < 0.3)
    return has, codes


def _encounters(rng: np.random.Generator, people: pd.DataFrame, has: np.ndarray, as_of: date,
                years: int) -> tuple[pd.DataFrame, np.ndarray]:
    n = len(people)
    today = _days(as_of)
    win_start = np.maximum(people["BIRTH_DAY"].to_numpy(), today - 365 * years)
    win_len = np.maximum(today - win_start, 1)
    chronic = has.sum(axis=1)
    age = people["AGE"].to_numpy()
    counts = {
        "wellness": np.full(n, years),
        "outpatient": rng.poisson(years * (0.4 + 0.6 * chronic)),
        "emergency": rng.poisson(years * 0.06 * (1 + 0.5 * chronic)),
        "inpatient": rng.poisson(years * (0.01 + 0.002 * np.maximum(age - 50, 0) + 0.02 * chronic)),
    }
    parts = []
    for kind, k in counts.items():
        who = np.repeat(np.arange(n), k)
        if kind == "wellness":  # one per year of the window, spread evenly
            slot = np.concatenate([np.arange(c) for c in k]) if len(who) else np.array([], dtype=int)
            frac = (slot + rng.random(len(who))) / years
        else:
            frac = rng.random(len(who))
        day = win_start[who] + np.floor(frac * win_len[who]).astype(np.int64)
        day = np.minimum(day, today - 1)
        day = np.maximum(day, people["BIRTH_DAY"].to_numpy()[who])
        if kind in ("wellness", "outpatient"):
            start = day * DAY + rng.integers(8 * 3600, 17 * 3600, len(who))
            stop = start + rng.integers(15, 46, len(who)) * 60
        elif kind == "emergency":
            start = day * DAY + rng.integers(0, DAY, len(who))
            stop = start + rng.integers(3600, 8 * 3600, len(who))
        else:  # inpatient: length of stay is lognormal (median 3.5 days, long right tail)
            start = day * DAY + rng.integers(0, DAY, len(who))
            stay = np.clip(np.ceil(rng.lognormal(np.log(3.5), 0.6, len(who))), 1, 60).astype(np.int64)
            stop = start + stay * DAY + rng.integers(-4 * 3600, 4 * 3600, len(who))
        parts.append(pd.DataFrame({"who": who, "kind": kind, "start": start, "stop": stop}))
    e = pd.concat(parts, ignore_index=True).sort_values(["who", "start", "kind"], kind="stable").reset_index(drop=True)
    code = e["kind"].map(lambda k: C.ENCOUNTER_TYPES[k][0])
    enc = pd.DataFrame({
        "Id": _uuids(rng, len(e)),
        "START": _iso_times(e["start"].to_numpy()),
        "STOP": _iso_times(e["stop"].to_numpy()),
        "PATIENT": people["Id"].to_numpy()[e["who"].to_numpy()],
        "ENCOUNTERCLASS": e["kind"].to_numpy(),
        "CODE": code.to_numpy(),
        "DESCRIPTION": code.map(C.ENCOUNTER_CODES).to_numpy(),
    })
    enc.attrs["who"] = e["who"].to_numpy()
    enc.attrs["start"] = e["start"].to_numpy()
    return enc, e["who"].to_numpy()


def _conditions(rng: np.random.Generator, people: pd.DataFrame, has: np.ndarray, codes: list[str],
                enc: pd.DataFrame, enc_patient: np.ndarray):
    # first encounter row of each patient and how many they have: diagnose at one of them
    first_row = np.searchsorted(enc_patient, np.arange(len(people)), side="left")
    n_enc = np.bincount(enc_patient, minlength=len(people))
    who, ci = np.nonzero(has)
    row = first_row[who] + np.floor(rng.random(len(who)) * n_enc[who]).astype(np.int64)
    start = pd.Series(enc["START"].to_numpy()[row]).str.slice(0, 10).to_numpy()
    cond = pd.DataFrame({
        "START": start, "STOP": "", "PATIENT": people["Id"].to_numpy()[who],
        "ENCOUNTER": enc["Id"].to_numpy()[row], "CODE": np.array(codes)[ci],
        "DESCRIPTION": [C.CONDITION_BY_CODE[codes[i]].display for i in ci],
    })
    meds = cond[cond["CODE"].map(lambda c: C.CONDITION_BY_CODE[c].medication is not None)].copy()
    med_code = meds["CODE"].map(lambda c: C.CONDITION_BY_CODE[c].medication)
    medications = pd.DataFrame({
        "START": meds["START"].to_numpy(), "STOP": "", "PATIENT": meds["PATIENT"].to_numpy(),
        "ENCOUNTER": meds["ENCOUNTER"].to_numpy(), "CODE": med_code.to_numpy(),
        "DESCRIPTION": med_code.map(C.MEDICATIONS).to_numpy(), "REASONCODE": meds["CODE"].to_numpy(),
    })
    return cond.reset_index(drop=True), medications.reset_index(drop=True)


def _observations(rng: np.random.Generator, people: pd.DataFrame, has: np.ndarray, codes: list[str],
                  enc: pd.DataFrame, anomalies: Anomalies,
                  anomaly_rows: list[dict[str, str]]) -> pd.DataFrame:
    """Vitals at every wellness, emergency and inpatient encounter, depending on age, sex and conditions."""
    n = len(people)
    flag = {code: has[:, codes.index(code)] for code in ("59621000", "44054006", "13645005", "49436004")}
    # per-patient baselines: a height percentile and a BMI offset that persist across visits
    z_height = rng.normal(0, 1, n)
    bmi_offset = rng.normal(0, 1, n)
    sel = enc["ENCOUNTERCLASS"].isin(["wellness", "emergency", "inpatient"]).to_numpy()
    who = np.asarray(enc.attrs["who"])[sel]
    m = len(who)
    day = np.asarray(enc.attrs["start"])[sel] // DAY
    age = np.clip((day - people["BIRTH_DAY"].to_numpy()[who]) / 365.25, 0, 120)
    female = (people["GENDER"].to_numpy()[who] == "F")
    acute = np.isin(enc["ENCOUNTERCLASS"].to_numpy()[sel], ["emergency", "inpatient"])
    htn, dm, copd, af = (flag[k][who] for k in ("59621000", "44054006", "13645005", "49436004"))

    # height: a growth curve for children, adult mean by sex, shrinking a little after 60
    ages = [0, 1, 2, 5, 10, 15, 18, 60, 100]
    h_f = np.interp(age, ages, [50, 74, 86, 108, 138, 160, 163, 163, 157])
    h_m = np.interp(age, ages, [51, 76, 87, 110, 138, 170, 176, 176, 170])
    height = np.where(female, h_f, h_m) * (1 + 0.04 * z_height[who])
    # BMI: children ~16-21, adults rise with age until 65; diabetes and hypertension add weight
    bmi = np.interp(age, [0, 2, 6, 12, 18, 40, 65, 100], [15, 16.5, 15.5, 18, 21.5, 26.5, 28.5, 25])
    bmi = bmi + (0.8 + 4.0 * (age >= 18)) * bmi_offset[who] + 4.5 * dm + 2.0 * htn
    bmi = np.clip(bmi + rng.normal(0, 0.4, m), C.VITAL_BY_CODE["39156-5"].low, C.VITAL_BY_CODE["39156-5"].high)
    # clip and round height and weight first, then derive BMI from them, so BMI = kg / m^2 always holds
    height = np.round(np.clip(height, C.VITAL_BY_CODE["8302-2"].low, C.VITAL_BY_CODE["8302-2"].high), 1)
    weight = np.round(np.clip(bmi * (height / 100) ** 2, C.VITAL_BY_CODE["29463-7"].low,
                              C.VITAL_BY_CODE["29463-7"].high), 1)
    bmi = weight / (height / 100) ** 2
    hr = 72 + 60 * np.exp(-age / 3.5) + rng.normal(0, 8, m) + 12 * af + 15 * acute
    rr = 15 + 25 * np.exp(-age / 4) + rng.normal(0, 1.5, m) + 4 * copd + 3 * acute
    temp = 36.8 + rng.normal(0, 0.25, m) + acute * np.abs(rng.normal(0.5, 0.8, m))
    spo2 = 99 - rng.gamma(1.2, 0.8, m) - 4.5 * copd - 2 * acute
    sys_ = np.where(age < 18, 90 + 1.5 * age, 102 + 0.4 * age) + 16 * htn + 5 * dm + rng.normal(0, 11, m)
    dia = 0.55 * sys_ + 8 + rng.normal(0, 6, m)
    dia = np.minimum(dia, sys_ - 15)
    values = {"8302-2": height, "29463-7": weight, "39156-5": bmi, "8867-4": hr, "9279-1": rr,
              "8310-5": temp, "2708-6": spo2, "8480-6": sys_, "8462-4": dia}
    frames = []
    enc_ids = enc["Id"].to_numpy()[sel]
    dates = enc["START"].to_numpy()[sel]
    pids = people["Id"].to_numpy()[who]
    for v in C.VITALS:
        val = np.round(np.clip(values[v.code], v.low, v.high), v.decimals)
        frames.append(pd.DataFrame({"DATE": dates, "PATIENT": pids, "ENCOUNTER": enc_ids, "CATEGORY": "vital-signs",
                                    "CODE": v.code, "DESCRIPTION": v.display, "VALUE": val, "UNITS": v.unit,
                                    "TYPE": "numeric", "_order": np.arange(m)}))
    obs = pd.concat(frames, ignore_index=True).sort_values(["_order"], kind="stable").drop(columns="_order")
    obs = obs.reset_index(drop=True)
    n_bad = round(anomalies.out_of_range * len(obs))
    if n_bad:
        mistakes = {  # what really happens: units mixed up, a decimal point lost, a sensor fault
            "8310-5": ("temperature typed in Fahrenheit", lambda x: np.round(x * 9 / 5 + 32, 1)),
            "8302-2": ("height typed in metres", lambda x: np.round(x / 100, 2)),
            "29463-7": ("weight typed in grams", lambda x: np.round(x * 1000, 0)),
            "8867-4": ("heart rate with an extra digit", lambda x: x * 10),
            "2708-6": ("sensor fault: SpO2 of 0", lambda x: x * 0),
            "8480-6": ("systolic with an extra digit", lambda x: x * 10),
        }
        eligible = obs.index[obs["CODE"].isin(list(mistakes))].to_numpy()
        for i in np.sort(rng.choice(eligible, min(n_bad, len(eligible)), replace=False)):
            what, fn = mistakes[obs.at[i, "CODE"]]
            obs.at[i, "VALUE"] = float(fn(obs.at[i, "VALUE"]))
            anomaly_rows.append({"KIND": "out_of_range", "TABLE": "observations", "ROW_ID": str(int(i)),
                                 "COLUMN": "VALUE", "DETAIL": f"{obs.at[i, 'CODE']}: {what}"})
    return obs


def _obesity(conditions: pd.DataFrame, observations: pd.DataFrame, people: pd.DataFrame) -> pd.DataFrame:
    bmi = observations[(observations["CODE"] == "39156-5") & (observations["VALUE"] >= 30)
                       & (observations["VALUE"] <= C.VITAL_BY_CODE["39156-5"].high)]
    adults = set(people.loc[people["AGE"] >= 18, "Id"])
    first = bmi[bmi["PATIENT"].isin(adults)].drop_duplicates("PATIENT", keep="first")
    ob = pd.DataFrame({"START": first["DATE"].str.slice(0, 10).to_numpy(), "STOP": "",
                       "PATIENT": first["PATIENT"].to_numpy(), "ENCOUNTER": first["ENCOUNTER"].to_numpy(),
                       "CODE": C.OBESITY.code, "DESCRIPTION": C.OBESITY.display})
    order = {pid: i for i, pid in enumerate(people["Id"])}
    out = pd.concat([conditions, ob], ignore_index=True)
    out["_o"] = out["PATIENT"].map(order)
    return out.sort_values(["_o", "START", "CODE"], kind="stable").drop(columns="_o").reset_index(drop=True)


def _patient_table(people: pd.DataFrame) -> pd.DataFrame:
    p = people.copy()
    p["BIRTHDATE"] = _iso_dates(p["BIRTH_DAY"].to_numpy())
    p["DEATHDATE"] = ""
    return p[PATIENT_COLUMNS].reset_index(drop=True)


def _duplicates(rng: np.random.Generator, pats: pd.DataFrame, anomalies: Anomalies,
                anomaly_rows: list[dict[str, str]]) -> pd.DataFrame:
    """The same person registered twice: new Id and MRN, name typed a little differently."""
    n = len(pats)
    k = round(anomalies.duplicate_patients * n)
    if not k:
        return pats
    src = np.sort(rng.choice(n, k, replace=False))
    dup = pats.iloc[src].copy()
    dup["Id"] = _uuids(rng, k)
    dup["MRN"] = [f"SYN-{i:06d}" for i in range(n + 1, n + k + 1)]
    variants = [lambda s: s.upper(), lambda s: s + " ", lambda s: s.lower(), lambda s: s]
    dup["LAST"] = [variants[j % len(variants)](s) for j, s in enumerate(dup["LAST"])]
    for new_id, old_id in zip(dup["Id"], pats["Id"].to_numpy()[src]):
        anomaly_rows.append({"KIND": "duplicate_patient", "TABLE": "patients", "ROW_ID": new_id,
                             "COLUMN": "Id", "DETAIL": f"same person as {old_id}"})
    return pd.concat([pats, dup], ignore_index=True)


def now_utc() -> datetime:
    """Only for messages' own timestamps; the cohort itself never depends on the clock."""
    return datetime.now(timezone.utc)
