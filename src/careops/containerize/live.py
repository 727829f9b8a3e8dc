"""Live checks of a learner's ADT image: run it in a Lab and prove it from outside.

Why: a Dockerfile that reads well can still lose admissions. These checks do
what the hospital's acceptance test would: send ADT messages over MLLP and
read the ACKs, ask /health, replace the container and look for the patients
(the volume), stop it with SIGTERM in the middle of traffic and look for every
message it acknowledged (graceful shutdown), and check who the process runs as.
Everything runs in a ``careops.lab.Lab`` (limits, private network, ports on
127.0.0.1) that is closed at the end, whatever happened.
"""
from __future__ import annotations

import json
import posixpath
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import docker

from careops import engine
from careops import legacy_adt
from careops.errors import LabError
from careops.polling import eventually
from careops.report import CheckReport
from careops.containerize.build import LearnerBuild
from careops.containerize.layers import scan_image
from careops.hl7 import MllpClient, build_adt
from careops.lab import Lab
from careops.lab.connect import lab_backend
from careops.lab.container import LabContainer
from careops.lab.policy import format_bytes
from careops.phi import HIGH_PRECISION_KINDS, scan_text

MLLP_PORT = legacy_adt.MLLP_PORT
HTTP_PORT = legacy_adt.HTTP_PORT
START_TIMEOUT = 60.0
VOLUME = legacy_adt.VOLUME


def _folder_of(config: dict[str, Any]) -> str | None:
    env = dict(e.split("=", 1) for e in config.get("Env") or [] if "=" in e)
    volumes = sorted(config.get("Volumes") or {})
    db = env.get("ADT_DB", "")
    folder = posixpath.dirname(db) if db.startswith("/") else ""
    for vol in volumes:
        if folder == vol.rstrip("/") or folder.startswith(vol.rstrip("/") + "/"):
            return vol
    return volumes[0] if volumes else None


def data_folder(image: str, *, client: docker.DockerClient | None = None) -> str | None:
    """The VOLUME the image declares for its database (the one holding ADT_DB), else its first VOLUME, else None.

    The lab mounts its named volume only where the image itself declares one: an image that keeps its
    database outside every VOLUME loses it with the container, and the durability check must see that.
    """
    cl = client or engine.client()
    return _folder_of(cl.api.inspect_image(image).get("Config") or {})


def run_service(lab: Lab, image: str, *, name: str = legacy_adt.CONTAINER, volume: str = VOLUME) -> LabContainer:
    """Start the image in the lab with a named lab volume on its declared VOLUME and both ports published."""
    folder = _folder_of(lab.image_config(image))
    return lab.run(image, name=name, ports=[MLLP_PORT, HTTP_PORT], volumes={volume: folder} if folder else None,
                   memory="256m", cpus=1.0, pids=128)


def http_json(container: LabContainer, path: str, *, timeout: float = 3.0) -> tuple[int, Any]:
    """GET a path on the container's HTTP port from the host; (status, parsed JSON or text)."""
    url = f"http://127.0.0.1:{container.port(HTTP_PORT)}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode("utf-8", "replace")
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read().decode("utf-8", "replace"), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def admit(container: LabContainer, mrns: list[str], *, prefix: str, family: str = "Testperson") -> list[str]:
    """Send one ADT^A01 per MRN; return the MRNs that were acknowledged with AA."""
    acked = []
    with MllpClient("127.0.0.1", container.port(MLLP_PORT), timeout=5) as client:
        for n, mrn in enumerate(mrns):
            ack = client.send(build_adt("A01", control_id=f"{prefix}-{n}", mrn=mrn, family=family, given="Alex",
                                        birth_date="19800101", sex="F"))
            if ack.ok:
                acked.append(mrn)
    return acked


def stored(container: LabContainer, mrns: list[str]) -> list[str]:
    """The MRNs the service can find (GET /patients/<MRN> answers 200)."""
    return [m for m in mrns if http_json(container, f"/patients/{m}")[0] == 200]


@dataclass
class TrafficResult:
    acked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def traffic_until_stopped(container: LabContainer, *, prefix: str, stop_after: int = 15,
                          max_messages: int = 400) -> tuple[TrafficResult, int | None, float]:
    """Send admissions continuously; after ``stop_after`` ACKs, SIGTERM the container mid-traffic.

    Returns what was acknowledged, the container's exit code and how long the stop took.
    """
    result = TrafficResult()
    port = container.port(MLLP_PORT)
    started = threading.Event()
    finished = threading.Event()

    def sender() -> None:
        try:
            with MllpClient("127.0.0.1", port, timeout=5) as client:
                for n in range(max_messages):
                    mrn = f"SYN-{prefix}-{n:04d}"
                    ack = client.send(build_adt("A01", control_id=f"{prefix}-{n}", mrn=mrn, family="Testperson",
                                                given="Sam", birth_date="19750505", sex="M"))
                    if ack.ok:
                        result.acked.append(mrn)
                    if len(result.acked) >= stop_after:
                        started.set()
        except Exception as exc:  # noqa: BLE001 - the connection ends when the service stops: expected
            result.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            started.set()
            finished.set()

    threading.Thread(target=sender, daemon=True).start()
    started.wait(30)
    t0 = time.monotonic()
    container.stop(timeout=10)  # SIGTERM, then SIGKILL after 10 s
    seconds = time.monotonic() - t0
    finished.wait(10)
    code = container.state().exit_code
    return result, code, seconds


def _uids(container: LabContainer) -> list[str]:
    return [p["UID"] for p in container.processes("-o pid,uid,comm")]


def _answering(container: LabContainer, *, from_outside: bool = True) -> None:
    """Wait until the service answers GET /health from outside (a restart of an image whose HEALTHCHECK was
    already seen to work: the engine's next scheduled check, an interval away, is not needed to know it is up).
    An image whose service was already seen not to answer from outside (``from_outside=False``) is waited for by its
    HEALTHCHECK instead: asking from outside would only wait out START_TIMEOUT to learn the same thing again."""
    if not from_outside:
        container.wait_until("healthy", timeout=START_TIMEOUT)
        return
    status = eventually(lambda: http_json(container, legacy_adt.HEALTH_PATH, timeout=2)[0], until=lambda c: c == 200,
                        timeout=START_TIMEOUT, interval=0.1, what=f"{container.name} to answer {legacy_adt.HEALTH_PATH}")
    if status != 200:
        raise LabError(f"{container.name} answered GET {legacy_adt.HEALTH_PATH} with {status}, expected 200 "
                       f"within {START_TIMEOUT:g} s", fix="read its logs (.logs())")


def live_report(build: LearnerBuild, *, lab_name: str = "containerize-check", learner: str | None = None,
                title: str = "Live checks of your image") -> CheckReport:
    """Every live criterion, in order; later ones are skipped (failed, with the reason) once the service is not up."""
    report = CheckReport(title)
    if not report.check(build.ok, "the image builds offline within the time limit",
                        got=None if build.ok else build.reason, hint=build.hint):
        return report
    assert build.tag is not None
    config = (lab_backend().image_inspect(build.tag) or {}).get("Config") or {}
    report.check(build.size <= build.size_budget,
                 f"the image adds at most {format_bytes(build.size_budget - build.base_size)} to its base",
                 got=format_bytes(max(0, build.size - build.base_size)),
                 hint="copy only adt_service.py; a .dockerignore keeps the rest of the folder out")
    user = config.get("User") or "root"
    report.check(user.split(":")[0] not in ("", "root", "0"), "the image's default user is not root", got=user,
                 hint="USER 10001 after the steps that need root")
    healthcheck = (config.get("Healthcheck") or {}).get("Test") or []
    if not report.check(bool(healthcheck) and healthcheck[0] != "NONE", "the image has a HEALTHCHECK",
                        got=healthcheck or "none", hint="HEALTHCHECK CMD [\"python3\", \"-c\", \"...urlopen("
                             f"'http://127.0.0.1:{HTTP_PORT}{legacy_adt.HEALTH_PATH}')\"]"):
        return report
    run = uuid.uuid4().hex[:6].upper()

    def service_checks() -> bool:
        """The criteria that need the service running in a lab; False when a failed one stops the rest."""
        with Lab(lab_name, learner=learner) as lab:
            try:
                adt = run_service(lab, build.tag)
                adt.wait_until("healthy", timeout=START_TIMEOUT)
                up = True
                why = ""
            except Exception as exc:  # noqa: BLE001 - a learner's image that does not start is a failed criterion
                up, why = False, str(exc)
            if not report.check(up, "the container starts and its HEALTHCHECK reports healthy", got=why or None,
                                hint="read the log lines; does the HEALTHCHECK ask "
                                     f"http://127.0.0.1:{HTTP_PORT}{legacy_adt.HEALTH_PATH}?"):
                return False
            try:
                status, body = http_json(adt, legacy_adt.HEALTH_PATH)
            except OSError as exc:  # the proxy accepts, the service is not listening on the container's address
                status, body = 0, f"{type(exc).__name__}: {exc}"
            answers_outside = report.check(
                status == 200 and isinstance(body, dict) and body.get("status") == "ok",
                f"GET {legacy_adt.HEALTH_PATH} from outside answers {{\"status\": \"ok\"}}", got=(status, body),
                hint="ADT_HTTP_HOST must be 0.0.0.0 inside a container, or the port is unreachable")
            first = [f"SYN-{run}-A{n}" for n in range(3)]
            try:
                acked = admit(adt, first, prefix=f"L{run}", family=f"Liveperson{run.lower()}")
                err = ""
            except Exception as exc:  # noqa: BLE001
                acked, err = [], str(exc)
            if not report.check(acked == first, "admissions sent over MLLP from outside get AA acknowledgements",
                                expected=first, got=err or acked, hint=f"ADT_HOST must be 0.0.0.0; EXPOSE {MLLP_PORT}"):
                return False
            try:
                uids = _uids(adt)
            except docker.errors.APIError:  # an engine without `top`: ask the kernel inside instead
                status_text = adt.exec(["cat", "/proc/1/status"], check=False, timeout=10).output
                uids = [ln.split()[1] for ln in status_text.splitlines() if ln.startswith("Uid:")]
            report.check(bool(uids) and not any(u in ("0", "root") for u in uids), "no process in the container runs as root",
                         got=uids, hint="USER 10001 (and no user: override at run time)")
            logs = adt.logs(200)
            phi = [str(f) for f in scan_text(logs, source="logs", kinds=HIGH_PRECISION_KINDS) if not f.synthetic]
            on_stdout = all(f"L{run}-{n}" in logs for n in range(len(first)))
            report.check(on_stdout and f"liveperson{run.lower()}" not in logs.lower() and not phi,
                         "the service logs to stdout (each message's control id), without patient data",
                         got="the messages are not logged on stdout" if not on_stdout else (phi or "a patient name in the log"),
                         hint="ENV ADT_LOG=- sends the log to stdout; v2 logs control ids, never PID fields")
            # durability 1: a new container on the same volume finds every patient
            adt.remove()
            try:
                adt = run_service(lab, build.tag)
                _answering(adt, from_outside=answers_outside)
                found = eventually(lambda: stored(adt, first), until=lambda r: r == first, timeout=10, what="the patients")
                err = ""
            except Exception as exc:  # noqa: BLE001
                found, err = [], str(exc)
            if not report.check(found == first, "a new container on the same volume still has every admitted patient",
                                expected=first, got=err or found,
                                hint="VOLUME [\"/data\"] and ADT_DB=/data/adt.db, with /data owned by the service user"):
                return False
            # durability 2: SIGTERM during traffic loses no acknowledged message
            traffic, code, _ = traffic_until_stopped(adt, prefix=f"T{run}")
            report.check(code == 0, "SIGTERM during traffic stops the service cleanly (exit code 0, within 10 s)",
                         expected=0, got=code,
                         hint="exec-form CMD (or tini) delivers SIGTERM to the service; v2 finishes in-flight messages")
            try:
                adt = run_service(lab, build.tag)
                _answering(adt, from_outside=answers_outside)
                found = stored(adt, traffic.acked)
                err = ""
            except Exception as exc:  # noqa: BLE001
                found, err = [], str(exc)
            lost = [m for m in traffic.acked if m not in found]
            report.check(bool(traffic.acked) and not lost and not err,
                         f"every message acknowledged before SIGTERM is stored ({len(traffic.acked)} acknowledged)",
                         got=err or (f"{len(lost)} lost, e.g. {lost[:3]}" if lost else "nothing was acknowledged"),
                         hint="commit, then ACK (ADT service v2); the database must be on the volume")
        return True

    # the layer scan needs only the image: it runs while the service is checked
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="layer-scan") as pool:
        scanning = pool.submit(scan_image, build.tag, build.base_image or "")
        if not service_checks():
            return report
        scan = scanning.result()
    report.check(not scan.secrets, "no secret in the image's layers, history or ENV", got=scan.secrets[:5] or None,
                 hint="a .dockerignore keeps secrets/ out; COPY only adt_service.py; never ENV a password")
    report.check(not scan.phi, "no real-looking patient data in the image's layers", got=scan.phi[:5] or None,
                 hint="test-data/ is a production extract: keep it out with .dockerignore")
    return report
