"""Module 6's checks both ways: the solution artifacts pass every criterion; each broken answer fails the criterion
named for what it breaks (plain-text port left open, a sender that verifies nothing, a wildcard scope, the key in
the container's environment, an old key retired before re-sealing, self-approval, a review that counts refused reads).
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pandas as pd
import pytest

from careops.checks import live_checks
from careops.checks import patient_data as check
from careops.grading.references import load
from careops.lab import Lab
from careops.report import CheckReport

ref = load("patient_data")


def failed(report: CheckReport) -> list[str]:
    return [c.message for c in report.criteria if not c.passed]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab("checks-patient-data", workdir=tempfile.mkdtemp(prefix="careops-pd-checks-")) as lab:
        yield lab


def test_live_checks_are_registered() -> None:
    known = live_checks()
    for name in ("patient_data.transport", "patient_data.access", "patient_data.at_rest"):
        assert name in known
    assert known["patient_data.at_rest"](None, {"deployment": "d", "rotation": "r"}) == {"deployment": "d",
                                                                                         "rotation": "r", "lab": None}


def test_transport_solution_passes(lab: Lab) -> None:
    report = check.transport.report(ref.solution_artifact("deployment"), lab=lab)
    assert report.passed, failed(report)
    assert len(report.criteria) == 7


def test_transport_with_plain_ports_and_a_trusting_sender_fails_those_criteria(lab: Lab) -> None:
    careless = ("mllp: {plain: true, tls: true, client_certificates: none}\nfhir: {http: true, https: true}\n"
                "sender: {verify: false}\nstore: {key: secret}\n")
    assert failed(check.transport.report(careless, lab=lab)) == [
        "no plain-text port is open (MLLP 2575, HTTP 8080)",
        "a sender without a client certificate is refused (mutual TLS)",
        "your sender refuses an expired and a wrong-host certificate"]


def test_transport_without_tls_fails_and_stops(lab: Lab) -> None:
    report = check.transport.report("mllp: {plain: true}\nfhir: {http: true}\n", lab=lab)
    assert failed(report) == ["no plain-text port is open (MLLP 2575, HTTP 8080)", "MLLP over TLS and HTTPS are on"]
    assert failed(check.transport.report("mllp: [", lab=lab))[0].startswith("your deployment can be read")


def test_access_solution_passes_the_practice_and_hidden_cases(lab: Lab) -> None:
    report = check.access.report(ref.solution_artifact("access_policy"), cases=ref.ACCESS_CASES, lab=lab)
    assert report.passed, failed(report)
    assert "12 of 12 reads" in report.criteria[-2].message


def test_access_with_a_wildcard_and_no_ward_limit_fails(lab: Lab) -> None:
    wide = ref.solution_artifact("access_policy").replace(
        "ward-nurse: {scopes: [user/Patient.read], wards: own, break_glass: true}",
        "ward-nurse: {scopes: ['user/*.read'], wards: all, break_glass: true}")
    report = check.access.report(wide, cases=ref.ACCESS_CASES, lab=lab)
    # with every ward open to nurses no read needs break-glass, so none is audited as one
    assert failed(report) == ["no role has a wildcard scope", "10 of 12 reads answer as they should",
                              "the break-glass read is in the audit log"]
    assert any("nurse, other ward: expected 403, got 200" in str(c.got) for c in report.criteria)


def test_access_without_roles_denies_everything_and_says_which_roles_are_missing(lab: Lab) -> None:
    report = check.access.report("roles: {}\n", lab=lab)
    assert failed(report)[0] == "it describes every role of the task"
    assert "2 of 5 reads" in failed(report)[1]  # no token 401 and other ward 403 are right by default
    assert failed(report)[2] == "the break-glass read is in the audit log"


def test_at_rest_solution_passes(lab: Lab) -> None:
    report = check.at_rest.report(ref.solution_artifact("deployment"), ref.solution_artifact("rotation"), lab=lab)
    assert report.passed, failed(report)


def test_at_rest_with_the_key_in_the_environment_fails_those_criteria(lab: Lab) -> None:
    in_env = ref.solution_artifact("deployment").replace("store: {key: secret}", "store: {key: env}")
    report = check.at_rest.report(in_env, ref.solution_artifact("rotation"), lab=lab)
    assert failed(report) == ["the key comes from a mounted secret",
                              "no key or MRN is in the container's configuration or the image",
                              "every record is readable after the rotation"]
    assert "no mounted keyring to rotate to" in str(report.criteria[-1].got)


def test_at_rest_without_a_key_or_retiring_before_resealing_fails(lab: Lab) -> None:
    clear = ref.solution_artifact("deployment").replace("store: {key: secret}", "store: {key: none}")
    report = check.at_rest.report(clear, "steps: [add-key, retire-old, reseal, verify]\n", lab=lab)
    assert failed(report) == ["the runbook verifies the re-sealed records before it retires the old key",
                              "the key comes from a mounted secret",
                              "the database file holds no name or MRN in clear"]  # a clear store has no key to lose
    report = check.at_rest.report(ref.solution_artifact("deployment"), "steps: [add-key, retire-old, reseal]\n",
                                  lab=lab)
    assert failed(report) == ["the runbook verifies the re-sealed records before it retires the old key",
                              "every record is readable after the rotation"]
    assert "0; " in str(report.criteria[-1].got)
    assert failed(check.at_rest.report(ref.solution_artifact("deployment"), "steps: [shred]\n", lab=lab)) == [
        "your rotation runbook can be read: unknown steps ['shred']"]


STARTER = """package careops.signoff

import rego.v1

deny contains msg if {
	false
	msg := "not written yet"
}
"""


def test_signoff_solution_passes_and_the_starter_lets_authors_approve_themselves() -> None:
    solution = ref.solution_artifact("signoff_policy")
    assert check.signoff_rule.report(solution, cases=ref.SIGNOFF_CASES).passed
    report = check.signoff_rule.report(STARTER, cases=ref.SIGNOFF_CASES)
    assert failed(report) == ["3 of 10 sign-off cases decided as they should"]  # it signs everything
    assert "the author approves their own change: expected refuse, the policy signs" in report.criteria[0].got
    only_self = solution.split("deny contains sprintf(\"%s is not on")[0]
    assert "someone off the list: expected refuse" in str(check.signoff_rule.report(only_self).criteria[0].got)
    assert "could not be evaluated" in failed(check.signoff_rule.report("package careops.signoff\ndeny contains"))[0]


def naive_review(audit: pd.DataFrame, staff: pd.DataFrame) -> pd.DataFrame:
    """Counts refused reads too: a refused read exposed nothing."""
    out = audit.merge(staff.rename(columns={"ward": "staff_ward"}), on="actor")
    out["patient"] = out["resource"].str.removeprefix("Patient/")
    out["patient_ward"] = out["details"].map(lambda d: d["patient_ward"])
    out["break_glass"] = out["details"].map(lambda d: d["break_glass"])
    return out[out["staff_ward"] != out["patient_ward"]][check.REVIEW_COLUMNS]


def test_access_review_reference_passes_practice_and_hidden_and_a_naive_one_fails() -> None:
    assert check.access_review.report(ref.outside_ward).passed
    frame, staff, answer = ref.review_case()
    got = ref.outside_ward(frame, staff)
    assert [tuple(r) for r in got.itertuples(index=False)] == answer
    assert failed(check.access_review.report(naive_review)) == [
        "it lists the two answered reads outside the reader's ward, in log order"]
    assert failed(check.access_review.report(lambda a, s: a)) == [
        "it returns a DataFrame with the columns actor, patient, staff_ward, patient_ward, outcome, break_glass"]

    def stub(audit: pd.DataFrame, staff: pd.DataFrame) -> pd.DataFrame:
        raise NotImplementedError()

    assert "not written yet" in str(check.access_review.report(stub).criteria[0].got)


def test_the_notebooks_solution_artifacts_are_the_references() -> None:
    """Benches and these tests run exactly what a learner is expected to write."""
    from pathlib import Path

    from careops.artifacts import extract

    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "06-patient-data" / "patient-data.ipynb"
    artifacts = extract(notebook)
    for name in ref.SOLUTION_FILES:
        assert artifacts[name] == ref.solution_artifact(name), name
