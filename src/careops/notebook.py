"""IPython support for course notebooks: the ``%%artifact`` cell magic.

Lab artifacts a grader must inspect (container specs, Dockerfiles, workflows,
router configs) are written in cells that start with ``%%artifact NAME`` and
are tagged ``careops-artifact``. Running the cell stores its text in the
variable NAME; the grader extracts the same text from the notebook file with
``careops.artifacts`` without running any learner code.

Load it with ``%load_ext careops.notebook``.
"""
from __future__ import annotations

from careops.artifacts import PLACEHOLDER, artifact_body


def _artifact(line: str, cell: str) -> None:
    from IPython import get_ipython

    name = line.strip()
    if not name.isidentifier():
        raise ValueError(f"%%artifact needs a variable name such as triage_probe_spec, got {name!r}")
    if PLACEHOLDER in cell:
        message = (f"the artifact {name} is not written yet: replace the lines '# YOUR CODE HERE' and "
                   f"'{PLACEHOLDER}' with your text, then run the cell again")
        err = NotImplementedError(message)
        # One line in the notebook, as a failed check is: the learner's next step, not this module's source.
        err._render_traceback_ = lambda: [f"\x1b[1;31mNotImplementedError: {message}\x1b[0m"]  # type: ignore[attr-defined]
        raise err
    get_ipython().user_ns[name] = artifact_body(cell)


def load_ipython_extension(ipython) -> None:  # noqa: ANN001 - IPython's own type
    ipython.register_magic_function(_artifact, magic_kind="cell", magic_name="artifact")
