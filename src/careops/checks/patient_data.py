"""Module 6's checks: patient data protected in transit, by role, at rest, at the approval gate, in review.

The learner's answers are artifacts (the deployment and access policy as YAML, the key-rotation runbook as a list
of steps, the sign-off rule in Rego) that careops' own code runs in a lab, and one pandas function (the access
review). Live checks open their own lab; the grader calls the same checks on the host with the artifacts' text.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from careops.checks import live_check
from careops.checks.orientation import lab_is_clean
from careops.errors import CareOpsError
from careops.hl7 import build_adt
from careops.lab import Lab
from careops.privacy import signoff
from careops.privacy.atrest import cleartext_found
from careops.privacy.stack import Deployment, PatientDataStack, expired_and_wrong_host
from careops.privacy.tokens import AccessPolicy, TokenError
from careops.report import CheckReport, call_learner, learner_check
from careops.synth import generate

LAB = "patient-data"
WARDS = ("4B", "5A")
#: the deployment the access, rotation and review exercises run on (exercise 1's answer is the learner's own)
SAFE_DEPLOYMENT = Deployment(mllp_plain=False, mllp_tls=True, client_certificates="required", http_plain=False,
                             https=True, key="secret")
#: the roles the hospital's access policy must describe (exercise 2)
ROLES = ("ward-nurse", "ward-clerk", "patient-portal", "records-auditor")
ROTATION_STEPS = ("add-key", "reseal", "verify", "retire-old")
REVIEW_COLUMNS = ["actor", "patient", "staff_ward", "patient_ward", "outcome", "break_glass"]


def lab_workdir() -> Path:
    """A fresh folder for the lab's secrets and configuration (removed when the kernel ends)."""
    work = Path(tempfile.mkdtemp(prefix="careops-patient-data-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    work.chmod(0o755)
    return work


def patients(n: int = 24, seed: int = 6) -> pd.DataFrame:
    """Synthetic patients with their ward: MRN, LAST, FIRST, BIRTHDATE, GENDER, WARD."""
    p = generate(patients=n, seed=seed).patients.iloc[:n].reset_index(drop=True)
    return p[["MRN", "LAST", "FIRST", "BIRTHDATE", "GENDER"]].assign(WARD=[WARDS[i % 2] for i in range(len(p))])


def admissions(frame: pd.DataFrame) -> list[str]:
    """One ADT^A01 per patient, to their ward."""
    return [build_adt("A01", control_id=f"PD-{i:04d}", mrn=r.MRN, family=r.LAST, given=r.FIRST,
                      birth_date=r.BIRTHDATE.replace("-", ""), sex=r.GENDER if r.GENDER in ("F", "M") else "U",
                      ward=f"{r.WARD}^{i + 1}^A") for i, r in enumerate(frame.itertuples())]


def markers(frame: pd.DataFrame) -> list[str]:
    """What must not be readable on the wire or on disk: every MRN and family name."""
    return list(frame["MRN"]) + list(frame["LAST"])


@contextmanager
def _lab_for(lab: Lab | None, name: str) -> Iterator[Lab]:
    """The lab a check runs in: the one given (the notebook's, the grader's), or one of its own, closed after."""
    if lab is not None:
        yield lab
        return
    with Lab(f"{LAB}-{name}", workdir=lab_workdir()) as own:
        yield own


# -- exercise 1: in transit -------------------------------------------------------------------------
@learner_check
def transport(deployment: str, *, lab: Lab | None = None) -> CheckReport:
    """Exercise 1: only TLS ports, nothing readable on the wire, and every bad certificate refused."""
    report = CheckReport("Exercise 1: patient data in transit")
    dep = report.parsed(Deployment.from_yaml, deployment, "your deployment can be read", errors=CareOpsError)
    if dep is None:
        return report
    with _lab_for(lab, "transport") as box:
        stack = PatientDataStack(box, dep).start()
        open_ports = stack.listening_ports()
        report.check(not open_ports & {2575, 8080}, "no plain-text port is open (MLLP 2575, HTTP 8080)",
                     expected="only 2576 (MLLP over TLS) and 8443 (HTTPS)", got=sorted(open_ports),
                     hint="mllp: {plain: false} and fhir: {http: false}: a port left open is used by someone")
        if not report.check(dep.mllp_tls and dep.https, "MLLP over TLS and HTTPS are on",
                            hint="mllp: {tls: true} and fhir: {https: true}"):
            return report
        feed = patients()
        seen = stack.capture(lambda: stack.send(admissions(feed)))
        leaked = cleartext_found(seen, markers(feed))
        report.check(len(seen) > 0 and not leaked, "a passive capture beside the service reads no name or MRN",
                     got=f"{len(leaked)} readable, e.g. {leaked[0][:3]}..." if leaked else None,
                     hint="send over TLS only: the sender follows the deployment (mllp.tls) when plain is off")
        report.check(not stack.handshake(ca_pem=None), "a client that does not trust the course CA is refused")
        report.check(not stack.handshake(with_certificate=False),
                     "a sender without a client certificate is refused (mutual TLS)",
                     hint="mllp: {client_certificates: required}: only the registration system may send admissions")
        bad = {name: stack.sender_accepts(cert) for name, cert in expired_and_wrong_host(stack.ca).items()}
        report.check(not any(bad.values()), "your sender refuses an expired and a wrong-host certificate",
                     got=[name for name, ok in bad.items() if ok] or None,
                     hint="sender: {verify: true, check_hostname: true}: verification off trusts any server")
    return report


def _graded_lab(lab: Any) -> Any:
    """The grader's throwaway lab, given a work folder for the service's secrets and configuration."""
    if lab is not None and getattr(lab, "workdir", None) is None:
        lab.workdir = lab_workdir()
    return lab


@live_check("patient_data.transport")
def setup_transport(lab: Any, artifacts: dict[str, str]) -> dict[str, Any]:
    return {"deployment": artifacts["deployment"], "lab": _graded_lab(lab)}


# -- exercise 2: by role -----------------------------------------------------------------------------
def read_policy(text: str) -> AccessPolicy:
    return AccessPolicy.from_yaml(text)


#: practice cases: (name, role, token extras, patient index, break-glass reason, expected status)
PRACTICE_CASES: list[tuple[str, str | None, dict[str, str], int, str, int]] = [
    ("no token", None, {}, 0, "", 401),
    ("nurse, own ward", "ward-nurse", {"ward": "4B"}, 0, "", 200),
    ("nurse, other ward", "ward-nurse", {"ward": "4B"}, 1, "", 403),
    ("nurse, break-glass", "ward-nurse", {"ward": "4B"}, 1, "cardiac arrest, bay 3", 200),
    ("portal, own record", "patient-portal", {"patient": "#2"}, 2, "", 200),
]


def run_cases(stack: PatientDataStack, feed: pd.DataFrame,
              cases: list[tuple[str, str | None, dict[str, str], int, str, int]]) -> list[tuple[str, int, int]]:
    """(name, expected, got) for each case, as HTTP statuses of a live read over HTTPS."""
    ids = [stack.patient_id(m) for m in feed["MRN"]]
    out = []
    for name, role, extra, index, glass, want in cases:
        extra = {k: ids[int(v[1:])] if v.startswith("#") else v for k, v in extra.items()}
        token = stack.token(f"u-{(role or 'none')[:8]}", role, **extra) if role else None
        out.append((name, want, stack.read_patient(ids[index], token, break_glass=glass)))
    return out


@learner_check
def access(policy: str, *, cases: list[Any] | None = None, lab: Lab | None = None) -> CheckReport:
    """Exercise 2: scopes per role, no wildcard, deny by default; live reads answer 401/403/200 as they should."""
    report = CheckReport("Exercise 2: patient data by role")
    parsed = report.parsed(read_policy, policy, "your access policy can be read", errors=(CareOpsError, TokenError,
                                                                                          yaml.YAMLError))
    if parsed is None:
        return report
    missing = [r for r in ROLES if r not in parsed.roles]
    report.check(not missing, "it describes every role of the task", got=missing or None,
                 hint=f"roles: {', '.join(ROLES)}")
    report.check(not parsed.wildcards(), "no role has a wildcard scope", got=parsed.wildcards() or None,
                 hint="name each resource and action: user/Patient.read, not user/*.* -- least privilege")
    with _lab_for(lab, "access") as box:
        stack = PatientDataStack(box, SAFE_DEPLOYMENT, access=parsed).start()
        feed = patients(6)
        stack.send(admissions(feed))
        results = run_cases(stack, feed, PRACTICE_CASES + list(cases or []))
        wrong = [f"{name}: expected {want}, got {got}" for name, want, got in results if want != got]
        report.check(not wrong, f"{len(results) - len(wrong)} of {len(results)} reads answer as they should",
                     got=wrong or None, hint="read each wrong case against the table of the task")
        glass = stack.audit_log().to_dataframe()
        glass = glass[glass["purpose"] == "break-glass"]
        report.check(len(glass) >= 1, "the break-glass read is in the audit log",
                     hint="break_glass: true on the ward-nurse role")
    return report


@live_check("patient_data.access")
def setup_access(lab: Any, artifacts: dict[str, str]) -> dict[str, Any]:
    return {"access_policy": artifacts["access_policy"], "lab": _graded_lab(lab)}


# -- exercise 3: at rest -----------------------------------------------------------------------------
def read_rotation(text: str) -> list[str]:
    data = yaml.safe_load(text)
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise CareOpsError("the runbook needs a list 'steps:' of step names",
                           fix=f"e.g. steps: [{', '.join(ROTATION_STEPS[:2])}, ...]")
    unknown = [s for s in steps if s not in ROTATION_STEPS]
    if unknown:
        raise CareOpsError(f"unknown steps {unknown}", fix=f"use only {', '.join(ROTATION_STEPS)}")
    return steps


def readable(stack: PatientDataStack, ids: list[str]) -> int:
    """How many of the patients ``ids`` (admitted to WARDS in turn) a nurse of their ward can read."""
    nurse = {w: stack.token("rotation-check", "ward-nurse", ward=w) for w in WARDS}
    return sum(stack.read_patient(pid, nurse[WARDS[i % 2]]) == 200 for i, pid in enumerate(ids))


def run_rotation(stack: PatientDataStack, steps: list[str], ids: list[str]) -> tuple[int, list[str]]:
    """Run the runbook's steps (a failed verify stops it); then restart the service with the keys left and
    count the records it can still read. Returns (readable, what each step did)."""
    log = []
    for step in steps:
        if step == "add-key":
            log.append(f"add-key: current key {stack.add_key()}")
        elif step == "reseal":
            log.append(f"reseal: {stack.reseal()}")
        elif step == "retire-old":
            stack.retire_old_keys()
            log.append(f"retire-old: keys left {sorted(stack.keyring.keys)}")
        else:
            n = readable(stack, ids)
            log.append(f"verify: {n} of {len(ids)} readable")
            if n < len(ids):
                log.append("the runbook stops: verification failed")
                break
    stack.start()
    return readable(stack, ids), log


@learner_check
def at_rest(deployment: str, rotation: str, *, lab: Lab | None = None) -> CheckReport:
    """Exercise 3: the key from a mounted secret, no name or MRN in the database file, rotation loses nothing."""
    report = CheckReport("Exercise 3: patient data at rest")
    dep = report.parsed(Deployment.from_yaml, deployment, "your deployment can be read", errors=CareOpsError,
                        record_pass=False)
    steps = report.parsed(read_rotation, rotation, "your rotation runbook can be read",
                          errors=(CareOpsError, yaml.YAMLError, AttributeError))
    if dep is None or steps is None:
        return report
    verified = "verify" in steps and "retire-old" in steps and "reseal" in steps and \
        steps.index("reseal") < steps.index("verify") < steps.index("retire-old")
    report.check(verified, "the runbook verifies the re-sealed records before it retires the old key",
                 got=steps, hint="a key you retire cannot be brought back: verify first")
    report.check(dep.key == "secret", "the key comes from a mounted secret", got=f"key: {dep.key}",
                 hint="store: {key: secret}: an environment variable is part of the container's configuration, "
                      "which anyone who may inspect it can read")
    with _lab_for(lab, "at-rest") as box:
        stack = PatientDataStack(box, replace(SAFE_DEPLOYMENT, key=dep.key),
                                 access=AccessPolicy.from_data({"roles": {"ward-nurse": {
                                     "scopes": ["user/Patient.read"], "wards": "own"}}})).start()
        feed = patients()
        stack.send(admissions(feed))
        leaked = cleartext_found(stack.database(), markers(feed))
        report.check(not leaked, "the database file holds no name or MRN in clear",
                     got=f"{len(leaked)} readable" if leaked else None, hint="store: {key: secret}")
        # MRNs only: a family name is a common word somewhere in 150 MB of an image; a baked-in fixture has MRNs
        exposed = stack.key_exposed(list(feed["MRN"]))
        report.check(not exposed, "no key or MRN is in the container's configuration or the image",
                     got=exposed or None, hint="mount the key as a secret file (store: {key: secret}); patients "
                                               "reach the service as messages, never in its image")
        ids = [stack.patient_id(m) for m in feed["MRN"]]
        readable, log = run_rotation(stack, steps, ids)
        report.check(stack.keyring.current != "k1" and len(stack.keyring.keys) == 1,
                     "after the runbook only a new key is left", got=sorted(stack.keyring.keys),
                     hint="add a key, and retire the old one at the end: a key that never leaves is not rotated")
        report.check(readable == len(ids), "every record is readable after the rotation",
                     expected=len(ids), got=f"{readable}; " + " | ".join(log),
                     hint="re-seal every record with the new key and verify before you retire the old key")
    return report


@live_check("patient_data.at_rest")
def setup_at_rest(lab: Any, artifacts: dict[str, str]) -> dict[str, Any]:
    return {"deployment": artifacts["deployment"], "rotation": artifacts["rotation"], "lab": _graded_lab(lab)}


# -- exercise 4: separation of duties -----------------------------------------------------------------
def signoff_input(author: str, signer: str, *, name: str | None = None, meaning: str = "approval",
                  approvers: tuple[str, ...] = ("j.rivera", "m.ito")) -> dict[str, Any]:
    return {"change": {"id": "CHG-1042", "author": author, "summary": "MLLP over TLS for the ADT feed"},
            "signer": {"id": signer, "name": signer.title() if name is None else name, "meaning": meaning},
            "approvers": list(approvers), "meanings": list(signoff.MEANINGS)}


#: practice cases of the sign-off rule: (name, input, should sign)
SIGNOFF_PRACTICE = [
    ("an approver signs another's change", signoff_input("a.khan", "j.rivera"), True),
    ("the author approves their own change", signoff_input("j.rivera", "j.rivera"), False),
    ("someone off the list", signoff_input("a.khan", "t.nobody"), False),
    ("a signature without meaning", signoff_input("a.khan", "m.ito", meaning="ok"), False),
]


@learner_check
def signoff_rule(policy: str, *, cases: list[Any] | None = None) -> CheckReport:
    """Exercise 4: the Rego rule refuses self-approval, approvers off the list, and signatures without meaning."""
    report = CheckReport("Exercise 4: separation of duties at the gate")
    try:
        wrong = signoff.cases_failed(policy, SIGNOFF_PRACTICE + list(cases or []))
    except signoff.SignoffError as exc:
        report.fail(exc.message, hint=exc.fix or "")
        return report
    total = len(SIGNOFF_PRACTICE) + len(cases or [])
    report.check(not wrong, f"{total - len(wrong)} of {total} sign-off cases decided as they should",
                 got=wrong or None, hint="one deny rule per reason: author == signer, signer not in approvers, "
                                          "meaning not in meanings")
    return report


# -- exercise 5: access review -------------------------------------------------------------------------
def audit_frame(rows: list[tuple[Any, ...]], *, start: str) -> pd.DataFrame:
    """An audit frame as ``AuditLog.to_dataframe`` gives it, one minute per row:
    (actor, role, resource, outcome, purpose, patient ward, break-glass, action)."""
    return pd.DataFrame([{"seq": i + 1, "at": pd.Timestamp(start) + pd.Timedelta(minutes=i), "actor": a, "role": r,
                          "action": act, "resource": res, "outcome": o, "purpose": p, "source": "fhir",
                          "details": {"patient_ward": w, "break_glass": g, "reason": ""}}
                         for i, (a, r, res, o, p, w, g, act) in enumerate(rows)])


def practice_audit() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A small audit frame (as AuditLog.to_dataframe gives) and the staff roster, for the visible check."""
    rows = [("n.ahmed", "ward-nurse", "Patient/pt-a1", "200", "treatment", "4B", False),
            ("n.ahmed", "ward-nurse", "Patient/pt-b7", "403", "treatment", "5A", False),
            ("n.ahmed", "ward-nurse", "Patient/pt-b7", "200", "break-glass", "5A", True),
            ("c.olsen", "ward-clerk", "Patient/pt-b2", "200", "treatment", "5A", False),
            ("c.olsen", "ward-clerk", "Patient/pt-a1", "200", "treatment", "4B", False),
            ("portal", "patient-portal", "Patient/pt-a3", "200", "treatment", "4B", False)]
    frame = audit_frame([(*row, "read") for row in rows], start="2026-12-01T08:00Z")
    staff = pd.DataFrame({"actor": ["n.ahmed", "c.olsen"], "ward": ["4B", "5A"]})
    return frame, staff


#: the practice frame's answer, worked out by hand: reads of staff outside their ward that were answered
PRACTICE_REVIEW = [("n.ahmed", "pt-b7", "4B", "5A", "200", True), ("c.olsen", "pt-a1", "5A", "4B", "200", False)]


@learner_check
def access_review(fn: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]) -> CheckReport:
    """Exercise 5: every answered read of a patient outside the reader's ward, break-glass flagged."""
    report = CheckReport("Exercise 5: access review")
    frame, staff = practice_audit()
    got, err = call_learner(fn, frame.copy(), staff.copy())
    if not report.check(err is None, "it runs on the practice audit log", got=err):
        return report
    if not report.check(isinstance(got, pd.DataFrame) and list(got.columns) == REVIEW_COLUMNS,
                        f"it returns a DataFrame with the columns {', '.join(REVIEW_COLUMNS)}",
                        got=list(got.columns) if isinstance(got, pd.DataFrame) else type(got).__name__):
        return report
    rows = [tuple(str(v) if not isinstance(v, bool) else v for v in r)
            for r in got.astype({"break_glass": bool}).itertuples(index=False)]
    report.check(rows == [tuple(str(v) if not isinstance(v, bool) else v for v in r) for r in PRACTICE_REVIEW],
                 "it lists the two answered reads outside the reader's ward, in log order", expected=PRACTICE_REVIEW,
                 got=rows, hint="keep outcome 200, join the roster on actor, compare staff ward with patient ward; "
                                "a refused read (403) exposed nothing; the portal is not staff")
    return report


__all__ = ["LAB", "PRACTICE_CASES", "PRACTICE_REVIEW", "REVIEW_COLUMNS", "ROLES", "ROTATION_STEPS",
           "SAFE_DEPLOYMENT", "SIGNOFF_PRACTICE", "WARDS", "access", "access_review", "admissions", "at_rest",
           "audit_frame", "lab_is_clean", "lab_workdir", "markers", "patients", "practice_audit", "read_policy",
           "read_rotation", "readable", "run_cases", "run_rotation", "setup_access", "setup_at_rest",
           "setup_transport", "signoff_input", "signoff_rule", "transport"]
