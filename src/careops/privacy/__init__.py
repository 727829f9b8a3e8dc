"""Module 6: patient data protected in transit, at rest and by role.

* :mod:`careops.privacy.pki` -- a course CA, server and client certificates, TLS contexts and handshake probes;
* :mod:`careops.privacy.tokens` -- SMART-style scoped bearer tokens, the access policy, deny by default,
  break-glass;
* :mod:`careops.privacy.atrest` -- AES-GCM field encryption with a keyring from a mounted secret, key rotation;
* :mod:`careops.privacy.signoff` -- separation of duties at the approval gate (a Rego rule through regopy) and
  electronic signatures in the audit log;
* :mod:`careops.privacy.service` -- the lab's patient-data service built from these parts;
* :mod:`careops.privacy.stack` -- that service in a lab, the passive capture and the live probes.

The course teaches practices; it does not certify compliance with HIPAA, GDPR or 21 CFR Part 11.
"""
from __future__ import annotations

from careops.privacy.atrest import (
           AtRestError,
           FieldCipher,
           Keyring,
           PatientStore,
           rotate,
)
from careops.privacy.pki import CourseCA, Handshake, Issued, PkiError, handshake
from careops.privacy.signoff import Change, Gate, Signature, SignoffError
from careops.privacy.tokens import (
           AccessPolicy,
           Decision,
           Issuer,
           Scope,
           TokenError,
           authorize,
)

__all__ = [
           "AccessPolicy",
           "AtRestError",
           "Change",
           "CourseCA",
           "Decision",
           "FieldCipher",
           "Gate",
           "Handshake",
           "Issued",
           "Issuer",
           "Keyring",
           "PatientStore",
           "PkiError",
           "Scope",
           "Signature",
           "SignoffError",
           "TokenError",
           "authorize",
           "handshake",
           "rotate",
]
