"""careops.audit: the hash chain notices every kind of tampering, by line."""
from __future__ import annotations

import json
import multiprocessing
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from careops.audit import (
    GENESIS,
    KEY_ENV,
    AuditError,
    AuditLog,
    canonical_json,
    entry_hash,
    entry_mac,
)
from careops.errors import CareOpsError

KEY = b"test-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def fixed_clock():
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    ticks = iter(range(10_000))
    return lambda: start + timedelta(seconds=next(ticks))


def make_log(path: Path, n: int = 5, key: bytes | None = KEY) -> AuditLog:
    log = AuditLog(path, key=key, clock=fixed_clock())
    for i in range(1, n + 1):
        log.append(actor=f"user{i}", role="release-manager", action="deployment.approve",
                   resource=f"pipeline/{i}", outcome="success", purpose="release",
                   source="ci-runner-1", details={"build": i})
    return log


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def test_append_and_verify_ok(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl")
    entries = list(log.entries())
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev == GENESIS
    assert entries[1].prev == entries[0].hash
    assert entries[0].at == "2026-01-02T03:04:05.000000Z"
    assert entries[2].details == {"build": 3}
    report = log.verify()
    assert report.ok and bool(report)
    assert report.entries == 5 and report.problems == []
    assert log.head() == entries[-1].hash == report.head
    assert "OK, 5 entries" in str(report)


def test_line_format_is_canonical_and_sealed(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl", n=1)
    line = read_lines(log.path)[0]
    data = json.loads(line)
    assert line == canonical_json(data).decode("utf-8") + "\n"
    assert data["hash"] == entry_hash(data)
    assert data["mac"] == entry_mac(KEY, data["hash"])


def test_edited_field_detected(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl")
    lines = read_lines(log.path)
    lines[2] = lines[2].replace('"outcome":"success"', '"outcome":"failure"')
    write_lines(log.path, lines)
    report = log.verify()
    assert not report.ok
    assert report.problems == ["line 3: hash does not match its content (edited)"]


def test_deleted_middle_line_detected(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl")
    lines = read_lines(log.path)
    del lines[2]
    write_lines(log.path, lines)
    report = log.verify()
    assert not report.ok and report.entries == 4
    assert "line 3: seq 4, expected 3" in report.problems
    assert "line 3: prev does not match line 2 (removed, inserted or reordered)" in report.problems
    assert len(report.problems) == 2


def test_swapped_lines_detected(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl")
    lines = read_lines(log.path)
    lines[1], lines[2] = lines[2], lines[1]
    write_lines(log.path, lines)
    problems = log.verify().problems
    assert "line 2: seq 3, expected 2" in problems
    assert "line 2: prev does not match line 1 (removed, inserted or reordered)" in problems
    assert "line 3: prev does not match line 2 (removed, inserted or reordered)" in problems
    assert "line 4: prev does not match line 3 (removed, inserted or reordered)" in problems
    assert not any("hash does not match" in p or "MAC" in p for p in problems)


def test_inserted_forged_line_without_key_fails_mac(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl")
    lines = read_lines(log.path)
    before = json.loads(lines[1])
    forged = dict(before, seq=3, prev=before["hash"], actor="mallory",
                  action="deployment.approve", resource="pipeline/666")
    forged["hash"] = entry_hash(forged)  # attacker can hash, but has no key
    forged["mac"] = entry_mac(b"guessed-key", forged["hash"])
    lines.insert(2, canonical_json(forged).decode("utf-8") + "\n")
    write_lines(log.path, lines)
    problems = log.verify().problems
    assert "line 3: MAC does not match (forged with another key)" in problems
    assert not any(p.startswith("line 3: prev") or p.startswith("line 3: hash") for p in problems)
    assert "line 4: prev does not match line 3 (removed, inserted or reordered)" in problems


def test_edit_with_recomputed_hash_fails_mac(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl")
    lines = read_lines(log.path)
    data = json.loads(lines[1])
    data["outcome"] = "failure"
    data["hash"] = entry_hash(data)
    lines[1] = canonical_json(data).decode("utf-8") + "\n"
    write_lines(log.path, lines)
    problems = log.verify().problems
    assert "line 2: MAC does not match (forged with another key)" in problems
    assert "line 3: prev does not match line 2 (removed, inserted or reordered)" in problems


def test_truncated_tail_detected_with_expected_head(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl")
    head = log.head()
    write_lines(log.path, read_lines(log.path)[:3])
    assert log.verify().ok  # a shorter chain is still a valid chain ...
    report = log.verify(expected_head=head)  # ... the stored head catches it
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"end: expected head {head[:16]}")
    assert "truncated" in report.problems[0]
    report = log.verify(expected_entries=5)
    assert report.problems == ["end: 3 entries, expected at least 5 (end truncated)"]


def test_expected_head_still_ok_after_growth(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl", n=2)
    head = log.head()
    log.append(actor="ci", role="service", action="pipeline.run",
               resource="pipeline/9", outcome="success")
    assert log.verify(expected_head=head, expected_entries=2).ok


def test_garbage_line_detected(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl")
    lines = read_lines(log.path)
    lines.insert(4, "}}not json at all\n")
    write_lines(log.path, lines)
    report = log.verify()
    assert report.problems == ["line 5: not valid JSON"]
    assert report.entries == 5
    with pytest.raises(AuditError, match="line 5"):
        list(log.entries())


def test_append_refuses_after_broken_tail(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl", n=2)
    with open(log.path, "a", encoding="utf-8") as fh:
        fh.write('{"seq":3,"half')
    with pytest.raises(AuditError) as info:
        log.append(actor="ci", role="service", action="x", resource="r", outcome="ok")
    assert "incomplete line" in str(info.value) and info.value.fix
    assert "line 3: not valid JSON" in log.verify().problems


def test_append_only_never_rewrites_earlier_lines(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl", n=3)
    before = log.path.read_bytes()
    log.append(actor="ci", role="service", action="pipeline.run",
               resource="pipeline/4", outcome="success")
    assert log.path.read_bytes().startswith(before)


def _worker(path: str, worker: int, count: int) -> None:
    log = AuditLog(path)  # key file: all workers must agree on one key
    for i in range(count):
        log.append(actor=f"worker{worker}", role="service", action="pipeline.run",
                   resource=f"pipeline/{worker}-{i}", outcome="success")


def test_concurrent_writers(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    # spawn, not fork: a fork of a process with threads (an xdist worker's) can inherit a lock held by one of them
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(path), w, 50)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    log = AuditLog(path)
    report = log.verify()
    assert report.ok, str(report)
    assert report.entries == 200
    assert [e.seq for e in log.entries()] == list(range(1, 201))


def test_key_file_created_0600_and_reused(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl", n=2, key=None)
    key_path = tmp_path / "audit.jsonl.key"
    assert log.key_path == key_path and key_path.exists()
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert AuditLog(tmp_path / "audit.jsonl").verify().ok


def test_key_file_readable_by_others_refused(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl", n=1, key=None)
    os.chmod(log.key_path, 0o644)
    with pytest.raises(AuditError) as info:
        log.verify()
    assert "expected 0o600" in str(info.value) and "chmod 600" in info.value.fix


def test_env_key_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "from-the-environment")
    log = make_log(tmp_path / "audit.jsonl", n=2, key=None)
    assert not log.key_path.exists()
    assert AuditLog(log.path, key=b"from-the-environment").verify().ok


def test_other_key_fails_with_mac_problems(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl", n=3)
    report = AuditLog(log.path, key=b"another-key").verify()
    assert not report.ok
    assert report.problems == [
        f"line {n}: MAC does not match (forged with another key)" for n in (1, 2, 3)
    ]


def test_bad_input_rejected_with_fix(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl", key=KEY)
    with pytest.raises(AuditError, match="not JSON-serialisable") as info:
        log.append(actor="a", role="r", action="x", resource="pipeline/1", outcome="ok",
                   details={"when": datetime.now(timezone.utc)})
    assert isinstance(info.value, CareOpsError) and info.value.fix
    with pytest.raises(AuditError, match="actor"):
        log.append(actor=" ", role="r", action="x", resource="pipeline/1", outcome="ok")
    with pytest.raises(AuditError, match="naive"):
        AuditLog(log.path, key=KEY, clock=datetime.now).append(
            actor="a", role="r", action="x", resource="pipeline/1", outcome="ok")
    assert not log.path.exists()


def test_empty_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "none.jsonl")
    assert log.head() == GENESIS
    report = log.verify()
    assert report.ok and report.entries == 0
    assert not log.key_path.exists()  # verifying must not invent a key


def test_views(tmp_path: Path) -> None:
    log = make_log(tmp_path / "audit.jsonl", n=25)
    frame = log.to_dataframe()
    assert len(frame) == 25 and list(frame["seq"]) == list(range(1, 26))
    assert str(frame["at"].dt.tz) == "UTC"
    page = log._repr_html_()
    assert page.count("<tr><td") == 20 and "pipeline/25" in page and "OK" in page
    lines = read_lines(log.path)
    lines[0] = lines[0].replace("user1", "<b>eve</b>")
    write_lines(log.path, lines)
    report = log.verify()
    assert "FAILED" in report._repr_html_() and "line 1: hash" in report._repr_html_()
    assert "TAMPERED" in str(report) and "line 1: hash does not match" in str(report)
    assert "<b>eve</b>" not in log._repr_html_()  # escaped
