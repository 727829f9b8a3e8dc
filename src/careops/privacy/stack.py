"""Module 6's lab: the patient-data service as the learner's deployment says, a passive capture beside it, probes.

The learner's deployment (YAML) is turned into the service's configuration and secrets by this code, never by
learner code (the keys and their defaults)::

    mllp: {plain: true, tls: false, client_certificates: none}     # client_certificates: none | required
    fhir: {http: true, https: false}
    sender: {verify: true, check_hostname: true}                   # how the sending system checks the server
    store: {key: none}            # secret (mounted file) | env (an environment variable) | none

The access policy is a second artifact (``careops.privacy.tokens.AccessPolicy``); without one every read is
answered. The capture container shares the service's network namespace (as a switch's mirror port would see its
traffic), holds only CAP_NET_RAW, runs careops' own reader on a read-only root and reports the bytes it saw.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import ssl
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import docker.errors
import yaml

from careops.audit import AuditLog
from careops.errors import CareOpsError
from careops.hl7 import MllpClient
from careops.images.catalog import LAB_IMAGE, PATIENT_DATA_IMAGE
from careops.lab import Lab, LabContainer
from careops.lab import labels as L
from careops.polling import eventually
from careops.privacy.atrest import Keyring, cleartext_found
from careops.privacy.pki import CourseCA, Handshake, Issued, client_context, handshake
from careops.privacy.tokens import BREAK_GLASS_HEADER, AccessPolicy, Issuer

MLLP_PORT, MLLPS_PORT, HTTP_PORT, HTTPS_PORT = 2575, 2576, 8080, 8443
SERVICE = "patient-data"
SERVICE_UID = 10003
#: the names the service's certificate carries: its lab alias and how the host reaches its published ports
HOSTS = (SERVICE, "localhost", "127.0.0.1")
_CAPTURE = r"""
import base64, json, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.settimeout(0.2)
print("ready", flush=True)
end, out, n = time.time() + float(sys.argv[1]), bytearray(), 0
while time.time() < end and len(out) < 32 * 1024 * 1024:
    try:
        out += s.recv(65535); n += 1
    except socket.timeout:
        pass
print(json.dumps({"packets": n, "bytes": len(out)}), flush=True)
print(base64.b64encode(bytes(out)).decode(), flush=True)
"""


class DeploymentError(CareOpsError):
    """The learner's deployment cannot be read or run as written."""


@dataclass(frozen=True)
class Deployment:
    """What the learner decided: which ports are open, TLS on each, how the sender checks, where the key lives."""

    mllp_plain: bool = True
    mllp_tls: bool = False
    client_certificates: str = "none"  # none | required
    http_plain: bool = True
    https: bool = False
    sender_verify: bool = True
    sender_check_hostname: bool = True
    key: str = "none"  # secret | env | none

    @classmethod
    def from_yaml(cls, text: str) -> Deployment:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise DeploymentError(f"the deployment is not valid YAML: {exc}", fix="check indentation and colons") from None
        if not isinstance(data, dict):
            raise DeploymentError("the deployment must be a mapping with mllp, fhir, sender and store",
                                  fix="start from the cell's template")
        unknown = set(data) - {"mllp", "fhir", "sender", "store"}
        if unknown:
            raise DeploymentError(f"unknown keys {sorted(unknown)} in the deployment",
                                  fix="use only mllp, fhir, sender and store")
        mllp, fhir = data.get("mllp") or {}, data.get("fhir") or {}
        sender, store = data.get("sender") or {}, data.get("store") or {}
        certs = str(mllp.get("client_certificates", "none"))
        key = str(store.get("key", "none"))
        if certs not in ("none", "required") or key not in ("secret", "env", "none"):
            raise DeploymentError(f"client_certificates is {certs!r} (none | required), key is {key!r} "
                                  "(secret | env | none)", fix="use one of the listed values")
        return cls(bool(mllp.get("plain", True)), bool(mllp.get("tls", False)), certs, bool(fhir.get("http", True)),
                   bool(fhir.get("https", False)), bool(sender.get("verify", True)),
                   bool(sender.get("check_hostname", True)), key)


def sender_context(deployment: Deployment, ca_pem: bytes, client: Issued | None = None) -> ssl.SSLContext:
    """The sending system's TLS context as the deployment configures it (verify off: it trusts anything)."""
    ctx = client_context(ca_pem, client=client)
    if not deployment.sender_check_hostname or not deployment.sender_verify:
        ctx.check_hostname = False
    if not deployment.sender_verify:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _private_dir(path: Path, uid: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o750)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


def _secret_file(path: Path, data: bytes, uid: int) -> None:
    path.write_bytes(data)
    path.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(path, uid, uid)


@dataclass
class PatientDataStack:
    """The service in ``lab`` with the course CA's certificates, the token and audit keys and the keyring."""

    lab: Lab
    deployment: Deployment
    access: AccessPolicy | None = None
    ca: CourseCA = field(default_factory=CourseCA.create)
    token_key: bytes = field(default_factory=lambda: secrets.token_hex(32).encode())  # text: read back stripped
    audit_key: bytes = field(default_factory=lambda: secrets.token_hex(32).encode())
    keyring: Keyring = field(default_factory=Keyring.generate)
    container: LabContainer | None = None
    #: the container's name in the lab: stacks of different names run side by side
    name: str = SERVICE

    def __post_init__(self) -> None:
        if self.lab.workdir is None:
            raise DeploymentError("the lab has no work folder for the service's secrets and configuration",
                                  fix="open it with Lab('patient-data', workdir=check.lab_workdir())")
        self.workdir = self.lab.workdir
        self.volume = f"patient-data-{secrets.token_hex(3)}"  # a new stack starts with an empty store
        self.uid = SERVICE_UID if os.geteuid() == 0 else os.getuid()
        self.server_cert = self.ca.issue(SERVICE, hosts=HOSTS)
        self.sender_cert = self.ca.issue("registration-system", client=True)
        self.issuer = Issuer(self.token_key, self.access or AccessPolicy())

    # -- files the service reads ---------------------------------------------------------------
    @property
    def home(self) -> Path:
        """This stack's folder in the lab's work folder (stacks side by side keep their own secrets)."""
        return self.workdir / self.name

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    def _write_tls(self, server: Issued) -> None:
        tls = _private_dir(self.secrets_dir / "tls", self.uid)
        _secret_file(tls / "server.crt", server.cert_pem, self.uid)
        _secret_file(tls / "server.key", server.key_pem, self.uid)
        _secret_file(tls / "ca.crt", self.ca.cert_pem, self.uid)

    def _write_keyring(self) -> None:
        _secret_file(self.secrets_dir / "patient-key", self.keyring.to_json().encode(), self.uid)

    def _config(self) -> dict[str, Any]:
        d = self.deployment
        return {"mllp_port": MLLP_PORT if d.mllp_plain else None, "mllps_port": MLLPS_PORT if d.mllp_tls else None,
                "mllp_client_ca": d.client_certificates == "required",
                "http_port": HTTP_PORT if d.http_plain else None, "https_port": HTTPS_PORT if d.https else None,
                "tls_dir": "/run/secrets/tls", "token_key_file": "/run/secrets/token-key",
                "audit_key_file": "/run/secrets/audit-key",
                "access": None if self.access is None else {"roles": {
                    r.name: {"scopes": [str(s) for s in r.scopes], "wards": "own" if r.own_ward_only else "all",
                             "break_glass": r.break_glass} for r in self.access.roles.values()}},
                "keyring_file": "/run/secrets/patient-key" if d.key == "secret" else None,
                "key_env": "PATIENT_KEY" if d.key == "env" else None, "data": "/data"}

    def start(self, *, server: Issued | None = None, timeout: float = 60.0) -> PatientDataStack:
        """Write the configuration and secrets, and (re)start the service until it answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o755)
        _private_dir(self.secrets_dir, self.uid)
        self._write_tls(server or self.server_cert)
        _secret_file(self.secrets_dir / "token-key", self.token_key, self.uid)
        _secret_file(self.secrets_dir / "audit-key", self.audit_key, self.uid)
        self._write_keyring()
        config = self.home / "config"
        config.mkdir(exist_ok=True)
        config.chmod(0o755)
        (config / "service.json").write_text(json.dumps(self._config()))
        (config / "service.json").chmod(0o644)
        d = self.deployment
        ports = [p for p, on in ((MLLP_PORT, d.mllp_plain), (MLLPS_PORT, d.mllp_tls), (HTTP_PORT, d.http_plain),
                                 (HTTPS_PORT, d.https)) if on]
        env = {"PATIENT_KEY": self.keyring.to_json()} if d.key == "env" else {}
        self.container = self.lab.run(
            PATIENT_DATA_IMAGE, name=self.name, ports=ports, env=env, user=f"{self.uid}:{self.uid}", read_only=True,
            tmpfs=["/tmp"], volumes={self.volume: "/data"},
            binds={self.secrets_dir: "/run/secrets", config: "/run/config"}, memory="256m", pids=128)
        state = eventually(self._health, timeout=timeout, interval=0.3, until=lambda r: r != "starting",
                           what="the patient-data service's answer")
        if state != "up":
            raise DeploymentError(f"the patient-data service did not answer within {timeout:g} s: "
                                  f"{self.container.logs(tail=20)}", fix="read its log above")
        return self

    def _health(self) -> str:
        assert self.container is not None
        if self.container.status == "exited":
            return "exited"
        try:
            return "up" if self.http_get("/health", verify=False)[0] == 200 else "starting"
        except OSError:
            return "starting"

    # -- clients -------------------------------------------------------------------------------
    def port(self, container_port: int) -> int:
        assert self.container is not None
        return self.container.port(container_port)

    def http_get(self, path: str, headers: dict[str, str] | None = None, *, https: bool | None = None,
                 timeout: float = 5.0, verify: bool = True) -> tuple[int, dict[str, Any]]:
        """GET from the service (HTTPS when it serves it, trusting the course CA); (status, JSON body).

        ``verify=False`` only for the liveness probe, which must answer while a test certificate is served.
        """
        use_tls = self.deployment.https if https is None else https
        port = self.port(HTTPS_PORT if use_tls else HTTP_PORT)
        url = f"{'https' if use_tls else 'http'}://localhost:{port}{path}"
        ctx = client_context(self.ca.cert_pem) if use_tls else None
        if ctx is not None and not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(url, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def read_patient(self, patient_id: str, token: str | None = None, *, break_glass: str = "") -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if break_glass:
            headers[BREAK_GLASS_HEADER] = break_glass
        return self.http_get(f"/fhir/Patient/{patient_id}", headers)[0]

    def mllp_client(self, *, tls: bool | None = None, with_certificate: bool = True, timeout: float = 5.0) -> MllpClient:
        """A sender as the deployment configures it (MLLP over TLS when the service offers it)."""
        use_tls = self.deployment.mllp_tls if tls is None else tls
        if not use_tls:
            return MllpClient("127.0.0.1", self.port(MLLP_PORT), timeout=timeout)
        ctx = sender_context(self.deployment, self.ca.cert_pem, self.sender_cert if with_certificate else None)
        return MllpClient("127.0.0.1", self.port(MLLPS_PORT), timeout=timeout, tls=ctx, server_hostname="localhost")

    def send(self, messages: list[str], **kw: Any) -> list[str]:
        """Send ``messages`` over one connection; their ACK codes."""
        with self.mllp_client(**kw) as client:
            return [client.send(m).code for m in messages]

    def handshake(self, *, ca_pem: bytes | None | str = "course", server_hostname: str = "localhost",
                  with_certificate: bool = True) -> Handshake:
        """A TLS handshake with the MLLP/TLS port as a client trusting ``ca_pem`` (default the course CA)."""
        ca = self.ca.cert_pem if ca_pem == "course" else ca_pem
        return handshake("127.0.0.1", self.port(MLLPS_PORT), ca_pem=ca if not isinstance(ca, str) else None,
                         server_hostname=server_hostname, client=self.sender_cert if with_certificate else None)

    def sender_accepts(self, server: Issued) -> bool:
        """Restart the service with ``server``'s certificate: does the deployment's sender still connect?"""
        self.start(server=server)
        try:
            ctx = sender_context(self.deployment, self.ca.cert_pem, self.sender_cert)
            with MllpClient("127.0.0.1", self.port(MLLPS_PORT), timeout=5, tls=ctx, server_hostname="localhost") as c:
                c.connect()
            return True
        except CareOpsError:
            return False
        finally:
            self.start()

    def token(self, sub: str, role: str, **kw: Any) -> str:
        return self.issuer.token(sub, role, **kw)

    def patient_id(self, mrn: str) -> str:
        """The service's internal id of ``mrn`` (same keyed hash as careops.privacy.service)."""
        return "pt-" + hmac.new(self.audit_key, mrn.encode(), hashlib.sha256).hexdigest()[:16]

    # -- what an attacker could get ------------------------------------------------------------
    def capture(self, during: Callable[[], Any], *, seconds: float = 4.0) -> bytes:
        """Every frame the service's interfaces carried while ``during()`` ran, from a passive reader."""
        assert self.container is not None
        name = L.resource_name(self.lab.learner, self.lab.name, "capture")
        try:
            self.lab.client.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
        cap = self.lab.client.containers.run(
            LAB_IMAGE, ["python3", "-c", _CAPTURE, str(seconds)], name=name, detach=True, user="0",
            network_mode=f"container:{self.container.id}", read_only=True, cap_drop=["ALL"], cap_add=["NET_RAW"],
            security_opt=["no-new-privileges"], labels={**self.lab.labels, L.ROLE: "capture"},
            mem_limit="256m", pids_limit=32)
        try:
            eventually(lambda: "ready" in cap.logs().decode(), timeout=20, interval=0.1,
                       what="the capture container's start")
            during()
            cap.wait(timeout=seconds + 30)
            lines = cap.logs(stdout=True, stderr=False).decode().splitlines()
        finally:
            cap.remove(force=True)
        return base64.b64decode(lines[-1]) if len(lines) >= 3 else b""

    def listening_ports(self) -> set[int]:
        """The TCP ports the service listens on inside its container (published or not)."""
        ports = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                text = self.exec_read(table).decode()
            except CareOpsError:
                continue
            for line in text.splitlines()[1:]:
                cols = line.split()
                address, _, port = cols[1].rpartition(":") if len(cols) > 3 else ("", "", "")
                if cols[3:4] == ["0A"] and address != "0B00007F":  # LISTEN; not the engine's DNS on 127.0.0.11
                    ports.add(int(port, 16))
        return ports

    def exec_read(self, path: str) -> bytes:
        """A file of the running service's container (its /data volume)."""
        assert self.container is not None
        reader = f"import base64, sys; sys.stdout.write(base64.b64encode(open({path!r}, 'rb').read()).decode())"
        out = self.container.exec(["python3", "-c", reader])
        return base64.b64decode(out.output.strip())

    def database(self) -> bytes:
        return self.exec_read("/data/patients.db")

    def audit_log(self) -> AuditLog:
        """A verified copy of the service's audit log, read with its key."""
        copy = Path(tempfile.mkdtemp(prefix="careops-audit-")) / "audit.jsonl"
        copy.write_bytes(self.exec_read("/data/audit.jsonl"))
        return AuditLog(copy, key=self.audit_key)

    def add_key(self) -> str:
        """A new current key in the mounted keyring (the old keys stay); returns its id."""
        self.keyring = self.keyring.rotated()
        self._write_keyring()
        return self.keyring.current

    def reseal(self) -> dict[str, Any]:
        """The service re-seals every row with the keyring's current key: {"resealed": n, "keys": {...}}."""
        assert self.container is not None
        out = self.container.exec(["python3", "-m", "careops.privacy.service", "rotate"], timeout=60, check=False)
        last = out.output.strip().splitlines()[-1] if out.output.strip() else ""
        try:
            return json.loads(last)
        except ValueError:
            return {"error": last[:300] or f"exit {out.exit_code}"}

    def rotate_key(self) -> dict[str, Any]:
        """Add a key and re-seal every row with it."""
        self.add_key()
        return self.reseal()

    def retire_old_keys(self) -> None:
        """Drop every key but the current one from the mounted keyring."""
        self.keyring = self.keyring.without(*(k for k in self.keyring.keys if k != self.keyring.current))
        self._write_keyring()

    def key_exposed(self, needles: list[str] | tuple[str, ...] = ()) -> list[str]:
        """Where a key of the keyring -- or any of ``needles`` (MRNs) -- can be read without the secret:
        the container's configuration (``docker inspect``) or any layer of the service's image."""
        assert self.container is not None
        encoded = [base64.b64encode(k).decode() for k in self.keyring.keys.values()]
        where = []
        env = "\n".join(self.container.attrs.get("Config", {}).get("Env") or []).encode()
        image = b"".join(self.lab.client.images.get(PATIENT_DATA_IMAGE).save())
        for place, data in (("the container's environment (docker inspect shows it)", env),
                            (f"the image {PATIENT_DATA_IMAGE}", image)):
            if cleartext_found(data, encoded):
                where.append(place)
            found = cleartext_found(data, list(needles))
            if found:
                where.append(f"{place}: {len(found)} of the patients' identifiers")
        return where


def expired_and_wrong_host(ca: CourseCA) -> dict[str, Issued]:
    """Two certificates a careful sender refuses: one that expired yesterday, one for another host."""
    now = datetime.now(timezone.utc)
    return {"expired": ca.issue(SERVICE, hosts=HOSTS, not_before=now - timedelta(days=30),
                                not_after=now - timedelta(days=1)),
            "wrong host": ca.issue("adt-elsewhere", hosts=("adt-elsewhere.example.org",))}
