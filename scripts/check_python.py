#!/usr/bin/env python3
"""Fail early when the venv's Python is not the one environment.yml names.

Conda users get python from environment.yml; venv users get the host's
python3. Both must agree, or the two install paths could disagree.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from env_requirements import read_environment  # noqa: E402

conda, _ = read_environment(Path(sys.argv[1] if len(sys.argv) > 1 else "environment.yml"))
spec = next((c.split("=", 1)[1].lstrip("=") for c in conda if c.split("=")[0] == "python"), "")
have = f"{sys.version_info.major}.{sys.version_info.minor}"
if spec and not (have == spec or have.startswith(spec + ".")):
    sys.exit(
        f"careops: environment.yml asks for Python {spec}, but {sys.executable} is {have}.\n"
        f"  fix: run 'make PYTHON=python{spec} lab' with Python {spec} installed, or use conda:"
        " conda env create -f environment.yml"
    )
