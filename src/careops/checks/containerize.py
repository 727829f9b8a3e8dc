"""Checks for Module 2 (containerize the legacy service). Visible cells and hidden tests call these.

The static checks read the Dockerfile text; the live checks build it (no
network, time and disk limits) and run it in a Lab -- exactly what the grader
runs, so a learner sees every criterion the grader will look at.
"""
from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any

from careops import legacy_adt
from careops.checks import live_check
from careops.errors import CareOpsError, LabError
from careops.images.catalog import FHIR_FACADE_IMAGE
from careops.report import CheckReport, call_learner, learner_check
from careops.containerize.build import LearnerBuild, build_learner_image
from careops.containerize.live import run_service
from careops.containerize.security import security_report
from careops.dockerfile.rules import static_report

#: Exercise 1: excerpts of ADT-Legacy v1 and the fault each one shows.
FAULT_KINDS = ("hard-coded-path", "runs-as-root", "phi-in-log", "config-in-file", "ack-before-commit")
EXCERPTS = {
    "A": "db_path = /var/lib/legacy-adt/adt.db",
    "B": 'log.info("accepted %s: %s", control_id, pid_segment)',
    "C": "self._send(ack); self.db.commit()",
    "D": 'parser.add_option("--config", default="/etc/legacy-adt/adt.ini")',
    "E": 'if os.geteuid() != 0: sys.exit("run as root or pass --db/--log")',
}
#: Exercise 1's answer key as digests (:func:`fault_digest`): the check tells right from wrong without holding the
#: answers in plain text (the key itself is with the grader, grading/references/containerize.py).
FAULT_DIGESTS = {"A": "b86fcae1652dfe5a", "B": "a4f1ae3b176e377d", "C": "8aa55f94f180925d", "D": "680dcf71659c7459",
                 "E": "dba534eefd1cc00d"}


def fault_digest(letter: str, fault: object) -> str:
    """The digest an answer for excerpt ``letter`` is compared by."""
    import hashlib

    return hashlib.sha256(f"careops-exercise-1:{letter}:{fault}".encode()).hexdigest()[:16]


_WHY = {
    "hard-coded-path": "a path baked into the code or INI only works on the one server it was written for",
    "phi-in-log": "logging the whole PID segment copies names, birth dates and phones into every log system",
    "ack-before-commit": "an AA tells the sender to stop retrying; a crash before the commit loses the admission",
    "config-in-file": "a config file inside the image means a rebuild per environment; containers read ENV",
    "runs-as-root": "a compromised root process in a container is one kernel bug away from the host",
}


@learner_check
def legacy_faults(answers: Mapping[str, str] | Any) -> CheckReport:
    """Exercise 1: name the fault each excerpt of v1 shows."""
    report = CheckReport("Exercise 1: what must change before ADT-Legacy goes into a container")
    if not report.check(isinstance(answers, Mapping), "the answer is a dict from excerpt letter to fault",
                        got=type(answers).__name__, hint="faults = {\"A\": \"<a fault name>\", \"B\": ..., ...}"):
        return report
    unknown = sorted({str(v) for v in answers.values()} - set(FAULT_KINDS))
    report.check(not unknown, "every answer is one of the fault names", got=unknown or None,
                 hint=f"use exactly: {', '.join(FAULT_KINDS)}")
    for letter, digest in FAULT_DIGESTS.items():
        got = answers.get(letter)
        right = fault_digest(letter, got) == digest
        report.check(right, f"excerpt {letter}: {EXCERPTS[letter]}", got=got,
                     hint=_WHY.get(str(got), "read the excerpt again: which rule of a container does it break?")
                     if not right else "")
    return report


@learner_check
def dockerfile_static(dockerfile: str, dockerignore: str | None) -> CheckReport:
    """Exercise 2: the course's container rules on the Dockerfile text (nothing is built)."""
    return static_report(dockerfile, dockerignore, title="Exercise 2: static checks of your Dockerfile")


#: Exercise 2's points, one per question the change board asks of a Dockerfile: (title, the rules that answer it)
QUESTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "rebuild": ("Can it be rebuilt identically, from what the hospital has?", ("DF01", "DF02", "DF11", "DF09")),
    "root": ("Does a break-in get root?", ("DF03",)),
    "hang": ("Does the platform know when it hangs, and can it stop it cleanly?", ("DF04", "DF08")),
    "patients": ("Where do the patients (and the logs) go when the container is replaced?",
                 ("DF05", "DF06", "DF07", "DF13")),
    "leaks": ("What leaves the building in the image?", ("DF10", "DF12")),
}


@learner_check
def dockerfile_question(question: str, dockerfile: str, dockerignore: str | None) -> CheckReport:
    """Exercise 2, one point per question: the course's rules that answer ``question`` (see :data:`QUESTIONS`)."""
    title, rules = QUESTIONS[question]
    full = static_report(dockerfile, dockerignore, title=f"Exercise 2: {title}")
    report = CheckReport(full.title)
    for criterion in full.criteria:
        if criterion.message.split(" ", 1)[0] in rules or not criterion.message.startswith("DF"):
            report.criteria.append(criterion)  # the rules of this question (and whether the Dockerfile reads)
    return report


def build(dockerfile: str, dockerignore: str | None, **kwargs: Any) -> LearnerBuild:
    """Exercise 3: build the Dockerfile as the grader does (progress shown); returns the LearnerBuild."""
    return build_learner_image(dockerfile, dockerignore, **kwargs)


#: Exercise 3's two graded parts: the service as the desks use it, and the data when the container goes
LIVE_PARTS = {"service": "Exercise 3a: your service, live", "data": "Exercise 3b: the patients survive the container"}
#: the first criterion of the data part (the live report checks the service first, then the data)
_DATA_FROM = "a new container on the same volume"
_LIVE_CACHE: dict[tuple[str, str, str], tuple[float, CheckReport]] = {}
_LIVE_LOCK = threading.Lock()
LIVE_CACHE_SECONDS = 600.0


def _live_report(dockerfile: str, dockerignore: str | None, learner: str | None, *, reuse: bool) -> CheckReport:
    """The whole live report. ``reuse``: take (once) the report a run of the same artifacts left within a few minutes
    -- the service part runs the image, the data part that follows reads the same run."""
    from careops.containerize.live import live_report

    key = (dockerfile, dockerignore or "", learner or "")
    with _LIVE_LOCK:
        for old in [k for k, (at, _) in _LIVE_CACHE.items() if time.monotonic() - at > LIVE_CACHE_SECONDS]:
            del _LIVE_CACHE[old]
        if reuse and key in _LIVE_CACHE:
            return _LIVE_CACHE.pop(key)[1]
    with build_learner_image(dockerfile, dockerignore, learner=learner, progress=False) as image:
        report = live_report(image, learner=learner, title="Exercise 3: your image, live")
    with _LIVE_LOCK:
        _LIVE_CACHE[key] = (time.monotonic(), report)
        while len(_LIVE_CACHE) > 8:
            del _LIVE_CACHE[min(_LIVE_CACHE, key=lambda k: _LIVE_CACHE[k][0])]
    return report


@learner_check
def live(dockerfile: str, dockerignore: str | None, *, learner: str | None = None, part: str = "all") -> CheckReport:
    """Exercise 3: build, run and prove the image from outside; the image is removed afterwards.

    ``part`` "service" or "data" keeps that part's criteria (:data:`LIVE_PARTS`); both parts read one run.
    """
    full = _live_report(dockerfile, dockerignore, learner, reuse=part == "data")
    if part == "all":
        return CheckReport(full.title, list(full.criteria), dict(full.data), list(full.details))
    split = next((n for n, c in enumerate(full.criteria) if c.message.startswith(_DATA_FROM)), len(full.criteria))
    report = CheckReport(LIVE_PARTS[part])
    if part == "service":
        report.criteria = list(full.criteria[:split])
    elif split < len(full.criteria):
        report.criteria = list(full.criteria[split:])
    else:
        first = next((c for c in full.criteria if not c.passed), None)
        report.fail("the service runs and answers from outside, so its data can be checked",
                    hint=f"fix exercise 3a first: {first.message}" if first else "run exercise 3a's check first")
    return report


@learner_check
def security(dockerfile: str) -> CheckReport:
    """Exercise 4: hadolint and the course's Rego policy, one criterion per policy rule."""
    return security_report(dockerfile)


#: Exercise 5's practice Dockerfiles: (what it shows, the Dockerfile, the lines POL-10 must deny)
RULE_PRACTICE = [
    ("a user name", "FROM careops/base:bookworm\nCOPY adt_service.py /app/\nUSER adt\n", [3]),
    ("a numeric user of 10000 or more, with a group", "FROM careops/base:bookworm\nUSER 10001:10001\n", []),
    ("a numeric user below 10000", "FROM careops/base:bookworm\nRUN true\nUSER 1000\n", [3]),
    ("a build stage's USER does not count", "FROM careops/base:bookworm AS build\nUSER builder\n"
     "FROM careops/base:bookworm\nUSER 10001\n", []),
]
RULE_ID = "POL-10"


@learner_check
def rego_rule(rule: str, cases: list[tuple[str, str, list[int]]] | None = None, *,
              title: str = "Exercise 5: your policy rule POL-10") -> CheckReport:
    """The learner's Rego rule on Dockerfiles whose answer is known: it denies exactly the lines it should."""
    from careops.dockerfile.policy import evaluate_learner_rule

    report = CheckReport(title)
    cases = RULE_PRACTICE if cases is None else cases
    if not report.check(isinstance(rule, str) and "package careops.learner" in rule,
                        "the rule is in the package careops.learner", got=None if isinstance(rule, str) else rule,
                        hint="keep the first line: package careops.learner"):
        return report
    results = report.parsed(lambda r: evaluate_learner_rule(r, [d for _, d, _ in cases]), rule,
                            "the policy compiles and runs", errors=CareOpsError)
    if results is None:
        return report
    shapes = [f for r in results for f in r.findings if f.id != RULE_ID or not f.message or not f.hint]
    report.check(not shapes, f"every finding is {{id: {RULE_ID}, line, message, hint}}",
                 got=[str(f) for f in shapes[:3]] or None,
                 hint=f'f := {{"id": "{RULE_ID}", "line": i.line, "message": ..., "hint": ...}}')
    for (label, _text, want), result in zip(cases, results):
        got = sorted(f.line for f in result.findings if f.id == RULE_ID)
        verdict = f"denied at line {', '.join(map(str, want))}" if want else "allowed"
        report.check(got == sorted(want), f"{label}: {verdict}",
                     expected=sorted(want), got=got,
                     hint="deny every USER of the final stage whose user (before ':') is not a number, or is a number "
                          "below 10000; one finding per such USER, at its line")
    return report


def _sample(mrn: str, event: str = "A01", **kw: Any) -> str:
    from careops.hl7 import build_adt

    args: dict[str, Any] = {"control_id": f"FHIR-{mrn}-{event}", "mrn": mrn, "family": "Testperson",
                            "given": "Alex", "birth_date": "19800101", "sex": "F", "phone": "555-0142",
                            "ssn": "999-12-3456"}
    args.update(kw)
    return build_adt(event, **args)


@learner_check
def fhir_patient(patient_from_adt: Any) -> CheckReport:
    """Exercise 6: map an ADT message's PID to a FHIR R4 Patient that fhir.resources (R4B) accepts."""
    from fhir.resources.R4B.patient import Patient

    report = CheckReport("Exercise 6: a FHIR R4 Patient from an ADT message")
    message = _sample("SYN-2001", family="Okafor", given="Ngozi", birth_date="19641231", sex="F")
    got, err = call_learner(patient_from_adt, message)
    if not report.check(isinstance(got, dict), "it returns a dict", got=err or type(got).__name__,
                        hint="return {\"resourceType\": \"Patient\", ...}"):
        return report
    try:
        Patient.model_validate(got)
        why = ""
    except Exception as exc:  # noqa: BLE001 - pydantic's validation error names the field
        why = str(exc).splitlines()[0:3]
    report.check(not why, "fhir.resources (R4B) accepts it as a Patient", got=why or None,
                 hint="resourceType Patient; identifier, name, gender, birthDate with FHIR's shapes")
    report.check(got.get("id") == "SYN-2001" and any(i.get("value") == "SYN-2001" for i in got.get("identifier", [])),
                 "its id and identifier are the MRN from PID-3", got=(got.get("id"), got.get("identifier")),
                 hint="id = the MRN; identifier = [{\"system\": ..., \"value\": mrn}]")
    names = got.get("name") or [{}]
    report.check(names[0].get("family") == "Okafor" and names[0].get("given") == ["Ngozi"],
                 "the name comes from PID-5 (family^given)", got=names, hint="name = [{\"family\": ..., \"given\": [...]}]")
    report.check(got.get("birthDate") == "1964-12-31", "birthDate is PID-7 as YYYY-MM-DD", got=got.get("birthDate"),
                 hint="19641231 -> 1964-12-31")
    report.check(got.get("gender") == "female", "gender maps F/M/O/U to female/male/other/unknown",
                 got=got.get("gender"), hint="FHIR uses words, HL7 v2 uses letters")
    report.check("999-12-3456" not in json_dumps(got), "the SSN (PID-19) is not copied (minimum necessary)",
                 hint="a FHIR consumer that needs no SSN must not get one")
    return report


def json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


@learner_check
def facade_bridge(adt: Any, facade: Any) -> CheckReport:
    """Exercise 6, live: an admission sent to the façade reaches the legacy service and comes out as FHIR."""
    import uuid

    from careops.containerize.live import stored
    from careops.hl7 import MllpClient

    report = CheckReport("Exercise 6: the FHIR façade in front of your service")
    mrn = f"SYN-F{uuid.uuid4().hex[:6].upper()}"
    try:
        with MllpClient("127.0.0.1", facade.port(2575), timeout=10) as client:
            ack = client.send(_sample(mrn))
        ok, got = ack.ok, f"{ack.code} {ack.text}"
    except Exception as exc:  # noqa: BLE001
        ok, got = False, str(exc)
    if not report.check(ok, "an ADT^A01 sent to the façade gets the legacy service's AA", got=None if ok else got,
                        hint=f"start the façade with FACADE_UPSTREAM={legacy_adt.CONTAINER}:{legacy_adt.MLLP_PORT} "
                             f"in the same lab as your {legacy_adt.CONTAINER} container"):
        return report
    report.check(stored(adt, [mrn]) == [mrn], "the legacy service stored it (it stays the system of record)",
                 hint="the façade forwards every message unchanged")
    url_port = facade.port(8080)
    status, body = _get_json(url_port, f"/fhir/Patient/{mrn}")
    report.check(status == 200 and isinstance(body, dict) and body.get("resourceType") == "Patient",
                 "GET /fhir/Patient/<MRN> on the façade returns a FHIR Patient", got=(status, str(body)[:200]))
    status, body = _get_json(url_port, f"/fhir/Encounter/V-{mrn}")
    report.check(status == 200 and isinstance(body, dict) and body.get("status") == "in-progress",
                 "GET /fhir/Encounter/V-<MRN> returns the open Encounter", got=(status, str(body)[:200]))
    return report


def _get_json(port: int, path: str) -> tuple[int, Any]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        return 0, str(exc)


# -- live checks for the grader ---------------------------------------------------------

class LearnerBoundChecks:
    """``careops.checks.containerize`` with the grader's learner id bound into the live check.

    The live cell opens its own lab; bound to the graded learner's id, two submissions graded at the same
    time never share (and never reclaim) each other's lab or images.
    """

    def __init__(self, learner: str) -> None:
        self.learner = learner

    def live(self, dockerfile: str, dockerignore: str | None, *, part: str = "all") -> Any:
        return live(dockerfile, dockerignore, learner=self.learner, part=part)

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.modules[__name__], name)


@live_check("containerize.live")
def setup_live(lab: Any, artifacts: dict[str, str]) -> dict[str, Any]:
    """Exercise 3: the cell builds and runs the artifacts itself; it needs their text and a learner-bound ``check``."""
    return {"adt_dockerfile": artifacts["adt_dockerfile"], "adt_dockerignore": artifacts.get("adt_dockerignore"),
            "check": LearnerBoundChecks(lab.learner)}


@live_check("containerize.facade_bridge")
def setup_facade_bridge(lab: Any, artifacts: dict[str, str]) -> dict[str, Any]:
    """Exercise 6: the learner's image as ``adt`` and the course's façade in front of it, in the grader's lab.

    The learner image is removed when the lab object goes away (or at exit), whatever the test did.
    """
    image = build_learner_image(artifacts["adt_dockerfile"], artifacts.get("adt_dockerignore"), learner=lab.learner,
                                progress=False, client=lab.client)
    if not image.ok:
        raise LabError(f"your Dockerfile does not build: {image.reason}", fix=image.hint)
    weakref.finalize(lab, image.remove)
    adt = run_service(lab, str(image.tag))
    adt.wait_until("healthy", timeout=60)
    facade = lab.run(FHIR_FACADE_IMAGE, name="fhir-facade", ports=[2575, 8080],
                     env={"FACADE_UPSTREAM": f"{legacy_adt.CONTAINER}:{legacy_adt.MLLP_PORT}"})
    facade.wait_until("healthy", timeout=60)
    return {"adt": adt, "facade": facade, "adt_dockerfile": artifacts["adt_dockerfile"],
            "adt_dockerignore": artifacts.get("adt_dockerignore")}
