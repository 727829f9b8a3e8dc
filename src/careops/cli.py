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


@cli.command()
@click.option("--only", multiple=True, help="Run only the named benchmarks.")
def bench(only: tuple[str, ...]) -> None:
    """Measure speed against references taken in the same run."""
    from careops.apps import bench as app

    _run(app.main, only=list(only) or None)


if __name__ == "__main__":
    cli()
