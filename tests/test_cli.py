"""The CLI is thin and complete."""
from __future__ import annotations

from click.testing import CliRunner

from careops.cli import cli


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
    result = CliRunner().invoke(cli, ["pipeline", "validate", str(repo_root / "labs/ci-pipeline/solution-ci.yml")])
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
