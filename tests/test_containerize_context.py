"""careops.containerize.context: the service folder with its decoys, and Docker's .dockerignore rules applied."""
from __future__ import annotations

from pathlib import Path

from careops.containerize.context import context_entries, write_service_context
from careops.phi import HIGH_PRECISION_KINDS, scan_text

IGNORE = (Path(__file__).resolve().parents[1] / "grading/references/containerize/.dockerignore").read_text()


def test_the_context_holds_the_v2_service_and_realistic_decoys(tmp_path: Path) -> None:
    root = write_service_context(tmp_path, dockerfile="FROM careops/base:bookworm\n", dockerignore=None)
    assert "ADT service v2" in (root / "adt_service.py").read_text()
    assert (root / "secrets/adt-admin.env").read_text().startswith("ADT_ADMIN_PASSWORD=")
    extract = (root / "test-data/admissions-extract.hl7").read_text()
    assert [f.kind for f in scan_text(extract, kinds=HIGH_PRECISION_KINDS) if not f.synthetic]  # real-looking
    # a new random password per build: nothing secret is tracked in the repository
    other = write_service_context(tmp_path / "b", dockerfile="FROM x\n", dockerignore=None)
    assert (other / "secrets/adt-admin.env").read_text() != (root / "secrets/adt-admin.env").read_text()


def test_dockerignore_is_applied_like_docker(tmp_path: Path) -> None:
    root = write_service_context(tmp_path, dockerfile="FROM x\n", dockerignore=IGNORE)
    sent = set(context_entries(root, IGNORE))
    assert {"adt_service.py", "Dockerfile", "README.md", ".dockerignore"} <= sent
    assert not {p for p in sent if p.startswith(("secrets/", "test-data/", "data/", ".git/", "__pycache__/"))}
    everything = set(context_entries(root, None))
    assert "secrets/adt-admin.env" in everything and "test-data/admissions-extract.hl7" in everything
    # even an ignored Dockerfile is sent (Docker does the same)
    assert "Dockerfile" in context_entries(root, "Dockerfile\n")
