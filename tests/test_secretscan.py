"""careops.secretscan: detect-secrets, for real, both ways."""
from __future__ import annotations

from careops.secretscan import scan_text, scan_texts


def test_finds_secrets_by_keyword_and_by_known_format() -> None:
    found = scan_texts({"adt-admin.env": "ADT_ADMIN_PASSWORD=Zq8vR2kLmN4pX7sT1wY9aa\n",
                        "Dockerfile": "FROM x\nARG GH=ghp_abcdefghijklmnopqrstuvwxyz0123456789\n"})
    assert {(f.where, f.line, f.kind) for f in found} >= {("adt-admin.env", 1, "Secret Keyword"),
                                                          ("Dockerfile", 2, "GitHub Token")}
    assert "Zq8v" not in " ".join(str(f) for f in found)  # the value is never echoed


def test_ordinary_dockerfile_and_code_are_clean() -> None:
    assert scan_text("FROM careops/base:bookworm\nENV ADT_DB=/data/adt.db ADT_LOG=-\nUSER 10001\n") == []
    assert scan_texts({}) == []
