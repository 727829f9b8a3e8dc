"""``python -m careops.grading.nbgrader_cli ARGS``: nbgrader's command line, without its slowest import.

jsonschema (nbformat's validator) imports ``rfc3987_syntax`` whenever it is installed (jupyter_events asks for
``jsonschema[format-nongpl]``), and that module builds some 35 Earley parsers as it is imported: 0.8-0.9 s of CPU in
every nbgrader process, for the ``iri`` and ``iri-reference`` formats, which no schema nbgrader validates uses
(python-jsonschema/jsonschema#1428). Marked absent here, jsonschema leaves those two format checks out; nothing
else changes. :func:`careops.grading.course.run_nbgrader` runs nbgrader through this.
"""
from __future__ import annotations

import sys

#: the module jsonschema would import for the two IRI formats, and only for them
SKIPPED_IMPORT = "rfc3987_syntax"


def main() -> None:
    sys.modules.setdefault(SKIPPED_IMPORT, None)  # type: ignore[arg-type] -- None: "import fails", by design
    from nbgrader.apps.nbgraderapp import main as nbgrader_main

    sys.argv[0] = "nbgrader"
    nbgrader_main()


if __name__ == "__main__":
    main()
