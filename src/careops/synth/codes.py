"""Value sets the generator draws from and the FHIR checks validate against.

Why our own tables: the FHIR models check structure, not codes (``gender:
"woman"`` passes), so the course states which SNOMED CT, LOINC, UCUM and
RxNorm codes it uses, and checks every generated resource against them.
Codes follow Synthea's modules where Synthea has one.
"""
from __future__ import annotations

from dataclasses import dataclass

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ENCOUNTER_CLASS = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MRN_SYSTEM = "urn:oid:2.16.840.1.113883.19.5.99999.1"  # 2.16.840.1.113883.19 is HL7's example OID
SSN_SYSTEM = "http://hl7.org/fhir/sid/us-ssn"

#: Age bands (lower bound inclusive, upper exclusive) used by every table below.
AGE_BANDS: tuple[tuple[int, int], ...] = ((0, 5), (5, 18), (18, 30), (30, 45), (45, 65), (65, 80), (80, 105))

#: Share of the population in each age band and the share of women in it
#: (rounded from US census age structure; more women at older ages).
AGE_SEX_TABLE: tuple[tuple[float, float], ...] = (
    (0.06, 0.49), (0.16, 0.49), (0.16, 0.49), (0.20, 0.50), (0.25, 0.51), (0.13, 0.54), (0.04, 0.62),
)


@dataclass(frozen=True)
class Condition:
    """A SNOMED CT condition with its prevalence per age band and the drug that treats it."""

    code: str
    display: str
    prevalence: tuple[float, ...]  # one per AGE_BANDS entry
    rare: bool = False
    medication: str | None = None  # RxNorm code


CONDITIONS: tuple[Condition, ...] = (
    Condition("59621000", "Essential hypertension", (0.0, 0.005, 0.04, 0.12, 0.35, 0.60, 0.70), medication="314076"),
    Condition("44054006", "Diabetes mellitus type 2", (0.0, 0.002, 0.02, 0.06, 0.15, 0.25, 0.25), medication="860975"),
    Condition("195967001", "Asthma", (0.05, 0.09, 0.08, 0.08, 0.08, 0.08, 0.07), medication="895994"),
    Condition("13645005", "Chronic obstructive lung disease", (0.0, 0.0, 0.005, 0.02, 0.06, 0.11, 0.12), medication="745679"),
    Condition("53741008", "Coronary arteriosclerosis", (0.0, 0.0, 0.002, 0.01, 0.06, 0.15, 0.22), medication="309362"),
    Condition("55822004", "Hyperlipidemia", (0.0, 0.01, 0.05, 0.15, 0.30, 0.45, 0.45), medication="259255"),
    Condition("49436004", "Atrial fibrillation", (0.0, 0.0, 0.001, 0.003, 0.02, 0.08, 0.15), medication="855332"),
    Condition("709044004", "Chronic kidney disease", (0.0, 0.002, 0.01, 0.03, 0.08, 0.20, 0.30)),
    # rare conditions: real prevalence is far below one in a thousand; the `rare` knob raises it for tests
    Condition("190905008", "Cystic fibrosis", (0.0004,) * 4 + (0.0002, 0.0001, 0.0001), rare=True),
    Condition("58756001", "Huntington's chorea", (0.0, 0.0, 0.00005, 0.0001, 0.0002, 0.0001, 0.0001), rare=True),
    Condition("86044005", "Amyotrophic lateral sclerosis", (0.0, 0.0, 0.00002, 0.00005, 0.0001, 0.0001, 0.00005), rare=True),
)
CONDITION_BY_CODE = {c.code: c for c in CONDITIONS}
OBESITY = Condition("162864005", "Body mass index 30+ - obesity (finding)", (0.0,) * 7)
CONDITION_CODES = {c.code: c.display for c in (*CONDITIONS, OBESITY)}

MEDICATIONS: dict[str, str] = {
    "314076": "lisinopril 10 MG Oral Tablet",
    "860975": "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet",
    "895994": "120 ACTUAT Fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
    "745679": "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
    "309362": "Clopidogrel 75 MG Oral Tablet",
    "259255": "Atorvastatin 80 MG Oral Tablet",
    "855332": "Warfarin Sodium 5 MG Oral Tablet",
}


@dataclass(frozen=True)
class Vital:
    """A LOINC vital sign with its UCUM unit and the physiological range values are clipped to."""

    code: str
    display: str
    unit: str
    low: float
    high: float
    decimals: int = 1


VITALS: tuple[Vital, ...] = (
    Vital("8302-2", "Body Height", "cm", 45.0, 220.0),
    Vital("29463-7", "Body Weight", "kg", 2.0, 250.0),
    Vital("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 10.0, 70.0),
    Vital("8867-4", "Heart rate", "/min", 30.0, 220.0, 0),
    Vital("9279-1", "Respiratory rate", "/min", 6.0, 60.0, 0),
    Vital("8310-5", "Body temperature", "Cel", 34.0, 42.0),
    Vital("2708-6", "Oxygen saturation in Arterial blood", "%", 70.0, 100.0, 0),
    Vital("8480-6", "Systolic blood pressure", "mm[Hg]", 70.0, 230.0, 0),
    Vital("8462-4", "Diastolic blood pressure", "mm[Hg]", 40.0, 140.0, 0),
)
VITAL_BY_CODE = {v.code: v for v in VITALS}
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_COMPONENTS = ("8480-6", "8462-4")

#: Encounter kinds: SNOMED code, display, FHIR class (v3 ActCode).
ENCOUNTER_TYPES: dict[str, tuple[str, str, str]] = {
    "wellness": ("162673000", "General examination of patient (procedure)", "AMB"),
    "outpatient": ("185349003", "Encounter for check up (procedure)", "AMB"),
    "emergency": ("50849002", "Emergency room admission (procedure)", "EMER"),
    "inpatient": ("183452005", "Emergency hospital admission (procedure)", "IMP"),
}
ENCOUNTER_CODES = {code: display for code, display, _ in ENCOUNTER_TYPES.values()}
ENCOUNTER_CLASSES = {cls for _, _, cls in ENCOUNTER_TYPES.values()}

GENDERS = {"F": "female", "M": "male"}
FHIR_GENDERS = frozenset({"male", "female", "other", "unknown"})


def age_band_index(age: int) -> int:
    """Index into AGE_BANDS for an age in whole years (ages past the last band fall in it)."""
    for i, (low, high) in enumerate(AGE_BANDS):
        if low <= age < high:
            return i
    return len(AGE_BANDS) - 1
