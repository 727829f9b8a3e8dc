"""`careops phi scan`: the PHI gate (``python -m careops.phi``) under the careops command."""
from __future__ import annotations

from collections.abc import Sequence

from careops.phi.__main__ import DEFAULT_KINDS
from careops.phi.__main__ import main as phi_main


def scan_main(*, paths: Sequence[str], kinds: str = DEFAULT_KINDS) -> int:
    """Scan ``paths`` for ``kinds`` (comma-separated, 'high-precision' or 'all'); 0 clean, 1 PHI-like, 2 bad usage."""
    return phi_main([*paths, "--kinds", kinds])
