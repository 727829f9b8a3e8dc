"""HL7 v2 ADT messages from a cohort, and a feed with known-bad messages mixed in.

Why a feed with expectations: an integration test must say, for every
message, what the receiver should answer. ``adt_feed`` returns each message
with the ACK code it must get (AA, or AE/AR for a defect put in on purpose)
and whether it must be stored, so a test can reconcile a whole run: every
valid message stored once, every invalid one refused with a reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from careops.errors import CareOpsError
from careops.hl7 import build_adt
from careops.synth.model import Cohort

FEED_COLUMNS = ["control_id", "event", "mrn", "visit", "expect", "stored", "defect", "message"]

#: Defects the legacy service must refuse: name -> (ACK code it must send, what is wrong).
DEFECTS: dict[str, tuple[str, str]] = {
    "missing MRN": ("AE", "PID-3 is empty"),
    "missing PID segment": ("AE", "no PID segment"),
    "discharge without admission": ("AE", "A03 for a visit that was never opened"),
    "unsupported event": ("AR", "ADT^A99 is not an ADT event the service supports"),
    "empty control id": ("AR", "MSH-10 is empty"),
    "PID before MSH": ("AR", "segments out of order"),
}


@dataclass(frozen=True)
class _Story:
    mrn: str
    family: str
    given: str
    birth: str
    sex: str
    phone: str
    ssn: str
    visit: str
    start: datetime
    stop: datetime


def _ts(iso: str) -> datetime:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _stories(cohort: Cohort) -> list[_Story]:
    """One admission story per encounter: A01 at its start, A03 at its end (acute encounters first)."""
    p = cohort.patients.set_index("Id")
    enc = cohort.encounters.copy()
    enc["_acute"] = ~enc["ENCOUNTERCLASS"].isin(["inpatient", "emergency"])
    enc = enc.sort_values(["_acute", "START", "Id"], kind="stable")
    out = []
    for e in enc.itertuples(index=False):
        row = p.loc[e.PATIENT]
        out.append(_Story(
            mrn=row["MRN"], family=row["LAST"], given=row["FIRST"], birth=row["BIRTHDATE"].replace("-", ""),
            sex=row["GENDER"], phone=row["PHONE"], ssn=row["SSN"], visit=f"V-{e.Id[:8].upper()}",
            start=_ts(e.START), stop=_ts(e.STOP)))
    return out


def adt_messages(cohort: Cohort) -> list[str]:
    """Valid A01/A03 pairs for every encounter, acute ones first (all synthetic identifiers)."""
    msgs = []
    for i, s in enumerate(_stories(cohort)):
        for event, when in (("A01", s.start), ("A03", s.stop)):
            msgs.append(_build(event, f"SYN-{event}-{i:06d}", s, when))
    return msgs


def _build(event: str, control_id: str, s: _Story, when: datetime, **over: str) -> str:
    kw: dict[str, object] = {"mrn": s.mrn, "family": s.family, "given": s.given, "birth_date": s.birth, "sex": s.sex,
                             "visit_number": s.visit, "phone": s.phone or "", "ssn": s.ssn or "", "timestamp": when}
    kw.update(over)
    return build_adt(event, control_id=control_id, **kw)  # type: ignore[arg-type]


def _defective(kind: str, control_id: str, s: _Story) -> str:
    good = _build("A01", control_id, s, s.start)
    segs = good.split("\r")
    if kind == "missing MRN":
        return _build("A01", control_id, s, s.start, mrn="")
    if kind == "missing PID segment":
        return "\r".join(x for x in segs if not x.startswith("PID|"))
    if kind == "discharge without admission":
        return _build("A03", control_id, s, s.stop, visit_number=s.visit + "-NEVER")
    if kind == "unsupported event":
        return good.replace("ADT^A01^ADT_A01", "ADT^A99^ADT_A99", 1)
    if kind == "empty control id":
        f = segs[0].split("|")
        f[9] = ""
        return "\r".join(["|".join(f)] + segs[1:])
    if kind == "PID before MSH":
        return "\r".join([segs[2], segs[0], segs[1], segs[3]])
    raise CareOpsError(f"unknown defect {kind!r}", fix=f"choose from {', '.join(DEFECTS)}")


def adt_feed(cohort: Cohort, messages: int = 1000, *, seed: int = 0, invalid: float = 0.1,
             resend: float = 0.03, update: float = 0.1) -> pd.DataFrame:
    """A feed of ``messages`` ADT messages with the answer each one must get.

    Valid admission stories (A01, sometimes an A08 update, A03) in order;
    ``invalid`` of the messages carry one of ``DEFECTS``; ``resend`` are exact
    resends of an earlier valid message (a sender retrying: AA, stored once).
    Columns: control_id, event, mrn, visit, expect (AA/AE/AR), stored (a new
    row in the receiver's processed messages), defect ('' when valid), message.
    """
    if messages < 1:
        raise CareOpsError(f"messages must be at least 1, got {messages}", fix="e.g. adt_feed(cohort, 1000)")
    for name, share in (("invalid", invalid), ("resend", resend), ("update", update)):
        if not 0 <= share < 1:
            raise CareOpsError(f"{name} must be a share between 0 and 1, got {share}", fix=f"e.g. {name}=0.1")
    rng = np.random.default_rng(seed)
    stories = _stories(cohort)
    if not stories:
        raise CareOpsError("the cohort has no encounters to build admissions from", fix="generate more patients")
    kinds = list(DEFECTS)
    rows: list[dict[str, object]] = []
    sent_valid: list[dict[str, object]] = []
    n_story = n_bad = 0
    queue: list[tuple[str, _Story, datetime]] = []
    while len(rows) < messages:
        i = len(rows)
        roll = rng.random()
        if roll < invalid:
            kind = kinds[n_bad % len(kinds)]
            s = stories[int(rng.integers(len(stories)))]
            ctl = f"SYN-BAD-{i:06d}"
            rows.append({"control_id": ctl, "event": "A03" if kind == "discharge without admission" else "A01",
                         "mrn": "" if kind == "missing MRN" else s.mrn, "visit": s.visit, "expect": DEFECTS[kind][0],
                         "stored": False, "defect": kind, "message": _defective(kind, ctl, s)})
            n_bad += 1
            continue
        if roll < invalid + resend and sent_valid:
            prev = sent_valid[int(rng.integers(len(sent_valid)))]
            rows.append({**prev, "stored": False, "defect": ""})
            continue
        if not queue:  # the next admission: A01, maybe an A08, then A03
            s = stories[n_story % len(stories)]
            n_story += 1
            if n_story > len(stories):  # cycled: a new visit number per round
                s = _Story(**{**s.__dict__, "visit": f"{s.visit}-{n_story // len(stories)}"})
            queue = [("A01", s, s.start)]
            if rng.random() < update:
                queue.append(("A08", s, s.start))
            queue.append(("A03", s, s.stop))
        event, s, when = queue.pop(0)
        ctl = f"SYN-MSG-{i:06d}"
        row = {"control_id": ctl, "event": event, "mrn": s.mrn, "visit": s.visit, "expect": "AA",
               "stored": True, "defect": "", "message": _build(event, ctl, s, when)}
        rows.append(row)
        sent_valid.append(row)
    return pd.DataFrame(rows, columns=FEED_COLUMNS)
