"""FHIR R4 transaction bundles from a cohort, and the checks the models do not do.

Why two layers of validation: ``fhir.resources``' R4B models check structure,
cardinality and date formats, but not codes (``gender: "woman"`` and a heart
rate with LOINC code "banana" both pass). ``validate_bundle`` runs the models
and then the course's own value-set, unit, reference, plausibility and
synthetic-identifier checks, and returns every problem as a sentence.
"""
from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from typing import Any

from careops.synth import codes as C
from careops.synth.model import Cohort

Bundle = dict[str, Any]
_NS = uuid.UUID("6f1c7e0a-5d2b-4c1e-9a7b-2b6f3c0d9e11")  # namespace for derived, reproducible ids


def _urn(value: str) -> str:
    return f"urn:uuid:{value}"


def _derived(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "/".join(parts)))


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _entry(resource: dict[str, Any], rid: str) -> dict[str, Any]:
    return {"fullUrl": _urn(rid), "resource": {**resource, "id": rid},
            "request": {"method": "POST", "url": resource["resourceType"]}}


def _patient(row: dict[str, Any]) -> dict[str, Any]:
    res: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [{"use": "usual", "type": _coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR",
                                                        "Medical record number"),
                        "system": C.MRN_SYSTEM, "value": row["MRN"]}],
        "name": [{"use": "official", "family": row["LAST"], "given": [row["FIRST"]]}],
        "gender": C.GENDERS.get(row["GENDER"], "unknown"),
    }
    if row["SSN"]:
        res["identifier"].append({"system": C.SSN_SYSTEM, "value": row["SSN"]})
    telecom = []
    if row["PHONE"]:
        telecom.append({"system": "phone", "value": row["PHONE"], "use": "home"})
    if row["EMAIL"]:
        telecom.append({"system": "email", "value": row["EMAIL"]})
    if telecom:
        res["telecom"] = telecom
    if row["BIRTHDATE"]:
        res["birthDate"] = row["BIRTHDATE"]
    address = {k: v for k, v in (("line", [row["ADDRESS"]] if row["ADDRESS"] else None), ("city", row["CITY"]),
                                 ("state", row["STATE"]), ("postalCode", row["ZIP"]), ("country", "US")) if v}
    if address:
        res["address"] = [address]
    return res


def _quantity(value: float, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": C.UCUM, "code": unit}


def patient_bundles(cohort: Cohort) -> Iterator[Bundle]:
    """One transaction bundle per patient: Patient, Encounters, Conditions, Observations, MedicationRequests.

    References inside a bundle are ``urn:uuid:`` full URLs, so a FHIR server
    assigns its own ids on POST; ids are derived from the cohort's, so the same
    seed gives the same bundles.
    """
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, table in cohort.tables().items():
        if name == "patients":
            continue
        by_patient: dict[str, list[dict[str, Any]]] = {}
        for rec in table.to_dict("records"):  # plain dicts: an order of magnitude faster than iterrows
            by_patient.setdefault(rec["PATIENT"], []).append(rec)
        groups[name] = by_patient
    for p in cohort.patients.to_dict("records"):
        pid = p["Id"]
        entries = [_entry(_patient(p), pid)]
        for e in groups["encounters"].get(pid, []):
            code, display, cls = C.ENCOUNTER_TYPES[e["ENCOUNTERCLASS"]]
            entries.append(_entry({
                "resourceType": "Encounter", "status": "finished",
                "class": {"system": C.ENCOUNTER_CLASS, "code": cls},
                "type": [_coding(C.SNOMED, code, display)],
                "subject": {"reference": _urn(pid)},
                "period": {"start": e["START"], "end": e["STOP"]},
            }, e["Id"]))
        for i, c in enumerate(groups["conditions"].get(pid, [])):
            entries.append(_entry({
                "resourceType": "Condition",
                "clinicalStatus": _coding(C.CONDITION_CLINICAL, "active", "Active"),
                "code": _coding(C.SNOMED, c["CODE"], c["DESCRIPTION"]),
                "subject": {"reference": _urn(pid)}, "encounter": {"reference": _urn(c["ENCOUNTER"])},
                "onsetDateTime": c["START"],
            }, _derived(pid, "condition", c["CODE"], str(i))))
        by_encounter: dict[str, list[dict[str, Any]]] = {}
        for o in groups["observations"].get(pid, []):
            by_encounter.setdefault(o["ENCOUNTER"], []).append(o)
        for enc_id, rows in by_encounter.items():
            when = rows[0]["DATE"]
            bp: dict[str, float] = {}
            for o in rows:
                if o["CODE"] in C.BP_COMPONENTS:
                    bp[o["CODE"]] = o["VALUE"]
                    continue
                v = C.VITAL_BY_CODE[o["CODE"]]
                res = _observation(pid, enc_id, when, _coding(C.LOINC, o["CODE"], v.display))
                if not (isinstance(o["VALUE"], float) and math.isnan(o["VALUE"])):
                    res["valueQuantity"] = _quantity(o["VALUE"], o["UNITS"])
                entries.append(_entry(res, _derived(enc_id, o["CODE"])))
            if bp:
                res = _observation(pid, enc_id, when, _coding(C.LOINC, *C.BP_PANEL))
                res["component"] = [
                    {"code": _coding(C.LOINC, code, C.VITAL_BY_CODE[code].display),
                     "valueQuantity": _quantity(bp[code], C.VITAL_BY_CODE[code].unit)}
                    for code in C.BP_COMPONENTS if code in bp]
                entries.append(_entry(res, _derived(enc_id, C.BP_PANEL[0])))
        for i, m in enumerate(groups["medications"].get(pid, [])):
            entries.append(_entry({
                "resourceType": "MedicationRequest", "status": "active", "intent": "order",
                "medicationCodeableConcept": _coding(C.RXNORM, m["CODE"], m["DESCRIPTION"]),
                "subject": {"reference": _urn(pid)}, "encounter": {"reference": _urn(m["ENCOUNTER"])},
                "authoredOn": m["START"],
                "reasonCode": [_coding(C.SNOMED, m["REASONCODE"], C.CONDITION_CODES.get(m["REASONCODE"], m["REASONCODE"]))],
            }, _derived(pid, "medication", m["CODE"], str(i))))
        yield {"resourceType": "Bundle", "type": "transaction", "id": _derived(pid, "bundle"), "entry": entries}


def _observation(pid: str, enc_id: str, when: str, code: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "category": [_coding(C.OBS_CATEGORY, "vital-signs", "Vital signs")],
        "code": code, "subject": {"reference": _urn(pid)}, "encounter": {"reference": _urn(enc_id)},
        "effectiveDateTime": when,
    }


# ---------------------------------------------------------------------------------------------
# validation

def _codes(concept: dict[str, Any] | None, system: str) -> list[str]:
    return [c.get("code", "") for c in (concept or {}).get("coding", []) if c.get("system") == system]


def _check_quantity(q: dict[str, Any] | None, code: str, where: str, problems: list[str], ranges: bool) -> None:
    v = C.VITAL_BY_CODE.get(code)
    if v is None:
        return
    if not q:
        problems.append(f"{where}: LOINC {code} has no valueQuantity (expected a value in {v.unit})")
        return
    if q.get("system") != C.UCUM or q.get("code") != v.unit:
        problems.append(f"{where}: LOINC {code} unit is {q.get('system')}|{q.get('code')}, expected {C.UCUM}|{v.unit}")
    value = q.get("value")
    if ranges and isinstance(value, (int, float)) and not v.low <= float(value) <= v.high:
        problems.append(f"{where}: {v.display} {value} {v.unit} is outside the physiological range "
                        f"{v.low:g}..{v.high:g} {v.unit}")


def value_set_problems(bundle: Bundle, *, ranges: bool = True) -> list[str]:
    """The course's own checks: codes from its value sets, UCUM units, resolvable references,
    synthetic identifiers and (with ``ranges``) physiologically plausible vital signs."""
    problems: list[str] = []
    if bundle.get("type") != "transaction":
        problems.append(f"Bundle.type is {bundle.get('type')!r}, expected 'transaction'")
    entries = bundle.get("entry") or []
    urls = {e.get("fullUrl") for e in entries}
    for i, e in enumerate(entries):
        r = e.get("resource") or {}
        rtype = r.get("resourceType", "?")
        where = f"entry[{i}] {rtype}"
        req = e.get("request") or {}
        if req.get("method") not in ("POST", "PUT") or not req.get("url"):
            problems.append(f"{where}: request must have method POST or PUT and a url, got {req!r}")
        if not str(e.get("fullUrl", "")).startswith("urn:uuid:"):
            problems.append(f"{where}: fullUrl should be urn:uuid:..., got {e.get('fullUrl')!r}")
        for key in ("subject", "encounter"):
            ref = (r.get(key) or {}).get("reference")
            if ref is not None and ref not in urls:
                problems.append(f"{where}: {key} reference {ref} does not resolve inside the bundle")
        if rtype == "Patient":
            if r.get("gender") not in C.FHIR_GENDERS:
                problems.append(f"{where}: gender {r.get('gender')!r} is not in AdministrativeGender "
                                f"({', '.join(sorted(C.FHIR_GENDERS))})")
            for ident in r.get("identifier", []):
                value = str(ident.get("value", ""))
                if ident.get("system") == C.MRN_SYSTEM and not value.startswith("SYN-"):
                    problems.append(f"{where}: MRN must carry the synthetic marker SYN-, got {value[:4]}...")
                if ident.get("system") == C.SSN_SYSTEM and not value.startswith("999-"):
                    problems.append(f"{where}: SSN must be synthetic (999-xx-xxxx), got {value[:3]}-..")
            for t in r.get("telecom", []):
                value = str(t.get("value", ""))
                if t.get("system") == "phone" and "555-01" not in value:
                    problems.append(f"{where}: phone must be synthetic (555-01xx)")
                if t.get("system") == "email" and not value.lower().endswith("@example.org"):
                    problems.append(f"{where}: e-mail must be @example.org")
        elif rtype == "Encounter":
            cls = (r.get("class") or {}).get("code")
            if cls not in C.ENCOUNTER_CLASSES:
                problems.append(f"{where}: class {cls!r} is not one of {sorted(C.ENCOUNTER_CLASSES)}")
            for t in r.get("type", []):
                for code in _codes(t, C.SNOMED):
                    if code not in C.ENCOUNTER_CODES:
                        problems.append(f"{where}: SNOMED CT {code} is not a course encounter type")
        elif rtype == "Condition":
            found = _codes(r.get("code"), C.SNOMED)
            if not found or any(c not in C.CONDITION_CODES for c in found):
                problems.append(f"{where}: SNOMED CT code {found} is not in the course's condition value set")
        elif rtype == "MedicationRequest":
            found = _codes(r.get("medicationCodeableConcept"), C.RXNORM)
            if not found or any(c not in C.MEDICATIONS for c in found):
                problems.append(f"{where}: RxNorm code {found} is not in the course's medication value set")
        elif rtype == "Observation":
            found = _codes(r.get("code"), C.LOINC)
            if not found or any(c not in C.VITAL_BY_CODE and c != C.BP_PANEL[0] for c in found):
                problems.append(f"{where}: LOINC code {found} is not a course vital sign")
                continue
            code = found[0]
            if code == C.BP_PANEL[0]:
                comps = {(_codes(c.get("code"), C.LOINC) or [""])[0]: c for c in r.get("component", [])}
                if set(comps) != set(C.BP_COMPONENTS):
                    problems.append(f"{where}: blood pressure panel needs components {list(C.BP_COMPONENTS)}, "
                                    f"got {sorted(comps)}")
                for ccode, comp in comps.items():
                    _check_quantity(comp.get("valueQuantity"), ccode, where, problems, ranges)
            else:
                _check_quantity(r.get("valueQuantity"), code, where, problems, ranges)
    return problems


def validate_bundle(bundle: Bundle, *, ranges: bool = True) -> list[str]:
    """Every problem of one bundle: first the R4B models (structure), then ``value_set_problems``."""
    from fhir.resources.R4B.bundle import Bundle as BundleModel
    from pydantic import ValidationError

    try:
        BundleModel.model_validate(bundle)
    except ValidationError as exc:
        return [f"FHIR R4B structure: {'.'.join(str(x) for x in err['loc'])}: {err['msg']}"
                for err in exc.errors()[:20]]
    return value_set_problems(bundle, ranges=ranges)
