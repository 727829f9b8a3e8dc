"""The traffic generator's driver: runs INSIDE a lab container (Python standard library only).

careops copies this file and a JSON plan into a lab-runtime container on the
lab network and runs ``python3 driver.py plan.json``. It sends HTTP GETs at a
fixed rate (open loop: a slow answer does not slow the schedule) from a pool of
threads, a new connection per request, and HL7 ADT messages over MLLP on one
long-lived connection, resending a message whose ACK never came (on a new
connection) the way interface engines do, until the run's end plus a grace
(a message still not sent by then is recorded as unanswered: the run always
ends, however long the service is down). Every attempt becomes one JSON line:
send time, latency, status or ACK code, and the release that answered.

Two switches make it behave like a sending system in an incident drill: with
``stamp`` the MSH-7 of each message is its scheduled time (when the ward
created it, with milliseconds), and while the file ``hold_file`` exists the
MLLP channel holds its messages (a stuck interface channel) and sends the
backlog once it is removed. Once ``stop_file`` exists, nothing new is sent
(what is in flight finishes): a run can end before its planned duration.
"""
from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import sys
import threading
import time

START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"


class Recorder:
    """Appends one JSON object per line, from many threads."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "w", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, row: dict) -> None:
        line = json.dumps(row, separators=(",", ":"))
        with self._lock:
            self._fh.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._fh.flush()
            self._fh.close()


def http_worker(plan: dict, jobs: "queue.Queue", rec: Recorder) -> None:
    host, port, timeout = plan["host"], int(plan["port"]), float(plan.get("timeout", 5))
    while True:
        job = jobs.get()
        if job is None:
            return
        seq, path, t_sched = job
        row = {"kind": "http", "seq": seq, "id": path, "attempt": 1, "t_sched": t_sched}
        t_send = time.time()
        if t_send - t_sched > timeout:  # every connection was stuck on slow answers: this client gave up
            row.update(status="timeout", ok=False, version="", upstream="", t_send=t_send, latency_ms=0.0,
                       error=f"not sent: waited {t_send - t_sched:.1f} s for a free connection")
            rec.write(row)
            continue
        start = time.perf_counter()
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read()
            version = resp.getheader("X-Service-Version") or ""
            if not version and path == "/health":
                try:
                    version = json.loads(body or b"{}").get("version", "")
                except ValueError:
                    version = ""
            upstream = resp.getheader("X-Upstream") or ""
            if not version:  # v1 names no release; an answer from no backend is the router's own (502/504)
                version = "v1" if upstream and upstream != "-" and resp.status < 500 else ""
            row.update(status=str(resp.status), ok=resp.status < 500, version=version, upstream=upstream,
                       error="" if resp.status < 500 else body[:120].decode("utf-8", "replace"))
        except (OSError, http.client.HTTPException) as exc:
            row.update(status="error", ok=False, version="", error=f"{type(exc).__name__}: {exc}"[:200])
        finally:
            conn.close()
        row.update(t_send=t_send, latency_ms=(time.perf_counter() - start) * 1000)
        rec.write(row)


def run_http(plan: dict, t0: float, duration: float, rec: Recorder) -> list[threading.Thread]:
    rate = float(plan["rate"])
    paths = plan["paths"]
    jobs: "queue.Queue" = queue.Queue()
    workers = [threading.Thread(target=http_worker, args=(plan, jobs, rec), daemon=True)
               for _ in range(int(plan.get("workers", 8)))]
    for w in workers:
        w.start()

    def schedule() -> None:
        n = int(rate * duration)
        for i in range(n):
            t_sched = t0 + i / rate
            delay = t_sched - time.time()
            if delay > 0:
                time.sleep(delay)
            jobs.put((i, paths[i % len(paths)], t_sched))
        for _ in workers:
            jobs.put(None)

    sched = threading.Thread(target=schedule, daemon=True)
    sched.start()
    return [sched, *workers]


def parse_ack(raw: bytes) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, ZSV-1 release) of an ACK; ('', '', '') when unreadable."""
    code = control = version = ""
    for seg in raw.decode("utf-8", "replace").replace("\n", "\r").split("\r"):
        f = seg.split("|")
        if f[0] == "MSA" and len(f) > 2:
            code, control = f[1], f[2]
        elif f[0] == "ZSV" and len(f) > 1:
            version = f[1]
    return code, control, version


def stamp_created(text: str, when: float) -> str:
    """The message with MSH-7 set to ``when`` (UTC, milliseconds): the time the sending system created it."""
    first, sep, rest = text.partition("\r")
    fields = first.split("|")
    if len(fields) > 6:
        fields[6] = time.strftime("%Y%m%d%H%M%S", time.gmtime(when)) + f".{int(when * 1000) % 1000:03d}"
    return "|".join(fields) + sep + rest


class MllpSender:
    """One long-lived MLLP connection; reconnects when it breaks."""

    def __init__(self, plan: dict) -> None:
        self.host, self.port = plan["host"], int(plan["port"])
        self.timeout = float(plan.get("ack_timeout", 5))
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.buf = None, b""

    def send(self, message: str) -> bytes:
        if self.sock is None:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            self.sock.settimeout(self.timeout)
        self.sock.sendall(START_BLOCK + message.encode("utf-8") + END_BLOCK)
        while END_BLOCK not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed before the ACK")
            self.buf += chunk
        end = self.buf.index(END_BLOCK)
        start = self.buf.find(START_BLOCK)
        reply, self.buf = self.buf[start + 1 if start >= 0 else 0:end], self.buf[end + 2:]
        return reply


def run_mllp(plan: dict, t0: float, duration: float, rec: Recorder) -> threading.Thread:
    rate = float(plan["rate"])
    messages = plan["messages"]
    max_attempts = int(plan.get("max_attempts", 30))
    grace = float(plan.get("grace", 20))
    stamp, hold, stop = bool(plan.get("stamp")), plan.get("hold_file") or "", plan.get("stop_file") or ""

    def loop() -> None:
        sender = MllpSender(plan)
        for i, (control_id, text) in enumerate(messages):
            t_sched = t0 + i / rate
            if t_sched >= t0 + duration or (stop and os.path.exists(stop)):
                break
            delay = t_sched - time.time()
            if delay > 0:
                time.sleep(delay)
            if time.time() > t0 + duration + grace:  # still behind after the grace: never sent, so the run ends
                rec.write({"kind": "mllp", "seq": i, "id": control_id, "attempt": 1, "t_sched": t_sched,
                           "t_send": time.time(), "latency_ms": 0.0, "status": "error", "ok": False, "version": "",
                           "error": f"not sent: still {time.time() - t_sched:.0f} s behind schedule after the "
                                    f"run's end and its {grace:g} s grace"})
                continue
            while hold and os.path.exists(hold):  # the channel is held: messages wait at the sender
                time.sleep(0.05)
            if stamp:
                text = stamp_created(text, t_sched)
            for attempt in range(1, max_attempts + 1):
                row = {"kind": "mllp", "seq": i, "id": control_id, "attempt": attempt, "t_sched": t_sched}
                t_send = time.time()
                start = time.perf_counter()
                try:
                    code, acked_id, version = parse_ack(sender.send(text))
                    if acked_id != control_id:
                        raise ConnectionError(f"ACK for {acked_id!r}, expected {control_id!r}")
                    row.update(status=code, ok=code in ("AA", "CA"), version=version or "v1", error="")
                except (OSError, ConnectionError) as exc:
                    sender.close()
                    row.update(status="error", ok=False, version="", error=f"{type(exc).__name__}: {exc}"[:200])
                row.update(t_send=t_send, latency_ms=(time.perf_counter() - start) * 1000)
                rec.write(row)
                if row["status"] != "error":
                    break  # an ACK (AA, or a NAK the sender must not blindly resend) ends this message
                if time.time() > t0 + duration + grace:
                    break
                time.sleep(0.1)
        sender.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def main(argv: list[str]) -> int:
    with open(argv[1], encoding="utf-8") as f:
        plan = json.load(f)
    rec = Recorder(plan["out"])
    duration = float(plan["duration"])
    t0 = max(time.time() + 0.2, float(plan.get("start_at") or 0))
    delay = t0 - time.time()
    if delay > 0:
        time.sleep(delay)
    threads = []
    if plan.get("http") and float(plan["http"]["rate"]) > 0:
        threads += run_http(plan["http"], t0, duration, rec)
    if plan.get("mllp") and float(plan["mllp"]["rate"]) > 0:
        threads.append(run_mllp(plan["mllp"], t0, duration, rec))
    for t in threads:
        t.join()
    rec.close()
    print(json.dumps({"done": True, "t0": t0, "t_end": time.time()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
