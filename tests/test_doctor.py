"""`careops doctor` proves the engine for real and explains what is missing."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

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


@pytest.fixture
def ensure_engine_anyone_can_read(repo_root):
    """scripts/ensure-engine.sh copied to a fresh world-readable folder in the system temp dir.

    The unprivileged user of the test cannot reach the checkout when one of its parents is private (a clone
    under a 0700 home folder), nor pytest's tmp_path (0700 too)."""
    folder = Path(tempfile.mkdtemp(prefix="careops-ensure-engine-"))
    try:
        folder.chmod(0o755)
        script = folder / "ensure-engine.sh"
        shutil.copyfile(repo_root / "scripts" / "ensure-engine.sh", script)
        script.chmod(0o755)
        yield script
    finally:
        shutil.rmtree(folder)


def test_ensure_engine_as_a_user_without_access_explains(tmp_path, ensure_engine_anyone_can_read):
    """The setup script never installs anything for a normal user; it says how."""
    script = ensure_engine_anyone_can_read
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(script)],
                          capture_output=True, text=True, env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock", "PATH": "/usr/bin:/bin:/usr/local/bin"},
                          timeout=60)
    assert proc.returncode == 1
    # make test runs an engine, so its socket exists: this user is refused, and told how to get access.
    assert "exists but you may not use it" in proc.stderr and "usermod -aG docker" in proc.stderr
    assert "unbound variable" not in proc.stderr
