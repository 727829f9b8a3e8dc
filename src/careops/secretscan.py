"""Find secrets in text with detect-secrets, the well-known offline scanner.

Why: a password baked into an image layer is readable by anyone who can pull
the image, long after the Dockerfile line is deleted. The same scanner runs on
the Dockerfile text (static) and on every file the learner's layers add (live).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from detect_secrets.core.secrets_collection import SecretsCollection
from detect_secrets.settings import default_settings

#: Secret types whose false-positive rate on ordinary code is too high to fail a learner for.
NOISY_TYPES = frozenset({"Hex High Entropy String"})


@dataclass(frozen=True)
class SecretFinding:
    """One suspected secret: where, and what kind (never the value itself)."""

    where: str
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {self.kind}"


def scan_texts(texts: dict[str, str | bytes]) -> list[SecretFinding]:
    """Scan several named texts at once (names keep their file extension, which the plugins use)."""
    if not texts:
        return []
    with tempfile.TemporaryDirectory(prefix="careops-secrets-") as tmp:
        paths: dict[str, str] = {}
        for i, (name, content) in enumerate(texts.items()):
            safe = Path(name).name or "file"
            target = Path(tmp) / str(i)
            target.mkdir()
            path = target / safe
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "replace"))
            paths[str(path)] = name
        with default_settings():
            found = SecretsCollection()
            for p in paths:
                found.scan_file(p)
        out = []
        for filename, secret in found:
            if secret.type in NOISY_TYPES:
                continue
            out.append(SecretFinding(paths.get(filename, filename), int(secret.line_number or 0), secret.type))
    return sorted(set(out), key=lambda f: (f.where, f.line, f.kind))


def scan_text(text: str, name: str = "Dockerfile") -> list[SecretFinding]:
    """Suspected secrets in one text."""
    return scan_texts({name: text})
