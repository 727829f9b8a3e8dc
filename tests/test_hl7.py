"""Unit tests for careops.hl7: MLLP framing, decoder, ACK parsing, client errors."""
from __future__ import annotations

import socket
import threading

import hl7
import pytest

from careops.errors import CareOpsError
from careops.hl7 import (
    Ack,
    AckParseError,
    MllpClient,
    MllpConnectionError,
    MllpDecoder,
    MllpFrameError,
    MllpTimeout,
    build_adt,
    frame,
    parse_ack,
)

PATIENT = dict(mrn="SYN-0001", family="Testperson", given="Alex", birth_date="19800101", sex="F")


def test_frame_wraps_str_and_bytes() -> None:
    assert frame("MSH|x") == b"\x0bMSH|x\x1c\x0d"
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_decoder_joins_a_frame_split_byte_by_byte() -> None:
    dec = MllpDecoder()
    out: list[bytes] = []
    for b in frame("MSH|split"):
        out.extend(dec.feed(bytes([b])))
    assert out == [b"MSH|split"]
    assert dec.pending == 0


def test_decoder_splits_concatenated_frames_and_skips_garbage() -> None:
    dec = MllpDecoder()
    data = b"noise" + frame("one") + frame("two") + frame("three")[:4]
    assert list(dec.feed(data)) == [b"one", b"two"]
    assert dec.discarded == 5
    assert list(dec.feed(frame("three")[4:])) == [b"three"]


def test_decoder_end_block_split_across_feeds() -> None:
    dec = MllpDecoder()
    assert list(dec.feed(b"\x0babc\x1c")) == []
    assert list(dec.feed(b"\x0d")) == [b"abc"]


def test_decoder_rejects_oversize_then_recovers() -> None:
    dec = MllpDecoder(max_message=10)
    with pytest.raises(MllpFrameError, match="too large: limit 10 bytes"):
        list(dec.feed(b"\x0b" + b"x" * 50))
    # rest of the oversized frame is skipped, the next frame comes through
    assert list(dec.feed(b"y" * 20 + b"\x1c\x0d" + frame("ok"))) == [b"ok"]


def test_decoder_rejects_oversize_complete_frame() -> None:
    dec = MllpDecoder(max_message=3)
    with pytest.raises(MllpFrameError):
        list(dec.feed(frame("toolong")))
    assert list(dec.feed(frame("ok"))) == [b"ok"]


@pytest.mark.parametrize("event", ["A01", "A03", "A08"])
def test_build_adt_is_parsed_by_hl7(event: str) -> None:
    msg = build_adt(event, control_id=f"CTL-{event}", ssn="999-01-0001", **PATIENT)
    assert "\n" not in msg
    parsed = hl7.parse(msg)
    assert [str(s[0]) for s in parsed] == ["MSH", "EVN", "PID", "PV1"]
    assert str(parsed.segment("MSH")[9][0][1]) == event
    assert str(parsed.segment("MSH")[10]) == f"CTL-{event}"
    assert str(parsed.segment("PID")[3][0][0]) == "SYN-0001"
    assert str(parsed.segment("PV1")[19]) == "V-SYN-0001"


def test_build_adt_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="expected one of A01, A03, A08"):
        build_adt("A99", control_id="x", **PATIENT)
    with pytest.raises(ValueError, match="synthetic SSN"):
        build_adt("A01", control_id="x", ssn="900-00-0000", **PATIENT)


def test_parse_ack_reads_msa_and_err() -> None:
    ok = parse_ack("MSH|^~\\&|A|B|C|D|20260101||ACK|1|P|2.5\rMSA|AA|CTL1")
    assert ok == Ack("AA", "CTL1", "", ok.raw) and ok.ok
    bad = parse_ack("MSH|^~\\&|A|B|C|D|20260101||ACK|1|P|2.5\rMSA|AE|CTL2|\r"
                    "ERR|||101^Required field missing^HL70357|E||||PID-3 missing")
    assert not bad.ok and bad.text == "PID-3 missing"
    assert "AE" in bad._repr_html_() and "CTL2" in bad._repr_html_()
    with pytest.raises(AckParseError, match="no MSA segment"):
        parse_ack("MSH|^~\\&|A")
    with pytest.raises(AckParseError, match="expected it to start with MSH"):
        parse_ack("HTTP/1.1 200 OK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_client_connection_refused_is_clear() -> None:
    port = _free_port()
    with pytest.raises(MllpConnectionError, match="refused") as info:
        with MllpClient("127.0.0.1", port, timeout=1):
            pass
    assert isinstance(info.value, CareOpsError) and "start the HL7 service" in str(info.value)


def _server(behaviour: str) -> tuple[int, threading.Event]:
    """A one-connection fake receiver: 'silent', 'junk' or 'ack' (echo AA)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    done = threading.Event()

    def run() -> None:
        conn, _ = srv.accept()
        dec = MllpDecoder()
        with conn:
            while not done.is_set():
                data = conn.recv(4096)
                if not data:
                    break
                for msg in dec.feed(data):
                    ctl = msg.decode().split("\r")[0].split("|")[9]
                    if behaviour == "ack":
                        conn.sendall(frame(f"MSH|^~\\&|R|F|S|F|20260101||ACK|A{ctl}|P|2.5\rMSA|AA|{ctl}"))
                    elif behaviour == "junk":
                        conn.sendall(frame("hello"))
            done.wait(3)
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1], done


def test_client_timeout_is_clear() -> None:
    port, done = _server("silent")
    try:
        with MllpClient("127.0.0.1", port, timeout=0.3) as client:
            with pytest.raises(MllpTimeout, match=r"no ACK from 127\.0\.0\.1:\d+ within 0\.3s"):
                client.send(build_adt("A01", control_id="T1", **PATIENT))
    finally:
        done.set()


def test_client_malformed_reply_is_clear() -> None:
    port, done = _server("junk")
    try:
        with MllpClient("127.0.0.1", port, timeout=2) as client:
            with pytest.raises(AckParseError, match="expected it to start with MSH, got 'hello'"):
                client.send(build_adt("A01", control_id="J1", **PATIENT))
    finally:
        done.set()


def test_client_sends_many_on_one_connection() -> None:
    port, done = _server("ack")
    try:
        with MllpClient("127.0.0.1", port, timeout=2) as client:
            acks = [client.send(build_adt("A08", control_id=f"M{i}", **PATIENT)) for i in range(3)]
        assert [a.control_id for a in acks] == ["M0", "M1", "M2"] and all(a.ok for a in acks)
    finally:
        done.set()
