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
    grading/references/                    the grader's reference answers (instructor's host only)
    grading/deadlines.yaml                 due dates, extensions, late policy (careops.grading.deadlines)
    build/release/<assignment>/            learner versions (generate_assignment)
    build/course/{submitted,autograded,feedback,solution,source_with_tests}/
    build/gradebook.db                     the gradebook (sqlite)
    build/grading/<assignment>/            grades.csv, canvas.csv, moodle.csv, the journal, returned feedback
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

# --- deadlines: nbgrader's late-submission plugin with the course's policy ----------
# Due dates, extensions and the policy live in grading/deadlines.yaml; `careops grade` writes the due date and
# each learner's extension into the gradebook, and nbgrader's AssignLatePenalties asks this plugin.
c.AssignLatePenalties.plugin_class = "careops.grading.deadlines.CourseLatePolicy"
c.CourseLatePolicy.course_root = str(ROOT)

# --- feedback: each check's report and pass/fail, never the hidden tests, offline ----
# careops.grading.feedback.LearnerFeedback removes the hidden tests and their failure details and puts a
# summary in plain words on top; the careops_feedback template is nbgrader's without MathJax's CDN script.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "careops.grading.feedback.LearnerFeedback",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
try:
    from careops.grading.feedback import TEMPLATE as _TEMPLATE, template_dirs as _dirs, template_paths as _paths

    c.GenerateFeedback.HTMLExporter.template_name = _TEMPLATE
    c.GenerateFeedback.HTMLExporter.extra_template_basedirs = _dirs()
    c.GenerateFeedback.HTMLExporter.extra_template_paths = _paths()
except ImportError:  # nbgrader run from an environment without the toolkit: nbgrader's own template
    pass

# --- LMS: Moodle and Canvas downloads in (careops.grading.lms), their grade imports out (.export) ---
# `careops grade` reads both kinds of download and writes build/grading/<assignment>/{canvas,moodle}.csv after
# every run. By hand: nbgrader zip_collect --collector=careops.grading.lms.MoodleCollector (or CanvasCollector),
# nbgrader export --exporter=careops.grading.export.CanvasExportPlugin (or MoodleExportPlugin --assignment=NAME).
# Canvas: a column named "<assignment> (<Canvas assignment id>)" updates that assignment; without an id here
# Canvas creates a new assignment from the column on import.
c.CanvasExportPlugin.canvas_assignment_ids = {}  # e.g. {"00-orientation": "12345"}
c.CanvasExportPlugin.course_root = str(ROOT)
c.MoodleExportPlugin.course_root = str(ROOT)
c.ExtractorPlugin.zip_ext = [".zip", ".gz", ".tgz"]
