"""`careops synth` (careops.apps.synth.main): the three formats, reproducibility, and clear errors."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from careops.apps.synth import main
from careops.errors import CareOpsError
from careops.synth.export import read_hl7_file


def test_csv_is_written_and_byte_identical_for_the_same_seed(tmp_path: Path, capsys) -> None:
    assert main(patients=40, seed=3, fmt="csv", out=tmp_path / "a", anomalies=True, progress=False) == 0
    assert main(patients=40, seed=3, fmt="csv", out=tmp_path / "b", anomalies=True, progress=False) == 0
    out = capsys.readouterr().out
    assert "wrote 6 file(s)" in out and "every identifier is synthetic" in out
    a = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    assert a == {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    patients = pd.read_csv(tmp_path / "a" / "patients.csv", dtype=str, keep_default_na=False)
    assert len(patients) == 40 + 1  # 2 % duplicates of 40, rounded
    assert patients["MRN"].str.startswith("SYN-").all()


def test_fhir_with_validation(tmp_path: Path, capsys) -> None:
    assert main(patients=8, seed=4, fmt="fhir", out=tmp_path, validate=True, progress=False) == 0
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 8
    bundle = json.loads(files[0].read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    assert "all 8 bundles validate" in capsys.readouterr().out


def test_fhir_validation_fails_on_planted_anomalies(tmp_path: Path, capsys) -> None:
    assert main(patients=60, seed=4, fmt="fhir", out=tmp_path, anomalies=True, validate=True, progress=False) == 1
    err = capsys.readouterr().err
    assert "validation problem(s)" in err and "outside the physiological range" in err


def test_hl7(tmp_path: Path) -> None:
    assert main(patients=5, seed=5, fmt="hl7", out=tmp_path, progress=False) == 0
    messages = read_hl7_file(tmp_path / "adt.hl7")
    assert messages and all(m.startswith("MSH|^~\\&|") for m in messages)


@pytest.mark.parametrize("kwargs, message", [
    ({"fmt": "xml"}, "unknown format 'xml': expected one of csv, fhir, hl7"),
    ({"as_of": "01/01/2026"}, "--as-of must be a date like 2026-01-01, got '01/01/2026'"),
    ({"patients": 0}, "patients must be a whole number of at least 1"),
])
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    args = {"patients": 3, "seed": 1, "fmt": "csv", "out": tmp_path, "progress": False, **kwargs}
    with pytest.raises(CareOpsError, match=message) as err:
        main(**args)
    assert err.value.fix


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    with pytest.raises(CareOpsError, match="is a file, expected a folder"):
        main(patients=3, seed=1, fmt="csv", out=target, progress=False)
    assert target.read_text() == "keep me"  # nothing lost


def test_as_of_moves_the_cohort(tmp_path: Path) -> None:
    assert main(patients=10, seed=1, fmt="csv", out=tmp_path, as_of="2020-06-30", progress=False) == 0
    enc = pd.read_csv(tmp_path / "encounters.csv")
    assert enc["START"].max() < "2020-07-01"
