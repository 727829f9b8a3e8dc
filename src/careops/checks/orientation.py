"""Checks for Module 0 (orientation). Visible cells call these; hidden tests add cases."""
from __future__ import annotations

import time
from typing import Any, Callable

from careops.report import CheckReport, call_learner, learner_check
from careops.checks import live_check
from careops.errors import CareOpsError
from careops.images.catalog import LAB_IMAGE
from careops.lab.policy import format_bytes

MAX_MEMORY = 128 * 1024**2
MAX_CPUS = 0.5
MAX_PIDS = 64




@learner_check
def synthetic_markers(is_synthetic: Callable[[str, str], bool]) -> CheckReport:
    """Exercise 1: tell values with a synthetic marker from real-looking ones."""
    report = CheckReport("Exercise 1: synthetic or real-looking?")
    # Real-looking negatives are built from parts so that the repository's PHI scan stays a clean
    # signal; the number is the SSA's voided advertising example, never a person's.
    real_looking_ssn = "-".join(["123", "45", "6789"])
    cases = {
        "ssn": ([("999-12-3456", True), (real_looking_ssn, False)],
                "a synthetic SSN is the whole value 999-NN-NNNN (999, two digits, four digits): match all of it"),
        "phone": ([("555-0142", True), ("555-2368", False)],
                  "only 555-0100 to 555-0199 are reserved for fiction: look at the last seven digits"),
        "email": ([("pat.doe@example.org", True), ("pat.doe@hospital-mail.net", False)],  # phi-scan: allow -- a deliberately real-looking negative
                  "synthetic addresses end with @example.org"),
        "mrn": ([("SYN-000123", True), ("MRN-000123", False)],
                "synthetic medical record numbers start with SYN-"),
    }
    for kind, (examples, hint) in cases.items():
        wrong = []
        for value, want in examples:
            got, err = call_learner(is_synthetic, kind, value)
            if err or got is not want:
                wrong.append(f"is_synthetic({kind!r}, {value!r}) gave {err or repr(got)}, expected {want}")
        report.check(not wrong, f"{kind}: synthetic values are recognised, real-looking ones are not",
                     hint=hint + (" | " + "; ".join(wrong) if wrong else ""))
    got, err = call_learner(is_synthetic, "licence-plate", "SYN-1")
    report.check(got is False, "an unknown kind of value is treated as real (return False)",
                 hint="when in doubt, treat data as real PHI: return False for kinds you do not know",
                 expected=False, got=err or got)
    return report


@learner_check
def container_spec(spec_text: str) -> CheckReport:
    """Exercise 2, static part: the spec meets the change board's rules."""
    from careops.lab.spec import parse_spec

    report = CheckReport("Exercise 2a: the triage-probe container spec")
    spec = report.parsed(parse_spec, spec_text, "the spec is valid YAML with known keys", errors=CareOpsError)
    if spec is None:
        return report
    report.check(spec.name == "triage-probe", "it is named triage-probe", expected="triage-probe", got=spec.name,
                 hint="name: triage-probe")
    report.check(spec.image in (None, LAB_IMAGE), f"it runs the lab image {LAB_IMAGE}", expected=LAB_IMAGE,
                 got=spec.image, hint=f"image: {LAB_IMAGE} (the course builds it offline)")
    report.check(spec.limits.memory <= MAX_MEMORY, "memory is at most 128 MiB", expected="<= 128 MiB",
                 got=format_bytes(spec.limits.memory), hint="limits: {memory: 128m}")
    report.check(spec.limits.cpus <= MAX_CPUS, "CPU is at most half a core", expected="<= 0.5",
                 got=spec.limits.cpus, hint="limits: {cpus: 0.5}")
    report.check(spec.limits.pids <= MAX_PIDS, "at most 64 processes", expected="<= 64", got=spec.limits.pids,
                 hint="limits: {pids: 64} stops a fork bomb from starving the host")
    report.check(spec.user not in (None, "", "0", "root") and not str(spec.user).startswith("0:"),
                 "it runs as a non-root user", expected="a non-root uid such as 1000", got=spec.user,
                 hint="user: '1000' (the lab image's learner user)")
    report.check(spec.read_only, "its root filesystem is read-only", expected=True, got=spec.read_only,
                 hint="read_only: true; a read-only container gets a small writable /tmp")
    report.check(bool(spec.labels.get("hospital.owner")), "it names its owner in the label hospital.owner",
                 got=spec.labels.get("hospital.owner"), hint="labels: {hospital.owner: ward-it}")
    report.check(spec.labels.get("hospital.data") == "synthetic", "it declares hospital.data: synthetic",
                 expected="synthetic", got=spec.labels.get("hospital.data"),
                 hint="labels: {hospital.data: synthetic}: this container never sees real PHI")
    return report


@learner_check
def running_container(container: Any) -> CheckReport:
    """Exercise 2, live part: the engine really enforces what the spec asked for."""
    report = CheckReport("Exercise 2b: the running triage-probe")
    try:
        lim = container.limits()
    except Exception as exc:  # noqa: BLE001
        report.fail(f"the container can be inspected: {exc}", hint="run the cell that starts it first")
        return report
    report.check(container.status == "running", "it is running", expected="running", got=container.status,
                 hint="lab.run_spec(triage_probe_spec) starts it; .logs() tells why it stopped")
    report.check(0 < int(lim["memory"]) <= MAX_MEMORY, "the engine enforces a memory limit of at most 128 MiB",
                 got=format_bytes(int(lim["memory"])) if lim["memory"] else "none")
    report.check(0 < float(lim["cpus"]) <= MAX_CPUS, "the engine enforces a CPU limit of at most 0.5", got=lim["cpus"])
    report.check(0 < int(lim["pids"]) <= MAX_PIDS, "the engine enforces a pids limit of at most 64", got=lim["pids"])
    uid = container.exec(["id", "-u"], check=False, timeout=10).output.strip()
    report.check(uid not in ("0", ""), "inside, the process is not root", expected="non-zero uid", got=uid)
    wrote = container.exec(["sh", "-c", "touch /etc/careops-probe"], check=False, timeout=10)
    report.check(not wrote.ok, "writing to the root filesystem fails", expected="refused", got=wrote.output.strip() or "allowed",
                 hint="read_only: true")
    labels = container.labels
    report.check(labels.get("hospital.data") == "synthetic" and bool(labels.get("hospital.owner")),
                 "the labels reached the container", got={k: v for k, v in labels.items() if k.startswith("hospital.")})
    return report


@learner_check
def leaked_names(fn: Callable[[Any, str], list[str]]) -> CheckReport:
    """Exercise 3: pick the leaked resources of one lab from the `labs ls` table."""
    import pandas as pd

    report = CheckReport("Exercise 3: leaked resources")
    table = pd.DataFrame([
        {"kind": "container", "name": "careops-ana-night-shift-pump", "lab": "night-shift", "learner": "ana", "status": "running", "leaked": True},
        {"kind": "volume", "name": "careops-ana-night-shift-db", "lab": "night-shift", "learner": "ana", "status": "-", "leaked": True},
        {"kind": "container", "name": "careops-ana-orientation-probe", "lab": "orientation", "learner": "ana", "status": "running", "leaked": False},
        {"kind": "network", "name": "careops-ana-orientation", "lab": "orientation", "learner": "ana", "status": "-", "leaked": False},
        {"kind": "container", "name": "careops-ana-pharmacy-feed-relay", "lab": "pharmacy-feed", "learner": "ana", "status": "exited", "leaked": True},
    ])
    lab = "night-shift"
    # the practice table's answer and its two wrong neighbours, written out (the check never runs the filter
    # the exercise asks for: that would be the answer in the toolkit)
    want = ["careops-ana-night-shift-db", "careops-ana-night-shift-pump"]
    still_in_use = {"careops-ana-orientation-probe", "careops-ana-orientation"}
    leaked_elsewhere = {"careops-ana-pharmacy-feed-relay"}
    got, err = call_learner(fn, table.copy(), lab)
    report.check(err is None, "it runs on the table", hint="it takes (table, lab) and returns a list", got=err)
    if err is None:
        report.check(isinstance(got, list), "it returns a list", expected="list", got=type(got).__name__,
                     hint="turn a pandas Series into a list with .tolist()")
        names = [str(n) for n in got] if isinstance(got, (list, tuple)) else []
        # each criterion fails exactly when its own property does
        in_use = sorted(set(names) & still_in_use)
        report.check(not in_use, "resources still in use are kept", got=in_use or None,
                     hint="keep only the rows whose leaked column is True")
        other_labs = sorted(set(names) & leaked_elsewhere)
        report.check(not other_labs, f"leaked resources of other labs are left alone (only {lab})", got=other_labs or None,
                     hint="filter on the lab column too: another lab may be someone's work in progress")
        missing = [n for n in want if n not in names]
        report.check(not missing, f"every leaked resource of {lab} is listed", got=f"missing {missing}" if missing else None,
                     hint="both the container and the volume of the lab leaked")
        report.check(names == sorted(names), "the names are sorted", got=names if names != sorted(names) else None,
                     hint="sorted(...) gives names in alphabetical order")
    return report


#: How long a clean-up check waits for what is left when none of it is being removed (the learner has not cleaned up
#: yet: waiting out the whole timeout would only delay the same answer)
CLEAN_UP_GRACE_SECONDS = 2.0


def clean_up_report(lab: str, *, timeout: float, hint: str) -> CheckReport:
    """Nothing of the learner's own ``lab`` is left on the engine (polled, it settles); every module's clean-up check."""
    from careops.polling import eventually
    from careops.lab import find
    from careops.lab.labels import learner_id

    report = CheckReport(f"Clean-up of {lab}")
    you = learner_id()  # another learner's lab of the same name is theirs, not yours to clean
    asked = time.monotonic()

    def settled(left: list) -> bool:
        """Nothing left, or only what is not on its way out: a clean-up that returned has removed everything, so
        after a moment's grace only a container the engine is still removing is worth waiting for."""
        going = any(r.kind == "container" and r.status in ("removing", "dead") for r in left)
        return not left or (not going and time.monotonic() - asked >= CLEAN_UP_GRACE_SECONDS)

    left = eventually(lambda: find(lab, you), until=settled, timeout=timeout, what=f"an empty {lab}")
    report.check(not left, f"no container, network or volume of {lab} is left",
                 got=[f"{r.kind} {r.name}" for r in left], hint=hint)
    return report


@learner_check
def lab_is_clean(lab: str, *, timeout: float = 30) -> CheckReport:
    """After the clean-up: nothing of ``lab`` is left on the engine (polled, it settles)."""
    return clean_up_report(lab, timeout=timeout, hint=f"careops labs reset {lab} --yes, or careops.lab.reset({lab!r})")


# -- live checks for the grader ---------------------------------------------------------

@live_check("orientation.running_container")
def setup_running_container(lab: Any, artifacts: dict[str, str]) -> dict[str, Any]:
    """Exercise 2: start the learner's triage-probe spec as ``probe``."""
    return {"probe": lab.run_spec(artifacts["triage_probe_spec"])}
