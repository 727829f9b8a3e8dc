"""The `careops` command line: thin click wrappers around careops.apps.

Each command's work lives in ``careops.apps.<command>.main(*, ...)`` (``<sub>_main`` for a group's
subcommands) with keyword-only arguments, so tests and notebooks call the same code the CLI runs.
The click parameters are named as those keywords and take their defaults from ``main.__kwdefaults__``:
a default is written once, in the function (tests/test_cli.py keeps every command equal to its main).
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable

import click

from careops.apps import bench as bench_app
from careops.apps import doctor as doctor_app
from careops.apps import feedback as feedback_app
from careops.apps import grade as grade_app
from careops.apps import images as images_app
from careops.apps import jupyter as jupyter_app
from careops.apps import labs as labs_app
from careops.apps import phi as phi_app
from careops.apps import pipeline as pipeline_app
from careops.apps import queue as queue_app
from careops.apps import release as release_app
from careops.apps import solve as solve_app
from careops.apps import synth as synth_app
from careops.apps import worker as worker_app
from careops.apps import workspace as workspace_app
from careops.apps import workshop as workshop_app
from careops.errors import CareOpsError


def _run(main: Callable[..., int | None], **kwargs: object) -> None:
    """Call an app's main and turn careops errors into a message and an exit code."""
    try:
        code = main(**kwargs)
    except CareOpsError as exc:
        click.secho(f"careops: {exc.message}", fg="red", err=True)
        if exc.fix:
            click.echo(f"  fix: {exc.fix}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:  # Ctrl-C, or a command's own stop on SIGTERM (it says why, and its code)
        click.echo(f"careops: {exc or 'interrupted'}", err=True)
        sys.exit(getattr(exc, "exit_code", 130))
    sys.exit(code or 0)


def _calls(main: Callable[..., int | None]) -> Callable[[Callable[[], None]], Callable[..., None]]:
    """Make the decorated stub (its docstring is the command's help) a command body that calls ``main``
    with the command's parameters, which are named as main's keywords. ``command.app_main`` is ``main``."""

    def wrap(stub: Callable[[], None]) -> Callable[..., None]:
        @functools.wraps(stub)
        def command(**kwargs: Any) -> None:
            _run(main, **kwargs)

        command.app_main = main  # type: ignore[attr-defined]
        return command

    return wrap


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="careops")
def cli() -> None:
    """CareOps Labs toolkit: labs, images, checks and grading for the course."""


defaults = doctor_app.main.__kwdefaults__


@cli.command()
@click.option("--json", "as_json", is_flag=True, default=defaults["as_json"], help="Print the findings as JSON.")
@_calls(doctor_app.main)
def doctor() -> None:
    """Check the container engine and tools; say how to fix each problem."""


@cli.group()
def images() -> None:
    """Build the course's images offline (no registry needed)."""


defaults = images_app.build_main.__kwdefaults__


@images.command("build")
@click.argument("names", nargs=-1, default=defaults["names"])
@click.option("--force", is_flag=True, default=defaults["force"], help="Rebuild even when the inputs did not change.")
@_calls(images_app.build_main)
def images_build() -> None:
    """Build NAMES (default: all) from a local base image or debootstrap."""


@images.command("ls")
@_calls(images_app.ls_main)
def images_ls() -> None:
    """List the course's images with their input hashes."""


@cli.group()
def labs() -> None:
    """Find and remove lab resources (containers, networks, volumes)."""


defaults = labs_app.ls_main.__kwdefaults__


@labs.command("ls")
@click.option("--all-learners", is_flag=True, default=defaults["all_learners"],
              help="Show every learner's labs, not only yours.")
@_calls(labs_app.ls_main)
def labs_ls() -> None:
    """List lab resources by lab and learner, even those a crashed kernel left."""


defaults = labs_app.reset_main.__kwdefaults__


@labs.command("reset")
@click.argument("lab", required=False, default=defaults["lab"])
@click.option("--learner", default=defaults["learner"], help="Whose labs (default: you).")
@click.option("--yes", "assume_yes", is_flag=True, default=defaults["assume_yes"], help="Do not ask before removing.")
@_calls(labs_app.reset_main)
def labs_reset() -> None:
    """Remove LAB's resources (default: all your labs)."""


defaults = release_app.main.__kwdefaults__


@cli.command()
@click.argument("assignments", nargs=-1, default=defaults["assignments"])
@_calls(release_app.main)
def release() -> None:
    """Generate learner versions of the modules with nbgrader."""


defaults = solve_app.main.__kwdefaults__


@cli.command()
@click.argument("name", required=False, default=defaults["name"])
@click.option("--module", default=defaults["module"], help="The module (default: this folder's name).")
@click.option("--notebook", type=click.Path(dir_okay=False, exists=True), default=defaults["notebook"],
              help="The learner's notebook of the module.")
@click.option("--apply", is_flag=True, default=defaults["apply"],
              help="Write the solution into the notebook's answer cell.")
@click.option("--learner", default=defaults["learner"],
              help="Record it for this learner (an instructor handing it over).")
@click.option("--yes", "assume_yes", is_flag=True, default=defaults["assume_yes"], help="Do not ask for confirmation.")
@click.option("--list", "list_only", is_flag=True, default=defaults["list_only"],
              help="List the exercises and what solving each costs.")
@_calls(solve_app.main)
def solve() -> None:
    """Show (or --apply) the solution of exercise NAME after a confirmation; it is recorded and scores 0."""


@cli.group()
def workspace() -> None:
    """Your working copies of the notebooks."""


@workspace.command("sync")
@_calls(workspace_app.sync_main)
def workspace_sync() -> None:
    """Copy new learner notebooks into workspace/; never overwrite your work."""


defaults = jupyter_app.main.__kwdefaults__


@cli.command()
@click.option("--port", default=defaults["port"], show_default=True, help="Port for JupyterLab (127.0.0.1).")
@click.option("--no-browser", "open_browser", is_flag=True, flag_value=False, default=defaults["open_browser"],
              help="Do not open a browser.")
@_calls(jupyter_app.main)
def jupyter() -> None:
    """Start JupyterLab on workspace/."""


@cli.group()
def pipeline() -> None:
    """Validate and run a CI workflow locally, one container per job (module 1)."""


defaults = pipeline_app.validate_main.__kwdefaults__


@pipeline.command("validate")
@click.argument("workflow", required=False, default=defaults["workflow"])
@click.option("--repo", default=defaults["repo"], show_default=True, help="The repo the workflow belongs to.")
@click.option("--no-policy", "policy", is_flag=True, flag_value=False, default=defaults["policy"],
              help="Only the schema and runner checks, not the course rules.")
@_calls(pipeline_app.validate_main)
def pipeline_validate() -> None:
    """Check WORKFLOW (default .github/workflows/ci.yml) against GitHub's schema and the course rules."""


defaults = pipeline_app.main.__kwdefaults__


@pipeline.command("run")
@click.argument("workflow", required=False, default=defaults["workflow"])
@click.option("--repo", default=defaults["repo"], show_default=True, help="The repo to check out into each job.")
@click.option("--approve", metavar="NAME", default=defaults["approve"],
              help="Approve every gate (environment:) in this person's name.")
@click.option("--junit", type=click.Path(dir_okay=False), default=defaults["junit"],
              help="Write a JUnit XML report here.")
@click.option("--audit", type=click.Path(dir_okay=False), default=defaults["audit"],
              help="The audit log (default: workspace/.careops/).")
@click.option("--summary", type=click.Path(dir_okay=False), default=defaults["summary"],
              help="Write the run summary (JSON) here.")
@click.option("--quiet", is_flag=True, default=defaults["quiet"], help="Do not stream the steps' logs.")
@_calls(pipeline_app.main)
def pipeline_run() -> None:
    """Run WORKFLOW (default .github/workflows/ci.yml) on the repo, the way GitHub Actions would."""


@cli.group()
def phi() -> None:
    """Find PHI-like identifiers (the pipeline's PHI gate)."""


defaults = phi_app.scan_main.__kwdefaults__


@phi.command("scan")
@click.argument("paths", nargs=-1, required=True)
@click.option("--kinds", default=defaults["kinds"], show_default=True,
              help="Comma-separated kinds, 'high-precision' or 'all'.")
@_calls(phi_app.scan_main)
def phi_scan() -> None:
    """Exit 1 when PATHS hold real-looking identifiers; synthetic markers are allowed."""


defaults = synth_app.main.__kwdefaults__


@cli.command()
@click.option("--patients", "-n", type=int, default=defaults["patients"], show_default=True, help="How many patients.")
@click.option("--seed", type=int, default=defaults["seed"], show_default=True, help="Same seed, byte-identical output.")
@click.option("--format", "fmt", type=click.Choice(["csv", "fhir", "hl7"]), default=defaults["fmt"], show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--anomalies", is_flag=True, default=defaults["anomalies"],
              help="Add edge cases: missing fields, out-of-range values, duplicates...")
@click.option("--rare", type=float, default=defaults["rare"], show_default=True,
              help="Multiply rare conditions' prevalence.")
@click.option("--years", type=int, default=defaults["years"], show_default=True, help="Years of encounter history.")
@click.option("--as-of", default=defaults["as_of"],
              help="The cohort's 'today' (YYYY-MM-DD); ages and encounter dates count back from it.")
@click.option("--validate", is_flag=True, default=defaults["validate"],
              help="FHIR: validate every bundle (R4B models and value sets).")
@_calls(synth_app.main)
def synth() -> None:
    """Generate synthetic patients (csv tables, FHIR R4 bundles or HL7 v2 ADT messages)."""


defaults = grade_app.main.__kwdefaults__


@cli.command()
@click.argument("assignment")
@click.option("--submissions", type=click.Path(exists=True, path_type=Path), default=defaults["submissions"],
              help="A folder of submissions (one notebook per learner) instead of nbgrader's exchange.")
@click.option("--workshop", default=defaults["workshop"], metavar="NAME",
              help="Grade the hand-ins of this workshop hub (its hand-in store); grades go to its dashboard.")
@click.option("--regrade", is_flag=True, default=defaults["regrade"],
              help="Grade every submission again, changed or not.")
@click.option("--jobs", "-j", type=int, default=defaults["jobs"], help="Sandboxes at once (default: one per core).")
@click.option("--cell-timeout", type=float, default=defaults["cell_timeout"],
              help="Seconds one cell or test may run (default: the grader's).")
@click.option("--wall-time", type=float, default=defaults["wall_time"],
              help="Seconds one whole submission may take (default: the grader's).")
@click.option("--no-feedback", "feedback", is_flag=True, flag_value=False, default=defaults["feedback"],
              help="Do not generate feedback HTML.")
@click.option("--learner", "learners", multiple=True, default=defaults["learners"], metavar="ID",
              help="Grade only this learner, again (repeatable); everyone else's grades stay.")
@click.option("--queue", metavar="REDIS_URL", default=defaults["queue"],
              help="Grade on the queue's workers (careops worker), e.g. redis://127.0.0.1:6379/0.")
@_calls(grade_app.main)
def grade() -> None:
    """Autograde ASSIGNMENT's submissions in sealed sandboxes; feedback, CSVs for the class and a summary."""


@cli.group()
def feedback() -> None:
    """Hand graded feedback back to learners."""


defaults = feedback_app.return_main.__kwdefaults__


@feedback.command("return")
@click.argument("assignment")
@click.option("--to", type=click.Path(file_okay=False, path_type=Path), default=defaults["to"],
              help="Folder to fill, one sub-folder per learner (default: build/grading/ASSIGNMENT/return).")
@click.option("--learner", "learners", multiple=True, default=defaults["learners"], metavar="ID",
              help="Only this learner (repeatable).")
@click.option("--exchange", type=click.Path(file_okay=False, path_type=Path), default=defaults["exchange"],
              help="Also release it into this nbgrader exchange (learners run nbgrader fetch_feedback).")
@_calls(feedback_app.return_main)
def feedback_return() -> None:
    """Put each learner's feedback of ASSIGNMENT in a folder of their own (and a Moodle zip, the exchange)."""


defaults = worker_app.main.__kwdefaults__


@cli.command()
@click.option("--queue", metavar="REDIS_URL", default=defaults["queue"],
              help="The grading queue (default: $CAREOPS_QUEUE or redis://127.0.0.1:6379/0).")
@click.option("--engine", metavar="URL", default=defaults["engine"],
              help="The Docker engine to grade on, e.g. unix:///var/run/docker.sock (default: as careops finds one).")
@click.option("--concurrency", "-c", type=int, default=defaults["concurrency"], show_default=True,
              help="Submissions graded at once.")
@click.option("--course-dir", type=click.Path(file_okay=False, path_type=Path), default=defaults["course_dir"],
              help="This host's checkout of the course (default: this one).")
@click.option("--images-from", metavar="URL", default=defaults["images_from"],
              help="Load the grader image from this engine when it differs (docker save | docker load).")
@click.option("--name", default=defaults["name"], help="The worker's node name (default: careops-PID@HOST).")
@click.option("--redeliver-after", type=float, default=defaults["redeliver_after"],
              help="Seconds before a vanished worker's task is handed out again (default 1800).")
@click.option("--kubernetes", metavar="NAMESPACE", default=defaults["kubernetes"],
              help="Run the sandboxes as Kubernetes Jobs in NAMESPACE (the worker's kubeconfig) instead of on --engine.")
@_calls(worker_app.main)
def worker() -> None:
    """Grade submissions from the queue on one Docker engine (careops grade --queue sends them)."""


@cli.group()
def queue() -> None:
    """The grading queue: its state and Flower."""


defaults = queue_app.status_main.__kwdefaults__


@queue.command("status")
@click.argument("assignment")
@click.option("--queue", metavar="REDIS_URL", default=defaults["queue"], help="The grading queue.")
@_calls(queue_app.status_main)
def queue_status() -> None:
    """Each learner's grading state of ASSIGNMENT: queued, grading, graded or failed."""


defaults = queue_app.flower_main.__kwdefaults__


@queue.command("flower")
@click.option("--queue", metavar="REDIS_URL", default=defaults["queue"], help="The grading queue.")
@click.option("--port", type=int, default=defaults["port"], show_default=True, help="Flower's port on 127.0.0.1.")
@_calls(queue_app.flower_main)
def queue_flower() -> None:
    """Run Flower, Celery's monitor, for the grading queue's workers and tasks."""


defaults = bench_app.main.__kwdefaults__


@cli.command()
@click.option("--only", multiple=True, default=defaults["only"], help="Run only the named benchmarks.")
@_calls(bench_app.main)
def bench() -> None:
    """Measure speed against references taken in the same run."""


del defaults

@cli.group()
def workshop() -> None:
    """A JupyterHub for a whole class on this host (workshop mode, preview)."""


defaults = workshop_app.up_main.__kwdefaults__


def _workshop_name(main: Callable[..., int]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--name", default=main.__kwdefaults__["name"], show_default=True,
                        help="Which workshop on this engine.")


@workshop.command("up")
@_workshop_name(workshop_app.up_main)
@click.option("--roster", "roster_file", type=click.Path(exists=True, dir_okay=False), default=defaults["roster_file"],
              help="Class list (CSV: username,role,name; or YAML); new members get initial passwords.")
@click.option("--port", type=int, default=defaults["port"], help="Port of the hub on this host (default 8000, or the last one used).")
@click.option("--bind", default=defaults["bind"], help="Address to listen on (default 127.0.0.1; 0.0.0.0 for the room's network).")
@click.option("--mem", "mem_limit", default=defaults["mem_limit"], help="Memory per learner's server, e.g. 1G (default 1G).")
@click.option("--cpus", "cpu_limit", type=float, default=defaults["cpu_limit"], help="CPUs per learner's server (default 1).")
@click.option("--idle-timeout", type=int, default=defaults["idle_timeout"],
              help="Seconds before an idle server is stopped (default 3600).")
@click.option("--stuck-minutes", type=float, default=defaults["stuck_minutes"],
              help="The dashboard marks a learner stuck when the same check fails for longer (default 10).")
@click.option("--lab-containers", type=int, default=defaults["lab_containers"],
              help="Lab containers each learner may have at once, through the lab broker (default 8).")
@click.option("--lab-memory", default=defaults["lab_memory"],
              help="Memory limits of one learner's lab containers in total, e.g. 2g (default 2g).")
@click.option("--no-build", "build", is_flag=True, flag_value=False, default=defaults["build"],
              help="Do not check that the hub and learner images are current.")
@_calls(workshop_app.up_main)
def workshop_up() -> None:
    """Enroll the roster and start (or update) the hub; prints its URL."""


@workshop.command("down")
@_workshop_name(workshop_app.down_main)
@click.option("--remove-volumes", is_flag=True, default=workshop_app.down_main.__kwdefaults__["remove_volumes"],
              help="Also delete every learner's workspace and the hub's state.")
@_calls(workshop_app.down_main)
def workshop_down() -> None:
    """Remove the hub, learners' servers and networks (learners' work is kept)."""


@workshop.command("status")
@_workshop_name(workshop_app.status_main)
@click.option("--json", "as_json", is_flag=True, default=workshop_app.status_main.__kwdefaults__["as_json"],
              help="Print as JSON.")
@_calls(workshop_app.status_main)
def workshop_status() -> None:
    """The hub's state, and each member's server and last activity."""


@workshop.command("add-learners")
@click.argument("roster_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@_workshop_name(workshop_app.add_learners_main)
@_calls(workshop_app.add_learners_main)
def workshop_add_learners() -> None:
    """Enroll FILE's new members (a running hub learns them at once); prints where their passwords are."""


defaults = workshop_app.autograde_main.__kwdefaults__


@workshop.command("autograde")
@_workshop_name(workshop_app.autograde_main)
@click.option("--once", is_flag=True, default=defaults["once"], help="One pass over what has arrived, then exit.")
@click.option("--interval", type=float, default=defaults["interval"], show_default=True,
              help="Seconds between looks at the hand-in store.")
@click.option("--jobs", type=int, default=defaults["jobs"], help="Submissions graded at once (default: CPU cores).")
@click.option("--queue", default=defaults["queue"], metavar="REDIS_URL",
              help="Grade on the grading queue's workers (careops worker) instead of on this host.")
@_calls(workshop_app.autograde_main)
def workshop_autograde() -> None:
    """Grade hand-ins as they arrive (run it beside the hub): each new hand-in's assignment is graded as careops
    grade ASSIGNMENT --workshop NAME does, and the grades appear on the dashboard."""


defaults = workshop_app.submit_main.__kwdefaults__


@cli.command()
@click.argument("notebook", required=False, default=defaults["notebook"])
@click.option("--json", "as_json", is_flag=True, default=defaults["as_json"], help="Print the receipt as JSON.")
@_calls(workshop_app.submit_main)
def submit() -> None:
    """Hand in NOTEBOOK (e.g. 00-orientation/orientation.ipynb) in the workshop hub: stored under your hub
    identity at the hub's time. Save it first. In a notebook cell: !careops submit (this notebook)."""


if __name__ == "__main__":
    cli()
