"""``python -m careops.phi PATH...``: the PHI gate of a CI pipeline.

Why a command: a pipeline step (``run: python -m careops.phi tests/fixtures logs``)
must fail the build when fixtures or logs hold PHI-like values. Exit codes:
0 no PHI (synthetic markers are allowed), 1 possible PHI found (listed, masked),
2 bad usage or a path that cannot be scanned.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from careops.phi.scanner import HIGH_PRECISION_KINDS, KINDS, PhiScanError, scan_paths

#: what --kinds means when not given (also the default of `careops phi scan`)
DEFAULT_KINDS = "high-precision"


def main(argv: Sequence[str] | None = None) -> int:
    """Scan the paths, print a masked report, return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m careops.phi",
        description="Fail (exit 1) when files hold PHI-like identifiers; synthetic markers "
                    "(SSN 999-xx-xxxx, phone 555-01xx, @example.org, SYN- MRNs) are allowed.")
    parser.add_argument("paths", nargs="+", help="files or folders to scan")
    parser.add_argument("--kinds", default=DEFAULT_KINDS,
                        help="comma-separated kinds, 'high-precision' (default: "
                             f"{','.join(HIGH_PRECISION_KINDS)}) or 'all' ({','.join(KINDS)})")
    args = parser.parse_args(argv)
    if args.kinds == "all":
        kinds: Sequence[str] = KINDS
    elif args.kinds == "high-precision":
        kinds = HIGH_PRECISION_KINDS
    else:
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        print(f"careops.phi: no such file or folder: {', '.join(missing)}\n"
              "  fix: scan paths that exist (relative to the step's working directory)", file=sys.stderr)
        return 2
    try:
        report = scan_paths(args.paths, kinds=kinds)
    except PhiScanError as exc:
        print(f"careops.phi: {exc}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
