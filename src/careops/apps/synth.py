"""`careops synth`: write a synthetic cohort as CSV, FHIR bundles or HL7 v2 ADT messages."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from careops.errors import CareOpsError
from careops.progress import Progress

#: Seconds between two progress lines in a log (a terminal shows a bar, a notebook one line).
PLAIN_EVERY = 5.0


def main(*, patients: int = 100, seed: int = 42, fmt: str = "csv", out: str | Path, anomalies: bool = False, rare: float = 1.0,
         years: int = 3, as_of: str | None = None, validate: bool = False, progress: bool = True) -> int:
    """Generate ``patients`` patients with ``seed`` and write them to ``out`` in ``fmt`` (csv, fhir or hl7).

    ``anomalies`` adds the edge-case preset (missing fields, out-of-range vitals, duplicates, non-ASCII
    names, boundary dates); ``validate`` (fhir only) checks every bundle and fails if one has a problem.
    Returns 0 on success, 1 when validation found problems.
    """
    from careops.synth import Anomalies, generate  # pandas: loaded when a cohort is made, not with the CLI
    from careops.synth.export import FORMATS, write_csv, write_fhir, write_hl7

    if fmt not in FORMATS:
        raise CareOpsError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}",
                           fix="careops synth --format csv|fhir|hl7")
    try:
        when = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        raise CareOpsError(f"--as-of must be a date like 2026-01-01, got {as_of!r}", fix="--as-of 2026-01-01") from None
    kwargs = {"as_of": when} if when else {}
    cohort = generate(patients, seed, years=years, rare=rare,
                      anomalies=Anomalies.edge_cases() if anomalies else None, progress=progress, **kwargs)
    problems: list[str] = []
    if fmt == "csv":
        written = write_csv(cohort, out)
    elif fmt == "hl7":
        written = write_hl7(cohort, out)
    else:
        with Progress("FHIR bundles", total=len(cohort.patients), unit="patient", enabled=progress,
                      every=PLAIN_EVERY) as shown:
            written = write_fhir(cohort, out, on_bundle=shown.advance)
        if validate:
            import json

            from careops.synth.fhir import validate_bundle

            with Progress("validating", total=len(written), unit="bundle", enabled=progress,
                          every=PLAIN_EVERY) as shown:
                for path in written:
                    problems += [f"{path.name}: {p}"
                                 for p in validate_bundle(json.loads(path.read_text(encoding="utf-8")))]
                    shown.advance()
    print(f"{cohort!r}")
    print(f"wrote {len(written)} file(s) to {Path(out)} ({fmt}); every identifier is synthetic "
          "(SSN 999-, phone 555-01xx, @example.org, MRN SYN-)")
    if validate and fmt != "fhir":
        print("--validate applies to --format fhir only; nothing validated", file=sys.stderr)
    if problems:
        print(f"{len(problems)} validation problem(s), e.g.:", file=sys.stderr)
        for p in problems[:10]:
            print(f"  {p}", file=sys.stderr)
        return 1
    if validate and fmt == "fhir":
        print(f"all {len(written)} bundles validate (FHIR R4B models and the course's value sets)")
    return 0
