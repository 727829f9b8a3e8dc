"""`careops jupyter`: the faults a learner meets, each with its fix, and a real start/stop."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from careops.apps import jupyter
from careops.errors import CareOpsError, PortInUse

CAREOPS = Path(sys.executable).with_name("careops")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CareOps tree with a workspace, and a Jupyter runtime dir of its own."""
    monkeypatch.setenv("CAREOPS_HOME", str(tmp_path))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("CAREOPS_LEARNER", raising=False)
    (tmp_path / "workspace" / "00-orientation").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def occupied_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAREOPS_HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    return subprocess.run(
        [str(CAREOPS), "jupyter", "--no-browser", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_port_in_use_names_another_port(home: Path, occupied_port: int) -> None:
    with pytest.raises(PortInUse) as err:
        jupyter.main(port=occupied_port, open_browser=False)
    assert f"port {occupied_port}" in err.value.message and "already taken" in err.value.message
    assert "make lab PORT=" in (err.value.fix or "")
    suggested = int((err.value.fix or "").split("PORT=")[1].split("'")[0])
    assert suggested != occupied_port and jupyter.port_free(suggested)
    assert not (home / "build" / "jupyter.json").exists()


def test_port_in_use_exits_nonzero_from_the_cli(home: Path, occupied_port: int) -> None:
    result = _cli(home, "--port", str(occupied_port))
    assert result.returncode == PortInUse.exit_code != 0
    assert "already taken" in result.stderr and "make lab PORT=" in result.stderr


def test_port_held_on_all_interfaces_is_seen(home: Path) -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not jupyter.port_free(port)


def test_missing_workspace_names_make_workspace(home: Path) -> None:
    import shutil

    shutil.rmtree(home / "workspace")
    with pytest.raises(CareOpsError) as err:
        jupyter.main(port=free_port(), open_browser=False)
    assert "workspace" in err.value.message and "no such folder" in err.value.message
    assert "make workspace" in (err.value.fix or "")
    result = _cli(home, "--port", str(free_port()))
    assert result.returncode != 0 and "make workspace" in result.stderr


def test_already_running_is_found_in_jupyters_runtime_dir(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What `jupyter server list --json` reads: a server of ours on any port counts."""
    runtime = home / "runtime"
    runtime.mkdir()
    info = {
        "pid": os.getpid(),  # a live process
        "port": 8899,
        "url": "http://127.0.0.1:8899/",
        "token": "abc",
        "root_dir": str(home / "workspace"),
    }
    (runtime / f"jpserver-{os.getpid()}.json").write_text(json.dumps(info))
    assert jupyter.main(port=free_port(), open_browser=False) == 0  # a second `make lab` succeeds
    said = capsys.readouterr().out
    assert "already running" in said and "http://127.0.0.1:8899/lab?token=abc" in said
    assert "jupyter server stop 8899" in said and "Ctrl-C" in said


def test_a_server_for_another_folder_does_not_count(home: Path) -> None:
    runtime = home / "runtime"
    runtime.mkdir()
    info = {"pid": os.getpid(), "port": 8899, "url": "http://127.0.0.1:8899/", "token": "", "root_dir": "/elsewhere"}
    (runtime / "jpserver-1.json").write_text(json.dumps(info))
    assert jupyter.find_running(home / "workspace") is None


def test_stale_state_file_is_ignored(home: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (home / "build").mkdir()
    state = {"url": "u", "pid": dead.pid, "port": 1, "root_dir": str(home / "workspace")}
    (home / "build" / "jupyter.json").write_text(json.dumps(state))
    assert jupyter.find_running(home / "workspace") is None


def test_kernel_is_this_python_and_knows_the_learner(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAREOPS_LEARNER", "nurse-it-7")
    env = jupyter.server_env(home / "workspace")
    jupyter.prepare_config(port=1234, token="t0k", open_browser=False, workspace=home / "workspace", env=env)
    spec = json.loads((home / "build/jupyter/data/kernels/python3/kernel.json").read_text())
    assert spec["argv"][0] == sys.executable
    assert spec["env"] == {"CAREOPS_HOME": str(home), "CAREOPS_LEARNER": "nurse-it-7"}
    assert env["JUPYTER_PATH"].split(os.pathsep)[0] == str(home / "build/jupyter/data")
    config_file = home / "build/jupyter/jupyter_lab_config.json"
    assert config_file.stat().st_mode & 0o077 == 0, "the token must be private"
    server = json.loads(config_file.read_text())["ServerApp"]
    assert server["ip"] == "127.0.0.1" and server["port"] == 1234 and server["port_retries"] == 0


def test_learner_defaults_to_the_login_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    monkeypatch.delenv("CAREOPS_LEARNER", raising=False)
    assert jupyter.learner_name() == getpass.getuser()


#: How long the test waits for each step of a real server (its state file, an API answer, the stop). The launcher
#: itself gives up on a server that has not answered within START_TIMEOUT (and exits, which the test sees at once), so
#: the test waits on those events and this deadline only catches a hang: a busy machine is slower, not failing.
REAL_SERVER_DEADLINE = jupyter.START_TIMEOUT + 60


def _wait_for_state(path: Path, proc: subprocess.Popen[str], timeout: float = REAL_SERVER_DEADLINE) -> dict[str, object]:
    """The launcher's state file, written once the server answered with our token; fail at once if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"careops jupyter exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        if path.exists():
            return dict(json.loads(path.read_text()))
        time.sleep(0.25)
    raise AssertionError(f"no {path} after {timeout} s")


def _api(port: int, path: str, token: str) -> dict[str, object]:
    """GET a JupyterLab API, with the deadline's patience: a busy server answers late, not wrongly."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=REAL_SERVER_DEADLINE) as resp:
        return dict(json.load(resp))


@pytest.mark.slow
def test_real_server_start_second_start_and_ctrl_c(home: Path) -> None:
    """Start as `make lab` does, refuse a second one, stop on Ctrl-C and clean up."""
    port = free_port()
    env = {**os.environ, "CAREOPS_HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    proc = subprocess.Popen(
        [str(CAREOPS), "jupyter", "--no-browser", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        state = _wait_for_state(home / "build" / "jupyter.json", proc)
        assert state["port"] == port and state["root_dir"] == str(home / "workspace")
        specs = _api(port, "/api/kernelspecs", str(state["token"]))
        assert specs["default"] == "python3"
        assert specs["kernelspecs"]["python3"]["spec"]["argv"][0] == sys.executable

        second = _cli(home, "--port", str(free_port()), timeout=REAL_SERVER_DEADLINE)
        assert second.returncode == 0, second.stderr  # `make lab` again: the address, and success
        assert "already running" in second.stdout and str(state["url"]) in second.stdout

        # Ctrl-C: the terminal sends SIGINT to the whole foreground group.
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=REAL_SERVER_DEADLINE)  # returns when the launcher has stopped the server
        assert proc.returncode == 0, out
        assert "CareOps Labs is running" in out and str(state["url"]) in out
        assert "JupyterLab stopped" in out
        assert not (home / "build" / "jupyter.json").exists()
        assert jupyter.port_free(port)
        with pytest.raises(ProcessLookupError):
            os.kill(int(str(state["pid"])), 0)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
