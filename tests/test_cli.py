"""The CLI is thin and complete."""
from __future__ import annotations

from click.testing import CliRunner

from careops.cli import cli


def test_help_lists_every_command():
    out = CliRunner().invoke(cli, ["--help"]).output
    for command in ("doctor", "images", "labs", "release", "workspace", "jupyter", "bench"):
        assert command in out


def test_labs_reset_without_confirmation_refuses_when_not_interactive(monkeypatch):
    monkeypatch.setenv("CAREOPS_LEARNER", "nobody-has-this-id")
    result = CliRunner().invoke(cli, ["labs", "reset"])
    assert result.exit_code == 0 and "nothing to remove" in result.output


def test_make_help_shows_the_two_commands(repo_root):
    import subprocess

    out = subprocess.run(["make", "-s", "help"], cwd=repo_root, capture_output=True, text=True).stdout
    assert "make lab" in out and "make test" in out and "make bench" in out
