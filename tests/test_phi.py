"""Tests for careops.phi: recall on PHI-like strings, false positives on synthetic ones.

Every real-looking identifier below is assembled at run time from parts
(e.g. "-".join([...])).  Why: the repository's hygiene check and our own PHI
guard scan tracked files, and a literal real-looking SSN/phone/e-mail in a
test file would (rightly) trip them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from careops.phi import (
    ALLOW_MARKER,
    KINDS,
    PHI_FIX,
    FileSkipped,
    PhiScanError,
    ScanReport,
    mask,
    scan_dataframe,
    scan_file,
    scan_paths,
    scan_text,
)


def j(*parts: str, sep: str = "") -> str:
    """Join parts at run time so no real-looking identifier is a literal in this file."""
    return sep.join(parts)


def ssn(a: str, b: str, c: str) -> str:
    return j(a, b, c, sep="-")  # built at run time: see module docstring


AT = "@"  # e-mails are built at run time too
DOT = "."

# (text, expected kind) -- each must yield a non-synthetic finding of that kind.
PHI_SAMPLES: list[tuple[str, str]] = [
    (f"SSN: {ssn('123', '45', '6789')}", "ssn"),
    (f"patient ssn {ssn('078', '05', '1120')} on file", "ssn"),
    (f"{ssn('212', '67', '4432')}", "ssn"),
    (f"SSN {j('5', '01', '23', '4567')}", "ssn"),
    (f"id={ssn('665', '12', '3456')};", "ssn"),
    (f"call {j('(617) ', '253', '-1000')}", "phone"),
    (f"phone: {j('212', '-', '867', '-', '5309')}", "phone"),
    (f"mobile {j('415', '.', '392', '.', '0147')}", "phone"),
    (f"tel {j('+1 ', '312', ' ', '744', ' ', '2290')}", "phone"),
    (f"cell {j('1-', '800', '-', '273', '-', '8255')}", "phone"),
    (f"contact {j('(212) ', '555', '-', '1234')}", "phone"),  # 555 but not 01xx: not reserved
    (f"Fax: {j('617', '-', '253', '-', '1001')}", "fax"),
    (f"fax no. {j('(508) ', '334', '-', '4100')}", "fax"),
    (f"FAX {j('781', '.', '744', '.', '8000')}", "fax"),
    (f"email {j('jane.smith', AT, 'mercyhealth', DOT, 'org')}", "email"),
    (f"{j('bob', AT, 'gmail', DOT, 'com')}", "email"),
    (f"reply to {j('r.garcia+lab', AT, 'stmarys-hospital', DOT, 'net')}", "email"),
    (f"{j('lee', AT, 'example.org.attacker', DOT, 'net')}", "email"),
    (f"MRN: {j('0012', '3456')}", "mrn"),
    (f"mrn={j('A', '7734', '219')}", "mrn"),
    (f"Medical record number {j('88', '0421', '7')}", "mrn"),
    (f"MRN#{j('MRN-', '0001', '23')}", "mrn"),
    (f"DOB {j('1984', '-', '03', '-', '27')}", "date"),
    (f"admitted {j('07', '/', '14', '/', '2019')}", "date"),
    (f"{j('PID|1||', 'SYN-1', '||DOE^JANE||', '1975', '0412', '|F')}", "date"),
    (f"discharged on {j('2023', '-', '11', '-', '02')}", "date"),
    (f"ZIP: {j('021', '39')}", "zip"),
    (f"zip code {j('60', '614', '-', '1234')}", "zip"),
    (f"12 Elm St, Springfield, IL {j('627', '04')}", "zip"),
    (f"client ip {j('8', '.8', '.4', '.4')}", "ip"),
    (f"from {j('10', '.', '23', '.', '4', '.', '7')}", "ip"),
    (f"host={j('172', '.', '16', '.', '5', '.', '22')}", "ip"),
    (f"see {j('https://', 'portal.', 'mercyhealth', '.org/patient/42')}", "url"),
    (f"{j('http://', '93.184', '.216.34', '/chart')}", "url"),
    (f"Patient {j('Maria', ' ', 'Garcia')} seen today", "name"),
    (f"{j('Robert', ' ', 'Johnson')}, 54, chest pain", "name"),
    (f"next of kin: {j('Linda', ' ', 'Nguyen')}", "name"),
    (f"Account: {j('4400', '1299', '87')}", "account"),
    (f"acct # {j('9912', '0034')}", "account"),
    (f"Policy number {j('HX', '4471', '0092')}", "account"),
    (f"Member ID: {j('W', '2938', '4471')}", "account"),
]

# Synthetic markers and ordinary text -- none may yield a non-synthetic finding.
SYNTHETIC_SAMPLES: list[str] = [
    "SSN: 999-12-3456",
    "ssn 999-00-0001 (synthetic)",
    "call (212) 555-0199",
    "phone: 617-555-0100",
    "tel +1 212.555.0142",
    "fax 508-555-0123",
    "email pat.doe@example.org",
    "Lee.Wong@EXAMPLE.ORG",
    "ops@mail.example.com",
    "noreply@example.net",
    "MRN: SYN-000123",
    "mrn=SYN-77",
    "patient SYN-004211 admitted",
    "listen on 127.0.0.1:8888",
    "docs use 192.0.2.15 and 198.51.100.7",
    "client 203.0.113.250",
    "bind 0.0.0.0",
    "open http://localhost:8888/lab",
    "see https://example.org/patients/1",
    "https://www.example.com/fhir/Patient/SYN-1",
    "http://127.0.0.1:5000/health",
    "John Doe is the placeholder name",
    "Jane Doe, synthetic",
    "version 1.2.3 released",
    "pandas==2.2.3",
    "build 2024 passed",
    "the year 1999 only",
    "ratio 3/4 of the cohort",
    "port 8080 is free",
    "LOINC 8867-4 heart rate",
    "LOINC 85354-9 blood pressure panel",
    "SNOMED 44054006",
    "sha256:9f86d081884c7d659a2feaa0c55ad015",
    "timeout=30 retries=5",
    "Smith chart review pending",
    "Docker Compose starts the lab",
    "The Jupyter server runs in a container",
    "ACK with MSA|AA|MSG00001",
    "policy: CKV_DOCKER_2 healthcheck",
    "account: the service account for CI",
    "zip the artifacts into release.zip",
    "ages over 89 become 90+",
]


def _detected(text: str, kind: str) -> bool:
    return any(f.kind == kind and not f.synthetic for f in scan_text(text))


def test_sample_sets_are_big_enough() -> None:
    assert len(PHI_SAMPLES) >= 40, f"expected >= 40 PHI samples, got {len(PHI_SAMPLES)}"
    assert len(SYNTHETIC_SAMPLES) >= 40, f"expected >= 40 synthetic samples, got {len(SYNTHETIC_SAMPLES)}"
    assert {k for _, k in PHI_SAMPLES} == set(KINDS), "every kind needs PHI samples"


def test_recall_and_false_positive_rate() -> None:
    missed = [(mask(t), k) for t, k in PHI_SAMPLES if not _detected(t, k)]
    recall = 1 - len(missed) / len(PHI_SAMPLES)
    false_pos = [(t, [str(f) for f in scan_text(t) if not f.synthetic]) for t in SYNTHETIC_SAMPLES]
    false_pos = [fp for fp in false_pos if fp[1]]
    fp_rate = len(false_pos) / len(SYNTHETIC_SAMPLES)
    print(f"\nPHI recall: {recall:.3f} ({len(PHI_SAMPLES) - len(missed)}/{len(PHI_SAMPLES)}); "
          f"false-positive rate: {fp_rate:.3f} ({len(false_pos)}/{len(SYNTHETIC_SAMPLES)})")
    assert recall >= 0.9, f"expected recall >= 0.9, got {recall:.3f}; missed (masked): {missed}"
    assert fp_rate <= 0.05, f"expected FP rate <= 0.05, got {fp_rate:.3f}; flagged: {false_pos}"


def test_every_kind_detected_individually() -> None:
    by_kind: dict[str, list[bool]] = {}
    for text, kind in PHI_SAMPLES:
        by_kind.setdefault(kind, []).append(_detected(text, kind))
    weak = {k: f"{sum(v)}/{len(v)}" for k, v in by_kind.items() if sum(v) < len(v) - 1}
    assert not weak, f"expected each kind to miss at most one sample, got {weak}"


def test_synthetic_markers_are_reported_as_allowed() -> None:
    found = scan_text("SSN 999-12-3456, phone 617-555-0100, pat@example.org, MRN SYN-000123")
    assert {f.kind for f in found} == {"ssn", "phone", "email", "mrn"}, f"got {found}"
    assert all(f.synthetic for f in found), f"expected all synthetic, got {found}"


def test_invalid_ssn_areas_are_not_phi() -> None:
    for area in ("000", "666", "900"):
        found = [f for f in scan_text(ssn(area, "12", "3456")) if not f.synthetic]
        assert not found, f"area {area} is never issued: expected no PHI, got {found}"


def test_masking_never_reveals_the_full_value() -> None:
    for text, _ in PHI_SAMPLES:
        for f in scan_text(text):
            shown = str(f) + repr(f)
            assert f.value not in shown, f"{f.kind} value leaked in str/repr"
            assert f.masked != f.value and len(f.masked) == len(f.value)
    one = scan_text(f"SSN {ssn('123', '45', '6789')}")[0]
    assert one.masked == "12*-**-***9", f"expected '12*-**-***9', got {one.masked!r}"
    report = ScanReport(findings=scan_text(" ".join(t for t, _ in PHI_SAMPLES)))
    rendered = str(report) + report._repr_html_() + report.to_dataframe().to_csv()
    leaked = [f.kind for f in report.findings if len(f.value) >= 6 and f.value in rendered]
    assert not leaked, f"expected only masked values in report output, got full values for {leaked}"


def test_finding_position_and_source() -> None:
    f = scan_text(f"line one\nsee {ssn('123', '45', '6789')}", source="notes.txt")[0]
    assert (f.kind, f.source, f.line, f.column) == ("ssn", "notes.txt", 2, 5), repr(f)


def test_allow_marker_suppresses_line() -> None:
    text = f"format: {ssn('123', '45', '6789')}  # {ALLOW_MARKER} -- shows the format\n{ssn('123', '45', '6789')}"
    found = scan_text(text)
    assert [f.line for f in found] == [2], f"expected only line 2 reported, got {found}"


def test_kinds_filter_and_unknown_kind() -> None:
    text = f"{ssn('123', '45', '6789')} {j('bob', AT, 'gmail', DOT, 'com')}"
    assert {f.kind for f in scan_text(text, kinds=["email"])} == {"email"}
    with pytest.raises(PhiScanError, match="unknown PHI kind"):
        scan_text(text, kinds=["dna"])


def test_report_ok_and_views() -> None:
    report = ScanReport(findings=scan_text(f"SSN 999-12-3456\nSSN {ssn('123', '45', '6789')}"))
    assert not report.ok and len(report.phi) == 1 and len(report.findings) == 2
    assert "1 possible PHI" in str(report) and f"fix: {PHI_FIX}" in str(report)
    # the fix is the data, never the gate: the report does not suggest the allow marker
    assert ALLOW_MARKER not in str(report) + report._repr_html_() and "do not weaken the gate" in PHI_FIX
    assert "careops-table" in report._repr_html_()
    df = report.to_dataframe()
    assert list(df.columns) == ["kind", "value", "source", "line", "column", "synthetic"]
    assert ScanReport().ok and "no PHI found" in ScanReport()._repr_html_()


def test_scan_dataframe() -> None:
    df = pd.DataFrame({
        "mrn": ["SYN-000001", "SYN-000002"],
        "ssn": ["999-12-3456", ssn("123", "45", "6789")],
        "note": ["stable", None],
    })
    report = scan_dataframe(df, name="patients")
    assert report.scanned == 3
    phi = report.phi
    assert [(f.kind, f.source, f.line) for f in phi] == [("ssn", "patients['ssn']", 2)], f"got {phi}"
    assert len(report.findings) == 4  # 2 synthetic MRNs, 1 synthetic SSN, 1 PHI SSN


def test_scan_paths_skips_binary_and_large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data.bin").write_bytes(b"\x00\x01" + ssn("123", "45", "6789").encode())
    (tmp_path / "notes.md").write_text(f"phone {j('212', '-', '867', '-', '5309')}\n")
    (tmp_path / "big.txt").write_text("x" * 64)
    monkeypatch.setattr("careops.phi.scanner.MAX_FILE_BYTES", 32)
    report = scan_paths([tmp_path])
    skipped = dict((Path(p).name, why) for p, why in report.skipped)
    assert set(skipped) == {"data.bin", "big.txt"}, f"got {report.skipped}"
    assert "binary" in skipped["data.bin"] and "bytes" in skipped["big.txt"]
    assert [f.kind for f in report.phi] == ["phone"] and report.scanned == 1
    with pytest.raises(FileSkipped, match="binary"):
        scan_file(tmp_path / "data.bin")
    with pytest.raises(PhiScanError, match="cannot read"):
        scan_file(tmp_path / "missing.txt")


def test_notebook_sources_are_scanned_not_outputs(tmp_path: Path) -> None:
    import json

    nb = {"cells": [
        {"cell_type": "code", "source": ["x = 1\n", f"ssn = '{ssn('123', '45', '6789')}'\n"],
         "outputs": [{"text": j('bob', AT, 'gmail', DOT, 'com')}]},
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "lab.ipynb"
    path.write_text(json.dumps(nb))
    found = scan_file(path)
    assert [(f.kind, f.source.endswith("#cell0"), f.line) for f in found] == [("ssn", True, 2)], found
