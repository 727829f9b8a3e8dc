"""nbgrader configuration of CareOps Labs (nbgrader 0.9).

nbgrader reads this file when it runs with this folder as its working
directory: ``cd grading && ../.venv/bin/nbgrader ...`` (with .venv/bin on
PATH: nbgrader runs ``alembic`` from PATH). ``careops release`` and
careops.grading always run nbgrader that way.

Everything is computed from this file's own path, so the same file works in
any checkout and in the temporary course copies the notebook test harness
builds (it copies this file to ``<copy>/grading/``).

Layout (fixed; see README):
    notebooks/<assignment>/*.ipynb         instructor SOURCE notebooks
    build/release/<assignment>/            learner versions (generate_assignment)
    build/course/{submitted,autograded,feedback,solution,source_with_tests}/
    build/gradebook.db                     the gradebook (sqlite)
"""
import os
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821 -- provided by traitlets

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"

# The modules of the course: one folder per assignment under notebooks/,
# sorted, so "00-orientation" comes before "01-ci-pipeline". nbgrader 0.9 has
# no config option for the assignment list any more (NbGrader.db_assignments
# was removed in 0.6): an assignment is registered in the gradebook by
# `nbgrader generate_assignment` (GenerateAssignment.create_assignment, on
# below), and `careops release` runs that for every name in this list.
ASSIGNMENTS = sorted(
    p.name
    for p in (ROOT / "notebooks").iterdir()
    if p.is_dir() and not p.name.startswith((".", "_"))
) if (ROOT / "notebooks").is_dir() else []

# --- course and directories ------------------------------------------------
c.CourseDirectory.course_id = "careops-labs"
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.source_directory = "notebooks"
c.CourseDirectory.release_directory = os.path.join("build", "release")
c.CourseDirectory.submitted_directory = os.path.join("build", "course", "submitted")
c.CourseDirectory.autograded_directory = os.path.join("build", "course", "autograded")
c.CourseDirectory.feedback_directory = os.path.join("build", "course", "feedback")
c.CourseDirectory.solution_directory = os.path.join("build", "course", "solution")
c.CourseDirectory.source_with_tests_directory = os.path.join(
    "build", "course", "source_with_tests"
)
# sqlite cannot create the folder of its database file: make sure it exists.
BUILD.mkdir(parents=True, exist_ok=True)
c.CourseDirectory.db_url = f"sqlite:///{BUILD / 'gradebook.db'}"
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints",
    "*.pyc",
    "__pycache__",
    "feedback",
    ".careops-*",
]

# --- generating learner versions ---------------------------------------------
c.GenerateAssignment.create_assignment = True  # registers the assignment in the gradebook
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# --- autograding ----------------------------------------------------------------
# Lab cells start containers and run pipelines: allow 5 minutes per cell.
c.Execute.timeout = 300
c.Execute.interrupt_on_timeout = True
# Every course notebook runs on the course's Python ("python3" is the kernel
# of the environment nbgrader runs in, the .venv), whatever kernel name the
# author's Jupyter wrote into the notebook's metadata.
c.Execute.kernel_name = "python3"
c.Autograde.create_student = True
