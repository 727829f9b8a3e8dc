"""`careops jupyter`: start JupyterLab on workspace/ the way the course needs it.

Why not plain ``jupyter lab``: the server must use this environment's Python as
the kernel (the notebooks import careops), tell the kernels where the toolkit
lives (CAREOPS_HOME) and who the learner is (CAREOPS_LEARNER), listen on
127.0.0.1 only with a fresh random token, and fail with a clear next step when
the port is taken. When the course is already open, a second ``make lab``
prints the running server's address and succeeds: the learner gets what they
asked for (the course in a browser), not a second server fighting over the
notebooks.

It runs in the foreground like ``jupyter lab`` (Ctrl-C stops it). Once the
server answers, build/jupyter.json holds its url, token and pid, so tests and
scripts started it as a subprocess can find it; the file is removed on exit.
"""
from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from careops import paths
from careops.ports import LOOPBACK, port_free, suggest_port
from careops.lab.labels import LEARNER_ENV, learner_name
from careops.errors import CareOpsError, PortInUse

HOST = LOOPBACK
#: How long JupyterLab may take to answer before we give up (cold disks are slow).
START_TIMEOUT = 180.0
#: The port JupyterLab listens on unless told otherwise (`make lab PORT=...`).
DEFAULT_PORT = 8888

#: How long a stopping server may take to shut its kernels down before it is killed.
STOP_TIMEOUT = 30.0


class JupyterStartError(CareOpsError):
    """JupyterLab exited or did not answer while starting."""


@dataclass(frozen=True)
class RunningServer:
    """A JupyterLab server that serves our workspace, and where we learned of it."""

    url: str
    pid: int
    port: int
    source: str


def state_path() -> Path:
    """build/jupyter.json: url, token and pid of the running server (absent when stopped)."""
    return paths.build_dir() / "jupyter.json"


def jupyter_dir() -> Path:
    """build/jupyter/: the server's config (holds the token) and our kernel spec."""
    return paths.build_dir() / "jupyter"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    except OSError:
        return False
    return True


def _same_dir(a: str | os.PathLike[str] | None, b: Path) -> bool:
    if not a:
        return False
    try:
        return Path(a).expanduser().resolve() == b.resolve()
    except OSError:
        return False


def _lab_url(base_url: str, token: str) -> str:
    base = base_url if base_url.endswith("/") else base_url + "/"
    return f"{base}lab?token={token}" if token else f"{base}lab"


def find_running(workspace: Path) -> RunningServer | None:
    """Our JupyterLab for this workspace if one runs: build/jupyter.json, then Jupyter's runtime dir.

    The runtime dir (what `jupyter server list --json` reads) also finds a
    server started some other way on the same workspace, on any port.
    """
    try:
        state = json.loads(state_path().read_text(encoding="utf-8"))
        if _same_dir(state.get("root_dir"), workspace) and _pid_alive(int(state["pid"])):
            return RunningServer(state["url"], int(state["pid"]), int(state["port"]), str(state_path()))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:  # pragma: no cover - jupyter_server comes with jupyterlab
        return None
    try:
        for info in list_running_servers():
            if _same_dir(info.get("root_dir") or info.get("notebook_dir"), workspace):
                return RunningServer(
                    _lab_url(info.get("url", ""), info.get("token", "")),
                    int(info["pid"]),
                    int(info.get("port", 0)),
                    "jupyter server list",
                )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def _port_in_use(port: int) -> PortInUse:
    other = suggest_port(port)
    return PortInUse(
        f"cannot start JupyterLab: port {port} on {HOST} is already taken by another program "
        f"(expected a free port, got one in use)",
        fix=f"run 'make lab PORT={other}' (or '.venv/bin/careops jupyter --port {other}'), "
        f"or stop the program that uses port {port}",
    )


def already_running_text(found: RunningServer) -> str:
    """What a second ``make lab`` says: the address of the running course, and how to stop it."""
    stop = f"'.venv/bin/jupyter server stop {found.port}'" if found.port else f"'kill {found.pid}'"
    return ("\nCareOps Labs is already running (pid {pid}). Open this address in your browser:\n\n"
            "    {url}\n\n"
            "To stop it press Ctrl-C in the terminal where 'make lab' runs, or run {stop}.\n"
            ).format(pid=found.pid, url=found.url, stop=stop)


def _open_browser(url: str) -> None:
    """Open ``url`` in the learner's browser, when there is one (a server without a display has none)."""
    import webbrowser

    try:
        webbrowser.open(url)
    except webbrowser.Error:
        pass


def _write_private(path: Path, text: str) -> None:
    """Write a file only the owner can read (it holds the token), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def prepare_config(*, port: int, token: str, open_browser: bool, workspace: Path, env: dict[str, str]) -> Path:
    """Write the server config, lab page config and kernel spec under build/jupyter/; return the config file.

    The token goes into a private file rather than the command line, where
    other users of the machine could read it in `ps`.
    """
    root = jupyter_dir()
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o700)
    kernel_dir = root / "data" / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    kernel = {
        # This environment's interpreter, not whatever `python` is on PATH.
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (CareOps Labs)",
        "language": "python",
        "env": {k: env[k] for k in (paths.HOME_ENV, LEARNER_ENV)},
        "metadata": {"debugger": True},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(kernel, indent=1), encoding="utf-8")
    # No "Would you like to get notified about Jupyter news?" pop-up: hospital
    # networks are closed, and it would cover the notebook (JupyterLab reads
    # labconfig/ from every JUPYTER_CONFIG_PATH entry).
    labconfig = root / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    page_config = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True, **LEARNER_HIDDEN_PLUGINS}}
    (labconfig / "page_config.json").write_text(json.dumps(page_config, indent=1), encoding="utf-8")
    config = {
        "ServerApp": {
            "ip": HOST,
            "port": port,
            "port_retries": 0,  # never move silently to another port
            "root_dir": str(workspace),
            "open_browser": open_browser,
            "answer_yes": True,  # Ctrl-C stops at once, no y/n prompt
            "log_level": "WARN",  # keep the terminal readable; our own line says where to go
            # Jupyter refuses root unless told; `make lab` as root is supported
            # (lab VMs), and the server only listens on 127.0.0.1 with a token.
            "allow_root": hasattr(os, "geteuid") and os.geteuid() == 0,
            # Learners get nbgrader's "Validate" button, not the instructor's tools.
            "jpserver_extensions": {ext: False for ext in INSTRUCTOR_SERVER_EXTENSIONS},
        },
        "IdentityProvider": {"token": token},
        "LabApp": {
            # The course runs on closed hospital networks: no calls home.
            "news_url": None,
            "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
            "extension_manager": "readonly",  # no PyPI look-ups from the browser
            "log_level": "WARN",
        },
    }
    config_file = root / "jupyter_lab_config.json"
    _write_private(config_file, json.dumps(config, indent=1))
    return config_file


#: nbgrader's instructor-side parts, hidden in the learner's JupyterLab (instructors run nbgrader directly).
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
    "nbgrader.server_extensions.assignment_list",
)
LEARNER_HIDDEN_PLUGINS = {
    f"@jupyter/nbgrader:{plugin}": True
    for plugin in ("formgrader", "create-assignment", "course-list", "assignment-list", "menu")
}


def server_env(workspace: Path) -> dict[str, str]:
    """Environment for the server and its kernels: where the toolkit is, who the learner is."""
    env = dict(os.environ)
    env[paths.HOME_ENV] = str(paths.repo_root())
    env[LEARNER_ENV] = learner_name()
    data = str(jupyter_dir() / "data")
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (data, env.get("JUPYTER_PATH", "")) if p)
    config = str(jupyter_dir() / "config")
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in (config, env.get("JUPYTER_CONFIG_PATH", "")) if p)
    env.pop("JUPYTER_TOKEN", None)  # ours is in the config file
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the server gets SIGTERM if the launcher dies, so it is never left behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _wait_ready(proc: subprocess.Popen[bytes], port: int, token: str, timeout: float) -> None:
    """Poll /api/status until the server answers with our token, or explain why not."""
    url = f"http://{HOST}:{port}/api/status"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if not port_free(port):
                raise _port_in_use(port)
            raise JupyterStartError(
                f"JupyterLab exited with code {proc.returncode} while starting "
                f"(expected it to answer on {url})",
                fix="read its messages above; 'make doctor' checks the environment, "
                "'make clean && make lab' rebuilds it",
            )
        req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(req, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 403:
                raise _port_in_use(port) from exc  # someone else's server answered
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise JupyterStartError(
        f"JupyterLab did not answer on {url} within {timeout:.0f} s (expected it to start)",
        fix="read its messages above; try again, or 'make doctor' to check the machine",
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(*, port: int = DEFAULT_PORT, open_browser: bool = True) -> int:
    """Start JupyterLab on workspace/ and keep it in the foreground until Ctrl-C."""
    if not 1 <= port <= 65535:
        raise CareOpsError(f"invalid port: expected 1-65535, got {port}", fix=f"run 'make lab PORT={DEFAULT_PORT}'")
    workspace = paths.workspace_dir()
    if not workspace.is_dir():
        raise CareOpsError(
            f"no workspace to open: expected your notebooks in {workspace}, got no such folder",
            fix="run 'make workspace' (copies the learner notebooks), or simply 'make lab'",
        )
    found = find_running(workspace)
    if found is not None:  # the course is open already: say where, and succeed
        print(already_running_text(found), flush=True)
        if open_browser:
            _open_browser(found.url)
        return 0
    if not port_free(port):
        raise _port_in_use(port)

    token = secrets.token_urlsafe(32)
    env = server_env(workspace)
    config_file = prepare_config(port=port, token=token, open_browser=open_browser, workspace=workspace, env=env)
    cmd = [sys.executable, "-m", "jupyterlab", f"--config={config_file}"]
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    proc = subprocess.Popen(cmd, env=env, cwd=workspace, preexec_fn=preexec)

    signals_seen = 0

    def forward(signum: int, _frame: FrameType | None) -> None:
        # Ctrl-C reaches the server too (same process group); forwarding covers
        # `kill <our pid>`. A third signal means: stop now.
        nonlocal signals_seen
        signals_seen += 1
        if proc.poll() is None:
            sig = signal.SIGKILL if signals_seen >= 3 else (signal.SIGTERM if signum != signal.SIGINT else signal.SIGINT)
            try:
                proc.send_signal(sig)
            except OSError as exc:
                if exc.errno != errno.ESRCH:
                    raise

    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():  # signal.signal works only there
        stops = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        previous = {s: signal.signal(s, forward) for s in stops}
    state = state_path()
    try:
        try:
            _wait_ready(proc, port, token, START_TIMEOUT)
        except JupyterStartError:
            if signals_seen:  # Ctrl-C while starting: not a fault
                print("careops: interrupted while JupyterLab was starting", file=sys.stderr)
                return 130
            raise
        url = _lab_url(f"http://{HOST}:{port}/", token)
        _write_private(
            state,
            json.dumps(
                {
                    "url": url,
                    "base_url": f"http://{HOST}:{port}/",
                    "token": token,
                    "port": port,
                    "pid": proc.pid,
                    "launcher_pid": os.getpid(),
                    "root_dir": str(workspace),
                    "learner": env[LEARNER_ENV],
                    "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                },
                indent=1,
            ),
        )
        print(
            "\nCareOps Labs is running. Open this address in your browser:\n\n"
            f"    {url}\n\n"
            f"Workspace: {workspace}   learner: {env[LEARNER_ENV]}\n"
            "Press Ctrl-C here to stop JupyterLab (save your notebooks first).\n",
            flush=True,
        )
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:  # pragma: no cover - handler above replaces it
                continue
    finally:
        _stop(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        try:
            if json.loads(state.read_text(encoding="utf-8")).get("pid") == proc.pid:
                state.unlink()
        except (OSError, ValueError, AttributeError):
            pass
    if signals_seen or code in (0, -signal.SIGTERM, -signal.SIGINT):
        print("JupyterLab stopped. Your notebooks are in workspace/; 'make lab' starts it again.")
        return 0
    raise JupyterStartError(
        f"JupyterLab stopped unexpectedly with code {code} (expected it to run until Ctrl-C)",
        fix="read its messages above, then run 'make lab' again",
    )
