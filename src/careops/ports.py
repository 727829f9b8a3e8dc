"""Local TCP ports: is one free, and which free one to suggest instead (JupyterLab, the workshop hub)."""
from __future__ import annotations

import os
import socket

#: Where the course's servers listen unless told otherwise.
LOOPBACK = "127.0.0.1"


def port_free(port: int, host: str = LOOPBACK) -> bool:
    """True if we could listen on host:port now (as a server will, with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def suggest_port(port: int) -> int:
    """A free port near the requested one, for the fix in a port-in-use message."""
    for candidate in range(port + 2, port + 200):
        if candidate < 65536 and port_free(candidate):
            return candidate
    return 8890


__all__ = ["LOOPBACK", "port_free", "suggest_port"]
