"""Scoped bearer tokens and the access decision for one FHIR read (HIPAA 164.312(a) access control, (d) authentication).

Why: a FHIR server that answers anyone who can reach it leaks every record at once. SMART on FHIR gives each token
*scopes* -- ``patient/Patient.read`` (only the patient in the token's context), ``user/Encounter.read`` (what the
user may see), ``system/*.read`` (a back-end service) -- and the server checks each request against them. Our
hospital adds one rule of its own: a ward role sees only its ward's patients. Anything not granted is refused
(deny by default). Break-glass lets a clinician read outside their ward in an emergency: it works, needs a reason,
and is always audited for review.

A token here is a JWT signed with HMAC-SHA256 (``HS256``) by the course's authorisation server; the FHIR service
holds the same key from a mounted secret. Standard library only, so the lab's service image can use it as is.

Status codes follow HTTP: 401 when the request has no valid token (missing, forged, expired), 403 when the token is
valid but does not allow this read, 200 when it does.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from careops.errors import CareOpsError

_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.(read|write|\*)$")
#: The header a clinician sets, with a reason, to read outside their ward in an emergency.
BREAK_GLASS_HEADER = "X-Break-Glass"


class TokenError(CareOpsError):
    """A token is missing, malformed, forged or expired (HTTP 401), or a scope is not a scope."""


@dataclass(frozen=True)
class Scope:
    """One SMART-style scope: ``context/Resource.action``."""

    context: str
    resource: str
    action: str

    @classmethod
    def parse(cls, text: str) -> Scope:
        m = _SCOPE.match(text.strip())
        if not m:
            raise TokenError(f"{text!r} is not a scope, expected context/Resource.action such as "
                             "patient/Patient.read or user/Encounter.read",
                             fix="context: patient, user or system; Resource: a FHIR type; action: read or write")
        return cls(*m.groups())

    @property
    def wildcard(self) -> bool:
        return self.resource == "*" or self.action == "*"

    def allows(self, resource: str, action: str) -> bool:
        return self.resource in ("*", resource) and self.action in ("*", action)

    def __str__(self) -> str:
        return f"{self.context}/{self.resource}.{self.action}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Claims:
    """What a verified token says: who, their role and ward, their scopes, the patient in context."""

    sub: str
    role: str
    scopes: tuple[Scope, ...]
    ward: str = ""
    patient: str = ""
    exp: float = 0.0
    jti: str = ""

    def allows(self, resource: str, action: str) -> list[Scope]:
        return [s for s in self.scopes if s.allows(resource, action)]


def sign(claims: Mapping[str, Any], key: bytes) -> str:
    """A compact JWS (HS256) over ``claims``."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(dict(claims), separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(key, f"{header}.{body}".encode("ascii"), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(mac)}"


def verify(token: str, key: bytes, *, now: float | None = None) -> Claims:
    """The claims of a token this key signed and that has not expired; TokenError otherwise."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise TokenError("the bearer token is not a JWT (three dot-separated parts)",
                         fix="send 'Authorization: Bearer <token>' with a token from the course's issuer")
    header, body, mac = parts
    try:
        head = json.loads(_unb64(header))
        want = hmac.new(key, f"{header}.{body}".encode("ascii"), hashlib.sha256).digest()
        good = hmac.compare_digest(want, _unb64(mac))
    except (ValueError, TypeError):
        raise TokenError("the bearer token cannot be decoded", fix="ask the issuer for a new token") from None
    if head.get("alg") != "HS256" or not good:
        raise TokenError("the bearer token's signature does not check (forged, or signed with another key)",
                         fix="ask the course's issuer for a token; never accept alg 'none'")
    data = json.loads(_unb64(body))
    exp = float(data.get("exp", 0))
    if exp <= (time.time() if now is None else now):
        raise TokenError("the bearer token has expired", fix="ask the issuer for a new token")
    return Claims(sub=str(data.get("sub", "")), role=str(data.get("role", "")),
                  scopes=tuple(Scope.parse(s) for s in str(data.get("scope", "")).split()),
                  ward=str(data.get("ward", "")), patient=str(data.get("patient", "")), exp=exp,
                  jti=str(data.get("jti", "")))


@dataclass(frozen=True)
class Role:
    """A role of the access policy: its scopes, and whether it sees only its own ward."""

    name: str
    scopes: tuple[Scope, ...]
    own_ward_only: bool = True
    break_glass: bool = False


@dataclass
class AccessPolicy:
    """Roles and their scopes (the learner's policy, as data). Deny by default: a role not named gets nothing.

    YAML form::

        roles:
          ward-nurse: {scopes: [user/Patient.read, user/Encounter.read], wards: own, break_glass: true}
          back-office: {scopes: [system/Patient.read], wards: all}
    """

    roles: dict[str, Role] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> AccessPolicy:
        if not isinstance(data, Mapping) or not isinstance(data.get("roles"), Mapping):
            raise TokenError("the access policy has no 'roles:' mapping",
                             fix="write roles: {ward-nurse: {scopes: [user/Patient.read], wards: own}}")
        roles = {}
        for name, spec in data["roles"].items():
            spec = spec or {}
            wards = str(spec.get("wards", "own"))
            if wards not in ("own", "all"):
                raise TokenError(f"role {name!r} has wards: {wards!r}, expected 'own' or 'all'",
                                 fix="wards: own limits the role to the ward in its token")
            roles[str(name)] = Role(str(name), tuple(Scope.parse(s) for s in spec.get("scopes") or []),
                                    own_ward_only=wards == "own", break_glass=bool(spec.get("break_glass", False)))
        return cls(roles)

    @classmethod
    def from_yaml(cls, text: str) -> AccessPolicy:
        import yaml

        return cls.from_data(yaml.safe_load(text) or {})

    def wildcards(self) -> list[str]:
        """Every ``role: scope`` with a wildcard (``*``): broader than any one job needs."""
        return [f"{r.name}: {s}" for r in self.roles.values() for s in r.scopes if s.wildcard]


class Issuer:
    """The course's authorisation server: signs tokens whose scopes come from the access policy's role."""

    def __init__(self, key: bytes, policy: AccessPolicy, *, ttl: float = 900.0) -> None:
        self.key, self.policy, self.ttl = key, policy, ttl

    def token(self, sub: str, role: str, *, ward: str = "", patient: str = "", ttl: float | None = None,
              scopes: list[str] | None = None) -> str:
        """A token for ``sub`` in ``role`` (its scopes from the policy; an unknown role gets none)."""
        granted = scopes if scopes is not None else [str(s) for s in getattr(self.policy.roles.get(role), "scopes", ())]
        now = time.time()
        return sign({"sub": sub, "role": role, "ward": ward, "patient": patient, "scope": " ".join(granted),
                     "iat": int(now), "exp": now + (self.ttl if ttl is None else ttl),
                     "jti": secrets.token_hex(8)}, self.key)


@dataclass(frozen=True)
class Decision:
    """The answer to one request: HTTP status, why, and whether break-glass opened it."""

    status: int
    reason: str
    sub: str = ""
    role: str = ""
    break_glass: bool = False

    @property
    def allowed(self) -> bool:
        return self.status == 200


def authorize(policy: AccessPolicy, key: bytes, authorization: str | None, *, resource: str, action: str = "read",
              patient_id: str = "", patient_ward: str = "", break_glass: str = "",
              now: float | None = None) -> Decision:
    """Decide one request on ``resource`` (a FHIR type) about patient ``patient_id`` on ``patient_ward``.

    ``authorization`` is the request's Authorization header; ``break_glass`` its break-glass reason (may be empty).
    """
    if not authorization or not authorization.startswith("Bearer "):
        return Decision(401, "no bearer token")
    try:
        claims = verify(authorization.removeprefix("Bearer ").strip(), key, now=now)
    except TokenError as exc:
        return Decision(401, exc.message)
    who = {"sub": claims.sub, "role": claims.role}
    role = policy.roles.get(claims.role)
    if role is None:
        return Decision(403, f"role {claims.role!r} is not in the access policy (deny by default)", **who)
    granted = [s for s in claims.allows(resource, action) if s in role.scopes]
    if not granted:
        return Decision(403, f"no scope allows {resource}.{action}", **who)
    if all(s.context == "patient" for s in granted) and claims.patient != patient_id:
        return Decision(403, "a patient/ scope allows only the patient in the token's context", **who)
    if role.own_ward_only and all(s.context == "user" for s in granted) and claims.ward != patient_ward:
        if role.break_glass and break_glass.strip():
            return Decision(200, f"break-glass: {break_glass.strip()[:200]}", break_glass=True, **who)
        return Decision(403, "the patient is not on the token's ward", **who)
    return Decision(200, "allowed by " + ", ".join(map(str, granted)), **who)
