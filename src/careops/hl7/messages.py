"""Build synthetic ADT messages and read ACKs.

Notebooks and tests need valid HL7 v2 ADT messages without touching real
patients; ``build_adt`` makes them from keyword arguments with synthetic
defaults (MRNs start SYN-, phones 555-01xx, SSNs 999-xx-xxxx).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from careops.errors import CareOpsError
from careops.report import theme

SEGMENT_SEP = "\r"
ADT_EVENTS = ("A01", "A03", "A08")
ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")


class AckParseError(CareOpsError):
    """A reply could not be read as an HL7 ACK (MSH + MSA)."""


@dataclass(frozen=True)
class Ack:
    """One HL7 acknowledgement: MSA-1 code, MSA-2 control id, reason text."""

    code: str
    control_id: str
    text: str
    raw: str
    #: which release answered (the ZSV-1 field v2 and later append; "" when absent)
    service_version: str = ""

    @property
    def ok(self) -> bool:
        """True for AA/CA: the receiver accepted the message."""
        return self.code in ("AA", "CA")

    def _repr_html_(self) -> str:
        body = theme.join(["for control id ", theme.code(self.control_id), ": ", self.text or "\u2014"])
        if self.service_version:
            body = theme.join([body, " ", theme.muted(f"(answered by {self.service_version})")])
        return theme.card("HL7 ACK", body, status=theme.verdict(self.ok, self.code, self.code), ok=self.ok)


def _fields(segment: str) -> list[str]:
    return segment.split("|")


def parse_ack(raw: str) -> Ack:
    """Read an ACK's MSA (and ERR) segment; raise AckParseError if malformed."""
    segments = [s for s in raw.replace("\n", "\r").split("\r") if s]
    if not segments or not segments[0].startswith("MSH"):
        raise AckParseError(
            f"reply is not an HL7 message: expected it to start with MSH, got {raw[:40]!r}",
            fix="check that the port belongs to an HL7 MLLP receiver",
        )
    msa = next((s for s in segments if s.startswith("MSA|")), None)
    if msa is None:
        raise AckParseError(
            "reply has no MSA segment: expected MSH then MSA, got "
            + ", ".join(s[:3] for s in segments),
            fix="the receiver sent something other than an ACK; check its log",
        )
    f = _fields(msa)
    code = f[1] if len(f) > 1 else ""
    if code not in ACK_CODES:
        raise AckParseError(
            f"MSA-1 is not an acknowledgement code: expected one of {', '.join(ACK_CODES)}, got {code!r}",
            fix="check the receiver's HL7 implementation",
        )
    control_id = f[2] if len(f) > 2 else ""
    text = f[3] if len(f) > 3 else ""
    err = next((s for s in segments if s.startswith("ERR|")), None)
    if err is not None:
        ef = _fields(err)
        # ERR-8 (user message) in v2.5; fall back to the last non-empty field
        detail = ef[8] if len(ef) > 8 and ef[8] else next((x for x in reversed(ef[1:]) if x), "")
        if detail and detail not in text:
            text = f"{text}; {detail}" if text else detail
    zsv = next((s for s in segments if s.startswith("ZSV|")), None)
    version = _fields(zsv)[1] if zsv is not None and len(_fields(zsv)) > 1 else ""
    return Ack(code=code, control_id=control_id, text=text, raw=raw, service_version=version)


def _ts(when: datetime | None = None) -> str:
    return (when or datetime.now(timezone.utc)).strftime("%Y%m%d%H%M%S")


def build_adt(
    event: str,
    *,
    control_id: str,
    mrn: str,
    family: str,
    given: str,
    birth_date: str,
    sex: str,
    visit_number: str | None = None,
    ward: str = "WARD1^101^A",
    attending: str = "SYN-DR1^Synthetic^Doctor",
    phone: str = "555-0100",
    ssn: str = "",
    sending_app: str = "CAREOPS",
    sending_facility: str = "SYNTH-HOSP",
    receiving_app: str = "LEGACY-ADT",
    receiving_facility: str = "SYNTH-HOSP",
    timestamp: datetime | None = None,
    version: str = "2.5",
) -> str:
    """Return one ADT^A01/A03/A08 message (MSH, EVN, PID, PV1; ``\\r`` separated).

    ``visit_number`` (PV1-19) defaults to ``V-<mrn>``; an A03 closes that visit.
    Only synthetic identifiers belong here: MRN SYN-..., SSN 999-xx-xxxx.
    """
    event = event.upper()
    if event not in ADT_EVENTS:
        raise ValueError(f"unsupported ADT event: expected one of {', '.join(ADT_EVENTS)}, got {event!r}")
    if sex not in ("F", "M", "O", "U", "A", "N"):
        raise ValueError(f"PID-8 sex must be an HL7 table 0001 code (F, M, O, U, A, N), got {sex!r}")
    if ssn and not ssn.startswith("999"):
        raise ValueError(f"only synthetic SSNs are allowed: expected 999-xx-xxxx, got {ssn[:3]}-..")
    ts = _ts(timestamp)
    visit = visit_number or f"V-{mrn}"
    msh = (f"MSH|^~\\&|{sending_app}|{sending_facility}|{receiving_app}|{receiving_facility}|"
           f"{ts}||ADT^{event}^ADT_{'A01' if event == 'A08' else event}|{control_id}|P|{version}")
    evn = f"EVN|{event}|{ts}"
    pid = (f"PID|1||{mrn}^^^SYNTH-HOSP^MR||{family}^{given}||{birth_date}|{sex}|||"
           f"1 Example Street^^Synthville^XX^00000||{phone}|||||{visit}|{ssn}")
    pv1 = f"PV1|1|I|{ward}|||||{attending}|||||||||||{visit}"
    return SEGMENT_SEP.join([msh, evn, pid, pv1])
