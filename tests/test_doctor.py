"""`careops doctor` proves the engine for real and explains what is missing."""
from __future__ import annotations

import subprocess
import sys

import pytest

from careops.apps import doctor


@pytest.mark.docker
def test_doctor_runs_a_real_container():
    findings = {f.check: f for f in doctor.diagnose()}
    assert findings["engine"].status == "ok"
    assert findings["run"].status == "ok", findings["run"].detail
    assert findings["limits"].status == "ok"


def test_no_engine_gives_a_message_with_the_fix_and_a_nonzero_exit(tmp_path):
    env = {"DOCKER_HOST": f"unix://{tmp_path}/nothing.sock", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "careops.cli", "doctor"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert "no container engine answered" in proc.stdout and "nothing.sock" in proc.stdout
    assert "fix:" in proc.stdout and "Podman" in proc.stdout


def test_ensure_engine_as_a_user_without_access_explains(tmp_path, repo_root):
    """The setup script never installs anything for a normal user; it says how."""
    script = repo_root / "scripts" / "ensure-engine.sh"
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(script)],
                          capture_output=True, text=True, env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock", "PATH": "/usr/bin:/bin:/usr/local/bin"},
                          timeout=60)
    assert proc.returncode == 1
    # make test runs an engine, so its socket exists: this user is refused, and told how to get access.
    assert "exists but you may not use it" in proc.stderr and "usermod -aG docker" in proc.stderr
    assert "unbound variable" not in proc.stderr
