"""careops.checks.containerize: each notebook check passes on the solution and fails, with a hint, without it."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from careops.checks import CheckFailed
from careops.checks import containerize as check
from careops.grading.references import load as load_reference

ROOT = Path(__file__).resolve().parents[1]
GOOD = (ROOT / "grading/references/containerize/Dockerfile").read_text()
IGNORE = (ROOT / "grading/references/containerize/.dockerignore").read_text()
#: exercise 1's answer key: with the grader's references (the toolkit keeps digests only)
ANSWERS = load_reference("containerize").FAULTS


def test_the_toolkit_keeps_exercise_1s_answers_as_digests_only() -> None:
    import inspect

    assert {k: check.fault_digest(k, v) for k, v in ANSWERS.items()} == check.FAULT_DIGESTS
    text = inspect.getsource(check)
    assert not any(f'"{letter}": "{fault}"' in text for letter, fault in ANSWERS.items())


def test_legacy_faults_both_ways() -> None:
    assert check.legacy_faults(ANSWERS).passed
    with pytest.raises(CheckFailed, match="excerpt C") as err:
        check.legacy_faults({**ANSWERS, "C": "phi-in-log"})
    assert "a crash before the commit" not in str(err.value)  # the hint explains the wrong answer given
    assert "logging the whole PID segment" in str(err.value)
    with pytest.raises(CheckFailed, match="one of the fault names"):
        check.legacy_faults({**ANSWERS, "A": "bad path"})
    with pytest.raises(CheckFailed, match="dict"):
        check.legacy_faults(["A"])


def test_static_and_security_both_ways() -> None:
    assert check.dockerfile_static(GOOD, IGNORE).passed
    with pytest.raises(CheckFailed, match="DF03"):
        check.dockerfile_static(GOOD.replace("USER 10001:10001", "USER root"), IGNORE)
    assert check.security(GOOD).passed
    with pytest.raises(CheckFailed) as err:
        check.security(GOOD + "RUN chmod 777 /data\n")
    assert "POL-6" in str(err.value) and "chown the data folder" in str(err.value)
    with pytest.raises(CheckFailed, match="can be read"):
        check.security("RUNN\n")


def _reference_mapping():
    sys.path.insert(0, str(ROOT / "labs/containerize/fhir-facade"))
    try:
        import adt_fhir
    finally:
        sys.path.pop(0)
    return adt_fhir.patient


def test_fhir_patient_both_ways() -> None:
    assert check.fhir_patient(_reference_mapping()).passed
    with pytest.raises(CheckFailed, match="returns a dict"):
        check.fhir_patient(lambda m: None)
    with pytest.raises(CheckFailed, match="gender"):
        check.fhir_patient(lambda m: {**_reference_mapping()(m), "gender": "F"})

    def leaky(message: str) -> dict:
        patient = _reference_mapping()(message)
        patient["identifier"].append({"system": "http://hl7.org/fhir/sid/us-ssn", "value": re.search(r"999-\d\d-\d{4}", message).group(0)})
        return patient
    with pytest.raises(CheckFailed, match="SSN"):
        check.fhir_patient(leaky)
    with pytest.raises(CheckFailed, match="accepts it as a Patient"):
        check.fhir_patient(lambda m: {**_reference_mapping()(m), "birthDate": "31.12.1964"})
