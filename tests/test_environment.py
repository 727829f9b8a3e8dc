"""environment.yml is the one dependency list: conda and the .venv cannot disagree."""
from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys

import yaml
from packaging.requirements import Requirement


def _env(repo_root):
    return yaml.safe_load((repo_root / "environment.yml").read_text())


def _pip_section(env):
    return next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))


def test_conda_installs_only_python_and_pip_so_pip_installs_the_same_list_both_ways(repo_root):
    conda = [d for d in _env(repo_root)["dependencies"] if isinstance(d, str)]
    assert sorted(c.split("=")[0] for c in conda) == ["pip", "python"], (
        "a conda-only package would not reach the .venv: put every package in the pip section"
    )


def test_the_makefile_reader_agrees_with_a_real_yaml_parser(repo_root):
    out = subprocess.run([sys.executable, "scripts/env_requirements.py", "environment.yml"], cwd=repo_root,
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert [line for line in out if line] == _pip_section(_env(repo_root))


def test_the_venv_python_is_the_one_environment_yml_names(repo_root):
    spec = next(d for d in _env(repo_root)["dependencies"] if isinstance(d, str) and d.startswith("python"))
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == spec.split("=")[1]


def test_every_requirement_is_installed_at_an_allowed_version(repo_root):
    problems = []
    for line in _pip_section(_env(repo_root)):
        if line.startswith("-e"):
            continue
        req = Requirement(line)
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            problems.append(f"{req.name} is not installed")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name} {version} does not satisfy {req.specifier}")
    assert not problems, problems


def test_the_toolkit_declares_no_dependencies_of_its_own(repo_root):
    import tomllib

    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == [], "list dependencies in environment.yml only"
