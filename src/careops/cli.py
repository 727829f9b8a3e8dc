"""The `careops` command line: thin click wrappers around careops.apps.

Each command's work lives in ``careops.apps.<command>.main(*, ...)`` with
keyword-only arguments, so tests and notebooks call the same code the CLI runs.
"""
from __future__ import annotations

import sys
from typing import Callable

import click

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
    except KeyboardInterrupt:
        click.echo("careops: interrupted", err=True)
        sys.exit(130)
    sys.exit(code or 0)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="careops")
def cli() -> None:
    """CareOps Labs toolkit: labs, images, checks and grading for the course."""


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor(as_json: bool) -> None:
    """Check the container engine and tools; say how to fix each problem."""
    from careops.apps import doctor as app

    _run(app.main, as_json=as_json)


@cli.group()
def images() -> None:
    """Build the course's images offline (no registry needed)."""


@images.command("build")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even when the inputs did not change.")
def images_build(names: tuple[str, ...], force: bool) -> None:
    """Build NAMES (default: all) from a local base image or debootstrap."""
    from careops.apps import images as app

    _run(app.build_main, names=list(names) or None, force=force)


@images.command("ls")
def images_ls() -> None:
    """List the course's images with their input hashes."""
    from careops.apps import images as app

    _run(app.ls_main)


@cli.group()
def labs() -> None:
    """Find and remove lab resources (containers, networks, volumes)."""


@labs.command("ls")
@click.option("--all-learners", is_flag=True, help="Show every learner's labs, not only yours.")
def labs_ls(all_learners: bool) -> None:
    """List lab resources by lab and learner, even those a crashed kernel left."""
    from careops.apps import labs as app

    _run(app.ls_main, all_learners=all_learners)


@labs.command("reset")
@click.argument("lab", required=False)
@click.option("--learner", help="Whose labs (default: you).")
@click.option("--yes", is_flag=True, help="Do not ask before removing.")
def labs_reset(lab: str | None, learner: str | None, yes: bool) -> None:
    """Remove LAB's resources (default: all your labs)."""
    from careops.apps import labs as app

    _run(app.reset_main, lab=lab, learner=learner, assume_yes=yes)


@cli.command()
@click.argument("assignments", nargs=-1)
def release(assignments: tuple[str, ...]) -> None:
    """Generate learner versions of the modules with nbgrader."""
    from careops.apps import release as app

    _run(app.main, assignments=list(assignments) or None)


@cli.group()
def workspace() -> None:
    """Your working copies of the notebooks."""


@workspace.command("sync")
def workspace_sync() -> None:
    """Copy new learner notebooks into workspace/; never overwrite your work."""
    from careops.apps import workspace as app

    _run(app.sync_main)


@cli.command()
@click.option("--port", default=8888, show_default=True, help="Port for JupyterLab (127.0.0.1).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
def jupyter(port: int, no_browser: bool) -> None:
    """Start JupyterLab on workspace/."""
    from careops.apps import jupyter as app

    _run(app.main, port=port, open_browser=not no_browser)


@cli.group()
def pipeline() -> None:
    """Validate and run a CI workflow locally, one container per job (module 1)."""


@pipeline.command("validate")
@click.argument("workflow", required=False)
@click.option("--repo", default=".", show_default=True, help="The repo the workflow belongs to.")
@click.option("--no-policy", is_flag=True, help="Only the schema and runner checks, not the course rules.")
def pipeline_validate(workflow: str | None, repo: str, no_policy: bool) -> None:
    """Check WORKFLOW (default .github/workflows/ci.yml) against GitHub's schema and the course rules."""
    from careops.apps import pipeline as app

    _run(app.validate_main, workflow=workflow, repo=repo, policy=not no_policy)


@pipeline.command("run")
@click.argument("workflow", required=False)
@click.option("--repo", default=".", show_default=True, help="The repo to check out into each job.")
@click.option("--approve", metavar="NAME", help="Approve every gate (environment:) in this person's name.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option("--audit", type=click.Path(dir_okay=False), help="The audit log (default: workspace/.careops/).")
@click.option("--summary", type=click.Path(dir_okay=False), help="Write the run summary (JSON) here.")
@click.option("--quiet", is_flag=True, help="Do not stream the steps' logs.")
def pipeline_run(workflow: str | None, repo: str, approve: str | None, junit: str | None, audit: str | None,
                 summary: str | None, quiet: bool) -> None:
    """Run WORKFLOW (default .github/workflows/ci.yml) on the repo, the way GitHub Actions would."""
    from careops.apps import pipeline as app

    _run(app.main, workflow=workflow, repo=repo, approve=approve, junit=junit, audit=audit, summary=summary,
         quiet=quiet)


@cli.group()
def phi() -> None:
    """Find PHI-like identifiers (the pipeline's PHI gate)."""


@phi.command("scan")
@click.argument("paths", nargs=-1, required=True)
@click.option("--kinds", default="high-precision", show_default=True,
              help="Comma-separated kinds, 'high-precision' or 'all'.")
def phi_scan(paths: tuple[str, ...], kinds: str) -> None:
    """Exit 1 when PATHS hold real-looking identifiers; synthetic markers are allowed."""
    from careops.phi.__main__ import main as scan_main

    _run(lambda: scan_main([*paths, "--kinds", kinds]))


@cli.command()
@click.option("--patients", "-n", type=int, default=100, show_default=True, help="How many patients.")
@click.option("--seed", type=int, default=42, show_default=True, help="Same seed, byte-identical output.")
@click.option("--format", "fmt", type=click.Choice(["csv", "fhir", "hl7"]), default="csv", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--anomalies", is_flag=True, help="Add edge cases: missing fields, out-of-range values, duplicates...")
@click.option("--rare", type=float, default=1.0, show_default=True, help="Multiply rare conditions' prevalence.")
@click.option("--years", type=int, default=3, show_default=True, help="Years of encounter history.")
@click.option("--as-of", help="The cohort's 'today' (YYYY-MM-DD); ages and encounter dates count back from it.")
@click.option("--validate", is_flag=True, help="FHIR: validate every bundle (R4B models and value sets).")
def synth(patients: int, seed: int, fmt: str, out: str, anomalies: bool, rare: float, years: int,
          as_of: str | None, validate: bool) -> None:
    """Generate synthetic patients (csv tables, FHIR R4 bundles or HL7 v2 ADT messages)."""
    from careops.apps import synth as app

    _run(app.main, patients=patients, seed=seed, fmt=fmt, out=out, anomalies=anomalies, rare=rare, years=years,
         as_of=as_of, validate=validate)


@cli.command()
@click.argument("assignment")
@click.option("--submissions", type=click.Path(exists=True),
              help="A folder of submissions (one notebook per learner) instead of nbgrader's exchange.")
@click.option("--regrade", is_flag=True, help="Grade every submission again, changed or not.")
@click.option("--jobs", "-j", type=int, help="Sandboxes at once (default: one per core).")
@click.option("--cell-timeout", type=float, help="Seconds one cell or test may run (default: the grader's).")
@click.option("--wall-time", type=float, help="Seconds one whole submission may take (default: the grader's).")
@click.option("--no-feedback", is_flag=True, help="Do not generate feedback HTML.")
def grade(assignment: str, submissions: str | None, regrade: bool, jobs: int | None, cell_timeout: float | None,
          wall_time: float | None, no_feedback: bool) -> None:
    """Autograde ASSIGNMENT's submissions in sealed sandboxes; feedback, CSV and a summary."""
    from pathlib import Path

    from careops.apps import grade as app

    _run(app.main, assignment=assignment, submissions=Path(submissions) if submissions else None, regrade=regrade,
         jobs=jobs, cell_timeout=cell_timeout, wall_time=wall_time, feedback=not no_feedback)


@cli.command()
@click.option("--only", multiple=True, help="Run only the named benchmarks.")
def bench(only: tuple[str, ...]) -> None:
    """Measure speed against references taken in the same run."""
    from careops.apps import bench as app

    _run(app.main, only=list(only) or None)


@cli.group()
def workshop() -> None:
    """A JupyterHub for a whole class on this host (workshop mode, preview)."""


_WORKSHOP_NAME = click.option("--name", default="careops", show_default=True, help="Which workshop on this engine.")


@workshop.command("up")
@_WORKSHOP_NAME
@click.option("--roster", "roster_file", type=click.Path(exists=True, dir_okay=False),
              help="Class list (CSV: username,role,name; or YAML); new members get initial passwords.")
@click.option("--port", type=int, help="Port of the hub on this host (default 8000, or the last one used).")
@click.option("--bind", help="Address to listen on (default 127.0.0.1; 0.0.0.0 for the room's network).")
@click.option("--mem", "mem_limit", help="Memory per learner's server, e.g. 1G (default 1G).")
@click.option("--cpus", "cpu_limit", type=float, help="CPUs per learner's server (default 1).")
@click.option("--idle-timeout", type=int, help="Seconds before an idle server is stopped (default 3600).")
@click.option("--no-build", is_flag=True, help="Do not check that the hub and learner images are current.")
def workshop_up(name: str, roster_file: str | None, port: int | None, bind: str | None, mem_limit: str | None,
                cpu_limit: float | None, idle_timeout: int | None, no_build: bool) -> None:
    """Enroll the roster and start (or update) the hub; prints its URL."""
    from careops.apps import workshop as app

    _run(app.up_main, name=name, roster_file=roster_file, port=port, bind=bind, mem_limit=mem_limit,
         cpu_limit=cpu_limit, idle_timeout=idle_timeout, build=not no_build)


@workshop.command("down")
@_WORKSHOP_NAME
@click.option("--remove-volumes", is_flag=True, help="Also delete every learner's workspace and the hub's state.")
def workshop_down(name: str, remove_volumes: bool) -> None:
    """Remove the hub, learners' servers and networks (learners' work is kept)."""
    from careops.apps import workshop as app

    _run(app.down_main, name=name, remove_volumes=remove_volumes)


@workshop.command("status")
@_WORKSHOP_NAME
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def workshop_status(name: str, as_json: bool) -> None:
    """The hub's state, and each member's server and last activity."""
    from careops.apps import workshop as app

    _run(app.status_main, name=name, as_json=as_json)


@workshop.command("add-learners")
@click.argument("roster_file", metavar="FILE", type=click.Path(exists=True, dir_okay=False))
@_WORKSHOP_NAME
def workshop_add_learners(roster_file: str, name: str) -> None:
    """Enroll FILE's new members (a running hub learns them at once); prints where their passwords are."""
    from careops.apps import workshop as app

    _run(app.add_learners_main, roster_file=roster_file, name=name)


if __name__ == "__main__":
    cli()
