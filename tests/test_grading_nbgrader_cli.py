"""careops.grading.nbgrader_cli: nbgrader's command line, started without the IRI parsers it does not use."""
from __future__ import annotations

import re
import subprocess
import sys

from careops.grading.nbgrader_cli import SKIPPED_IMPORT


def test_nbgrader_runs_without_the_iri_parsers_and_does_the_same() -> None:
    def imports(*module: str) -> tuple[str, str]:
        run = subprocess.run([sys.executable, "-X", "importtime", "-m", *module, "--version"], capture_output=True,
                             text=True, check=True)
        return run.stdout, run.stderr

    def imported(module: str, log: str) -> bool:
        return re.search(rf"\|\s+{re.escape(module)}$", log, re.MULTILINE) is not None

    ours, ours_imports = imports("careops.grading.nbgrader_cli")
    theirs, their_imports = imports("nbgrader")
    assert ours == theirs and ours.strip()  # nbgrader's own answer
    parsers = f"{SKIPPED_IMPORT}.syntax_helpers"  # where the parsers are built (the package itself is only tried)
    assert imported(parsers, their_imports)  # nbgrader on its own builds them ...
    assert imported("nbgrader.apps", ours_imports) and not imported(parsers, ours_imports)  # ... ours does not
