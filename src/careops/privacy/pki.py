"""A course certificate authority and the TLS contexts built on it (HIPAA 164.312(e): transmission security).

Why a CA of our own: an interface engine and a FHIR client must know *whom* they talk to, not only that the line
is encrypted. A hospital runs (or buys) a CA; the lab makes a small one with ``cryptography`` so every certificate
in it is real: a server certificate names its hosts (subjectAltName), has a validity window and is signed by the
CA, and a sender may present a client certificate of its own (mutual TLS). ``ssl`` from the standard library then
refuses what does not check out: an unknown CA, a wrong host name, an expired certificate.

Keys are EC P-256 (quick to make, accepted by every TLS 1.2+ stack). Nothing here is a production PKI: no
revocation, no hardware key storage, short lifetimes on purpose.
"""
from __future__ import annotations

import ipaddress
import socket
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from careops.errors import CareOpsError
from careops.report import theme

ORGANISATION = "Riverside General (course)"


class PkiError(CareOpsError):
    """A certificate could not be made, or a TLS context could not be built from it."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM; ``hosts`` are its subjectAltNames."""

    common_name: str
    cert_pem: bytes
    key_pem: bytes
    hosts: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    client: bool = False

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def expired(self, at: datetime | None = None) -> bool:
        return (at or datetime.now(timezone.utc)) >= self.not_after

    def write(self, folder: str | Path, stem: str) -> tuple[Path, Path]:
        """Write ``<stem>.crt`` and ``<stem>.key`` (mode 0600) into ``folder``; returns both paths."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        crt, key = out / f"{stem}.crt", out / f"{stem}.key"
        crt.write_bytes(self.cert_pem)
        key.touch(mode=0o600)
        key.chmod(0o600)
        key.write_bytes(self.key_pem)
        return crt, key

    def __str__(self) -> str:
        kind = "client" if self.client else "server"
        return (f"{kind} certificate CN={self.common_name} for {', '.join(self.hosts) or '(no host)'}, valid "
                f"{self.not_before:%Y-%m-%d %H:%M} .. {self.not_after:%Y-%m-%d %H:%M} UTC")

    def _repr_html_(self) -> str:
        ok = not self.expired()
        status = theme.verdict(ok, "valid", "expired")
        return theme.card(theme.join(["Certificate ", theme.code(self.common_name)]), theme.esc(str(self)),
                          status=status, ok=ok)


class CourseCA:
    """A self-signed CA that issues server and client certificates for one lab."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self._key = key
        self.certificate = cert

    @classmethod
    def create(cls, name: str = "Riverside General course CA", *, days: int = 30) -> CourseCA:
        """A new CA, valid from a minute ago for ``days`` days."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=days))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, *, hosts: tuple[str, ...] | list[str] = (), client: bool = False,
              days: float = 7, not_before: datetime | None = None, not_after: datetime | None = None) -> Issued:
        """A certificate signed by this CA.

        A server certificate needs ``hosts`` (the names clients connect to: its subjectAltNames); a client
        certificate (``client=True``) names the sender. ``not_before``/``not_after`` make a certificate that is
        not valid yet or already expired, to see a client refuse it.
        """
        if not client and not hosts:
            raise PkiError(f"a server certificate for {common_name!r} names no host, expected at least one",
                           fix="pass hosts=['mllp', 'localhost', '127.0.0.1']: the names clients connect to")
        key = ec.generate_private_key(ec.SECP256R1())
        start = not_before or datetime.now(timezone.utc) - timedelta(minutes=1)
        end = not_after or start + timedelta(days=days)
        if end <= start:
            raise PkiError(f"certificate {common_name!r} would end ({end:%Y-%m-%d %H:%M}) before it starts "
                           f"({start:%Y-%m-%d %H:%M})", fix="give not_after a time after not_before")
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (x509.CertificateBuilder().subject_name(_name(common_name))
                   .issuer_name(self.certificate.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if hosts:
            builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return Issued(common_name, cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), tuple(hosts),
                      start, end, client)

    def __repr__(self) -> str:
        return f"CourseCA({self.certificate.subject.rfc4514_string()!r})"


def _load_chain(ctx: ssl.SSLContext, issued: Issued) -> None:
    """ssl loads a chain from files only: write both PEMs to a private temp folder for the call."""
    with tempfile.TemporaryDirectory(prefix="careops-tls-") as tmp:
        crt, key = issued.write(tmp, "cert")
        ctx.load_cert_chain(crt, key)


def server_context(server: Issued, *, client_ca_pem: bytes | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context with ``server``'s chain; with ``client_ca_pem`` every client must present a
    certificate from that CA (mutual TLS)."""
    if server.client:
        raise PkiError(f"{server.common_name!r} is a client certificate, expected a server certificate",
                       fix="issue one with ca.issue(name, hosts=[...]) (client=False)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_chain(ctx, server)
    if client_ca_pem is not None:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=client_ca_pem.decode("ascii"))
    return ctx


def client_context(ca_pem: bytes | None, *, client: Issued | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ client context that trusts only ``ca_pem`` (None: the system's CAs, which do not know the
    course CA) and checks the host name; ``client`` is the sender's own certificate for mutual TLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_pem is None:
        ctx.load_default_certs()
    else:
        ctx.load_verify_locations(cadata=ca_pem.decode("ascii"))
    if client is not None:
        _load_chain(ctx, client)
    return ctx


@dataclass(frozen=True)
class Handshake:
    """What one TLS handshake attempt gave: ``ok``, the protocol, or why it was refused."""

    ok: bool
    detail: str
    version: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return f"TLS {'accepted' if self.ok else 'refused'}: {self.detail}"


def handshake(host: str, port: int, *, ca_pem: bytes | None, server_hostname: str,
              client: Issued | None = None, timeout: float = 5.0) -> Handshake:
    """Connect, shake hands as a client that trusts ``ca_pem`` and expects ``server_hostname``, and close.

    Returns the verdict instead of raising: a refusal is the answer a check wants to see for an untrusted CA, a
    wrong host or an expired certificate. A server that asks for a client certificate may refuse only at the
    first read (TLS 1.3), so the attempt reads once.
    """
    ctx = client_context(ca_pem, client=client)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            version = tls.version() or ""
            tls.settimeout(0.5)
            try:
                if tls.recv(1) == b"":
                    return Handshake(False, "the server closed the connection after the handshake", version)
            except TimeoutError:
                pass  # nothing to read: the server kept the connection, as it should
            return Handshake(True, f"{version} with {server_hostname}", version)
    except ssl.SSLCertVerificationError as exc:
        return Handshake(False, f"certificate not accepted: {exc.verify_message or exc.reason}")
    except ssl.SSLError as exc:
        return Handshake(False, f"TLS error: {exc.reason or exc}")
    except OSError as exc:
        return Handshake(False, f"connection failed: {exc}")
