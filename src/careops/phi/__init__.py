"""careops.phi: find Safe Harbor identifiers that a pattern can match.

Synthetic markers (SSN 999-xx-xxxx, phone 555-0100..555-0199, @example.org,
MRNs starting "SYN-", 127.0.0.0/8 and the documentation IP ranges,
localhost URLs) are reported as synthetic, i.e. allowed.  A line containing
``phi-scan: allow`` is skipped: use it, with a reason, only for
documentation that must show a pattern.

    >>> from careops.phi import scan_text
    >>> [str(f) for f in scan_text("SSN 999-12-3456")]
    ['<text>:1:5: ssn 99*-**-***6 [synthetic (allowed)]']
"""
from __future__ import annotations

from careops.phi.scanner import (
    ALLOW_MARKER,
    HIGH_PRECISION_KINDS,
    KINDS,
    MAX_FILE_BYTES,
    PHI_FIX,
    FileSkipped,
    Finding,
    PhiScanError,
    ScanReport,
    mask,
    scan_dataframe,
    scan_file,
    scan_paths,
    scan_text,
)

# De-identification and anonymity need pandas; load them on first use so the PHI
# gate (`python -m careops.phi` in every pipeline job) starts without it.
_LAZY = {
    **dict.fromkeys(("AnonymityReport", "anonymity_report", "equivalence_classes", "k_anonymity", "l_diversity"),
                    "careops.phi.anonymity"),
    **dict.fromkeys(("LOW_POPULATION_ZIP3", "redact_dates", "safe_age", "safe_harbor", "safe_harbor_problems",
                     "zip3"), "careops.phi.deid"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'careops.phi' has no attribute {name!r}")

__all__ = [
    "AnonymityReport", "anonymity_report", "equivalence_classes", "k_anonymity", "l_diversity",
    "LOW_POPULATION_ZIP3", "redact_dates", "safe_age", "safe_harbor", "safe_harbor_problems", "zip3",
    "ALLOW_MARKER",
    "PHI_FIX",
    "HIGH_PRECISION_KINDS",
    "KINDS",
    "MAX_FILE_BYTES",
    "FileSkipped",
    "Finding",
    "PhiScanError",
    "ScanReport",
    "mask",
    "scan_dataframe",
    "scan_file",
    "scan_paths",
    "scan_text",
]
