"""Write a cohort to disk: Synthea-style CSV, FHIR bundles as JSON, HL7 v2 as text.

Why fixed formatting: the same seed must give byte-identical files, so a
change in the output is always a change in the generator, never in the run.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from careops.synth.fhir import patient_bundles
from careops.synth.hl7 import adt_messages
from careops.synth.model import Cohort, output_folder

FORMATS = ("csv", "fhir", "hl7")


def write_csv(cohort: Cohort, out: str | Path) -> list[Path]:
    """One CSV per table (patients.csv, encounters.csv, ...) plus anomalies.csv (``Cohort.to_csv``)."""
    return cohort.to_csv(out)


def write_fhir(cohort: Cohort, out: str | Path, *, on_bundle: Callable[[], None] | None = None) -> list[Path]:
    """One transaction bundle per patient as ``fhir/<patient id>.json``."""
    path = output_folder(out)
    written = []
    for bundle in patient_bundles(cohort):
        pid = bundle["entry"][0]["resource"]["id"]
        target = path / f"{pid}.json"
        target.write_text(json.dumps(bundle, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written.append(target)
        if on_bundle:
            on_bundle()
    return written


def write_hl7(cohort: Cohort, out: str | Path) -> list[Path]:
    """All A01/A03 messages in ``adt.hl7`` (one message per block, segments on their own lines)."""
    path = output_folder(out)
    target = path / "adt.hl7"
    target.write_text("\n\n".join(m.replace("\r", "\n") for m in adt_messages(cohort)) + "\n", encoding="utf-8")
    return [target]


def read_hl7_file(path: str | Path) -> Iterable[str]:
    """The messages of a file written by ``write_hl7``, with ``\\r`` segment separators again."""
    text = Path(path).read_text(encoding="utf-8")
    return [block.replace("\n", "\r") for block in text.strip().split("\n\n") if block.strip()]
