"""MLLP framing, a streaming decoder and a small blocking client.

MLLP wraps each HL7 v2 message as 0x0B + message + 0x1C 0x0D on a TCP stream.
TCP has no message boundaries, so a receiver must buffer: one ``recv`` can
hold half a frame or three frames. ``MllpDecoder`` does that buffering once,
correctly, and refuses frames larger than a bound so a bad sender cannot
exhaust memory.
"""
from __future__ import annotations

import socket
from collections.abc import Iterator
from types import TracebackType

from careops.errors import CareOpsError
from careops.hl7.messages import Ack, parse_ack

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
DEFAULT_MAX_MESSAGE = 1024 * 1024  # 1 MiB, the same bound as the legacy service


class Hl7Error(CareOpsError):
    """Something about an HL7 v2 message or its MLLP transport went wrong."""


class MllpFrameError(Hl7Error):
    """Bytes on the wire do not form a valid or acceptable MLLP frame."""


class MllpConnectionError(Hl7Error):
    """The MLLP peer could not be reached or closed the connection."""


class MllpTimeout(Hl7Error):
    """The MLLP peer did not answer within the timeout."""


def frame(msg: str | bytes) -> bytes:
    """Wrap one message in an MLLP frame (0x0B + msg + 0x1C 0x0D)."""
    data = msg.encode("utf-8") if isinstance(msg, str) else bytes(msg)
    return START_BLOCK + data + END_BLOCK


class MllpDecoder:
    """Turn a byte stream into complete MLLP payloads.

    Feed whatever ``recv`` returned; iterate the result for every frame that
    is now complete. Bytes before a start block are dropped (counted in
    ``discarded``) because a receiver must resynchronise after garbage.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buf = bytearray()
        self._in_frame = False
        self._skipping = False  # inside an oversized frame: drop until its end
        self.discarded = 0

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held in the buffer."""
        return len(self._buf) if self._in_frame else 0

    def reset(self) -> None:
        """Drop a partial frame (e.g. after a read timeout)."""
        self._buf.clear()
        self._in_frame = False
        self._skipping = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add bytes; yield each payload (without framing) completed by them.

        Raises MllpFrameError once when a frame grows past ``max_message``;
        the rest of that frame is then skipped, so the stream stays usable.
        """
        self._buf += data
        while self._buf:
            if self._skipping:
                end = self._buf.find(END_BLOCK)
                if end < 0:
                    keep = 1 if self._buf.endswith(b"\x1c") else 0
                    self.discarded += len(self._buf) - keep
                    del self._buf[:len(self._buf) - keep]
                    return
                self.discarded += end + 2
                del self._buf[:end + 2]
                self._skipping = False
                continue
            if not self._in_frame:
                start = self._buf.find(START_BLOCK)
                if start < 0:
                    self.discarded += len(self._buf)
                    self._buf.clear()
                    return
                self.discarded += start
                del self._buf[:start + 1]
                self._in_frame = True
                continue
            end = self._buf.find(END_BLOCK)
            if end < 0:
                if len(self._buf) > self.max_message + 1:
                    self._too_large(len(self._buf))
                return
            payload = bytes(self._buf[:end])
            del self._buf[:end + 2]
            self._in_frame = False
            if len(payload) > self.max_message:
                raise self._error(len(payload))
            yield payload

    def _too_large(self, size: int) -> None:
        """Switch to skipping the rest of this frame, then raise."""
        self._in_frame = False
        self._skipping = True
        # keep a trailing 0x1C: it may be the first half of the end block
        keep = 1 if self._buf.endswith(b"\x1c") else 0
        self.discarded += len(self._buf) - keep
        del self._buf[:len(self._buf) - keep]
        raise self._error(size)

    def _error(self, size: int) -> MllpFrameError:
        return MllpFrameError(
            f"MLLP message too large: limit {self.max_message} bytes, got {size}+",
            fix="send one message per frame, or raise max_message on both sides",
        )


class MllpClient:
    """Blocking MLLP sender that keeps one TCP connection for many messages.

    Use as a context manager; ``send`` returns the parsed ACK. Errors are
    careops errors whose text says what to check next.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 5.0,
                 max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_message = max_message
        self._sock: socket.socket | None = None
        self._decoder = MllpDecoder(max_message)
        self._pending: list[bytes] = []

    def __enter__(self) -> MllpClient:
        self.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self) -> None:
        """Open the TCP connection (done by ``with`` or the first ``send``)."""
        if self._sock is not None:
            return
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except ConnectionRefusedError as exc:
            raise MllpConnectionError(
                f"MLLP connection to {self._where} refused: expected a listener, got none",
                fix="start the HL7 service (or check host/port) and retry",
            ) from exc
        except (socket.timeout, TimeoutError) as exc:
            raise MllpTimeout(
                f"MLLP connect to {self._where} timed out after {self.timeout}s",
                fix="check that the host is reachable and the port is not firewalled",
            ) from exc
        except OSError as exc:
            raise MllpConnectionError(
                f"MLLP connection to {self._where} failed: {exc}",
                fix="check the host name and port",
            ) from exc

    def close(self) -> None:
        """Close the connection; safe to call twice."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
                self._decoder.reset()
                self._pending.clear()

    def send_raw(self, data: bytes) -> bytes:
        """Send bytes as-is and return the next complete reply payload.

        For tests that need to put broken frames on the wire.
        """
        self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self.close()
            raise MllpConnectionError(
                f"MLLP send to {self._where} failed: {exc}",
                fix="the peer closed the connection; reconnect and resend",
            ) from exc
        return self._read_reply()

    def _read_reply(self) -> bytes:
        assert self._sock is not None
        while not self._pending:
            try:
                chunk = self._sock.recv(65536)
            except (socket.timeout, TimeoutError) as exc:
                self.close()
                raise MllpTimeout(
                    f"no ACK from {self._where} within {self.timeout}s: "
                    "expected a framed ACK, got nothing",
                    fix="check the receiver's log; the message may need resending "
                        "(receivers must be idempotent on MSH-10)",
                ) from exc
            except OSError as exc:
                self.close()
                raise MllpConnectionError(
                    f"MLLP receive from {self._where} failed: {exc}",
                    fix="reconnect and resend the message",
                ) from exc
            if not chunk:
                self.close()
                raise MllpConnectionError(
                    f"{self._where} closed the connection before sending an ACK",
                    fix="check the receiver's log, then reconnect and resend",
                )
            self._pending.extend(self._decoder.feed(chunk))
        return self._pending.pop(0)

    def send(self, message: str | bytes) -> Ack:
        """Send one message framed and return its parsed ACK."""
        reply = self.send_raw(frame(message))
        return parse_ack(reply.decode("utf-8", errors="replace"))


def send_batches(host: str, port: int, batches: list[list[str]], *, timeout: float = 30.0) -> tuple[float, list[str]]:
    """Send each batch of messages on a connection of its own, all batches at once (a throughput measure):
    the seconds it took, and the text of every ACK that was not AA/CA (or of the error that ended a batch)."""
    import threading
    import time

    refused: list[str] = []

    def send(batch: list[str]) -> None:
        try:
            with MllpClient(host, port, timeout=timeout) as client:
                for message in batch:
                    ack = client.send(message)
                    if not ack.ok:
                        refused.append(ack.text)
        except Hl7Error as exc:
            refused.append(f"the connection ended the batch: {exc.message}")

    threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, refused
