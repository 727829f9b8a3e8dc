"""A TCP relay from this machine's loopback to a port on a lab network.

In workshop mode a lab publishes no port on the host: the learner's server joins
the lab's network instead (careops.lab.direct.Confinement.attach), and
``container.port(2575)`` answers with a loopback port of the server whose
connections this relay carries to the container. So cells that talk to
``127.0.0.1:<port>`` work unchanged in both places.
"""
from __future__ import annotations

import contextlib
import socket
import threading

BUFFER = 64 * 1024
CONNECT_TIMEOUT = 5.0


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy until ``src`` ends, then end ``dst``'s sending side (the other direction goes on)."""
    try:
        while data := src.recv(BUFFER):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class TcpRelay:
    """Listens on 127.0.0.1:<port> (chosen by the system) and connects each client to ``host``:``target``."""

    def __init__(self, host: str, target: int) -> None:
        self.host, self.target = host, target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name=f"relay-{self.port}->{host}:{target}").start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._carry, args=(client,), daemon=True).start()

    def _carry(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection((self.host, self.target), timeout=CONNECT_TIMEOUT)
        except OSError:
            client.close()  # the client sees the connection end, as with a port nobody listens on
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._open |= {client, upstream}
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.close()
        with self._lock:
            self._open -= {client, upstream}

    def close(self) -> None:
        """Stop listening and cut every carried connection."""
        self.closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.close()
            self._open.clear()
