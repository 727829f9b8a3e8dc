"""The CLI is thin and complete."""
from __future__ import annotations

import inspect

import click
import pytest
from click.testing import CliRunner

from careops.cli import cli


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command and group under ``group`` with the words that call it (``()`` is careops itself)."""
    found: list[tuple[tuple[str, ...], click.Command]] = [(path, group)]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append(((*path, name), command))
    return found


VERBS = [(path, command) for path, command in _commands() if not isinstance(command, click.Group)]


def _required_args(command: click.Command) -> list[str]:
    """Placeholder values for the command's required options and arguments, so it parses (an existing file,
    for the parameters that must name one)."""
    import os

    def placeholder(p: click.Parameter) -> str:
        return os.path.dirname(__file__) if getattr(p.type, "file_okay", True) is False else __file__

    options = [a for p in command.params if p.required and isinstance(p, click.Option) for a in (p.opts[0], placeholder(p))]
    arguments = [placeholder(p) for p in command.params if p.required and isinstance(p, click.Argument)]
    return options + arguments


@pytest.mark.parametrize("path,command", VERBS, ids=[" ".join(p) for p, _ in VERBS])
def test_every_command_takes_its_defaults_from_its_main(path, command):
    """A default is written once, in the app's keyword-only main: the click command cannot drift from it."""
    main = command.callback.app_main
    signature = inspect.signature(main)
    assert all(p.kind is p.KEYWORD_ONLY for p in signature.parameters.values()), f"{main.__qualname__} is not keyword-only"
    defaults = main.__kwdefaults__ or {}
    parsed = command.make_context(" ".join(path), _required_args(command)).params
    for param in command.params:
        assert param.name in signature.parameters, f"careops {' '.join(path)}: {param.name} is no keyword of main"
        if param.required:
            assert param.name not in defaults, f"careops {' '.join(path)}: {param.name} is required but main has a default"
        else:
            assert param.default == defaults[param.name], f"careops {' '.join(path)} {param.name}"
            assert parsed[param.name] == defaults[param.name], f"careops {' '.join(path)} {param.name} as parsed"
    without_default = {n for n, p in signature.parameters.items() if p.default is p.empty}
    assert without_default <= {p.name for p in command.params if p.required}


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=[" ".join(p) or "careops" for p, _ in _commands()])
def test_help_runs_for_every_command(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage:")


def test_help_lists_every_command():
    out = CliRunner().invoke(cli, ["--help"]).output
    for command in ("doctor", "images", "labs", "release", "workspace", "jupyter", "bench", "pipeline", "phi",
                    "synth", "grade"):
        assert command in out


def test_labs_reset_without_confirmation_refuses_when_not_interactive(monkeypatch):
    monkeypatch.setenv("CAREOPS_LEARNER", "nobody-has-this-id")
    result = CliRunner().invoke(cli, ["labs", "reset"])
    assert result.exit_code == 0 and "nothing to remove" in result.output


def test_make_help_shows_the_two_commands(repo_root):
    import subprocess

    out = subprocess.run(["make", "-s", "help"], cwd=repo_root, capture_output=True, text=True).stdout
    assert "make lab" in out and "make test" in out and "make bench" in out


def test_pipeline_validate_names_the_line_and_runs_nothing(repo_root):
    result = CliRunner().invoke(cli, ["pipeline", "validate", str(repo_root / "tests/fixtures/pipeline/cycle.yml")])
    assert result.exit_code == 2
    assert "cycle" in result.output and "line" in result.output


def test_pipeline_validate_accepts_the_reference_workflow(repo_root):
    result = CliRunner().invoke(cli, ["pipeline", "validate", str(repo_root / "grading/references/ci-pipeline/ci.yml")])
    assert result.exit_code == 0, result.output


def test_phi_scan_fails_on_real_looking_data_and_passes_synthetic(tmp_path):
    (tmp_path / "ok.txt").write_text("call 555-0123 about SYN-0001\n")
    assert CliRunner().invoke(cli, ["phi", "scan", str(tmp_path)]).exit_code == 0
    (tmp_path / "leak.txt").write_text("SSN " + "-".join(["4" + "21", "68", "7315"]) + "\n")
    result = CliRunner().invoke(cli, ["phi", "scan", str(tmp_path)])
    assert result.exit_code == 1 and "ssn" in result.output


def test_make_grade_without_assignment_says_how(repo_root):
    import subprocess

    r = subprocess.run(["make", "-s", "grade"], cwd=repo_root, capture_output=True, text=True)
    assert r.returncode != 0 and "make grade ASSIGNMENT=00-orientation" in r.stderr


def test_synth_writes_reproducible_hl7(tmp_path):
    for run in ("a", "b"):
        result = CliRunner().invoke(cli, ["synth", "-n", "5", "--seed", "7", "--format", "hl7", "--out", str(tmp_path / run)])
        assert result.exit_code == 0, result.output
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
