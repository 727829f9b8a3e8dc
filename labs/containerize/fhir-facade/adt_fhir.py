"""Map an HL7 v2 ADT message to FHIR R4 Patient and Encounter resources (plain dicts).

Why: the strangler pattern -- the façade gives modern systems FHIR while the
legacy service keeps receiving exactly the HL7 it always did. Only what a
FHIR consumer needs is mapped (minimum necessary): the SSN in PID-19 is not.
Standard library only; the façade validates the result with fhir.resources.
"""
from __future__ import annotations

import re

MRN_SYSTEM = "https://riverside-general.example.org/fhir/mrn"
VISIT_SYSTEM = "https://riverside-general.example.org/fhir/visit"
GENDER = {"F": "female", "M": "male", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}
STATUS = {"A01": "in-progress", "A03": "finished", "A08": "in-progress"}
_ID_OK = re.compile(r"[^A-Za-z0-9\-.]")


class MappingError(ValueError):
    """The message lacks what a FHIR resource needs (message says which field)."""


def segments(message: str) -> dict[str, list[str]]:
    """First occurrence of each segment, split into fields (index = HL7 field number; MSH shifted to match)."""
    out: dict[str, list[str]] = {}
    for seg in re.split(r"[\r\n]+", message.strip()):
        fields = seg.split("|")
        if fields[0] == "MSH":
            fields = ["MSH", "|"] + fields[1:]
        out.setdefault(fields[0], fields)
    return out


def _get(fields: list[str], n: int) -> str:
    return fields[n] if len(fields) > n else ""


def fhir_id(value: str) -> str:
    """A FHIR id ([A-Za-z0-9-.], at most 64 characters) from an identifier."""
    return _ID_OK.sub("-", value)[:64]


def _date(value: str) -> str | None:
    digits = value[:8]
    if len(digits) == 8 and digits.isdigit():
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return None


def event_of(message: str) -> str:
    msh = segments(message).get("MSH")
    if not msh:
        raise MappingError("no MSH segment: expected an HL7 v2 message")
    kind = _get(msh, 9).split("^")
    return kind[1] if len(kind) > 1 else ""


def patient(message: str) -> dict:
    """The FHIR R4 Patient of an ADT message's PID segment."""
    pid = segments(message).get("PID")
    if not pid:
        raise MappingError("no PID segment: expected MSH, EVN, PID, PV1")
    mrn = _get(pid, 3).split("^")[0]
    if not mrn:
        raise MappingError("PID-3 (the MRN) is empty")
    res: dict = {"resourceType": "Patient", "id": fhir_id(mrn),
                 "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": mrn}]}
    name = _get(pid, 5).split("^")
    if name[0]:
        res["name"] = [{"use": "official", "family": name[0], **({"given": [name[1]]} if len(name) > 1 and name[1] else {})}]
    born = _date(_get(pid, 7))
    if born:
        res["birthDate"] = born
    if _get(pid, 8):
        res["gender"] = GENDER.get(_get(pid, 8), "unknown")
    addr = _get(pid, 11).split("^")
    if addr[0]:
        res["address"] = [{"line": [addr[0]], **{k: addr[i] for k, i in (("city", 2), ("state", 3), ("postalCode", 4))
                                                 if len(addr) > i and addr[i]}}]
    if _get(pid, 13):
        res["telecom"] = [{"system": "phone", "value": _get(pid, 13), "use": "home"}]
    return res


def encounter(message: str) -> dict | None:
    """The FHIR R4 Encounter of an A01/A03 (None for A08, which updates the patient only)."""
    event = event_of(message)
    if event not in ("A01", "A03"):
        return None
    seg = segments(message)
    pat = patient(message)
    pv1 = seg.get("PV1") or []
    visit = _get(pv1, 19) or f"V-{pat['identifier'][0]['value']}"
    res: dict = {
        "resourceType": "Encounter", "id": fhir_id(visit),
        "identifier": [{"system": VISIT_SYSTEM, "value": visit}],
        "status": STATUS[event],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                  "code": "IMP" if _get(pv1, 2) in ("I", "") else "AMB"},
        "subject": {"reference": f"Patient/{pat['id']}"},
    }
    ward = [p for p in _get(pv1, 3).split("^") if p]
    if ward:
        res["location"] = [{"location": {"display": " ".join(ward)}}]
    return res
