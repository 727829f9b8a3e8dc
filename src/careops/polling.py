"""Waiting for state that settles over time (a container becoming healthy, a resource going away)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from careops.errors import EngineUnavailable

T = TypeVar("T")


def eventually(probe: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.5,
               until: Callable[[T], bool] = bool, what: str = "the lab state") -> T:
    """Call ``probe`` until ``until(result)`` holds; return the last result.

    For lab state that settles over time (a container becoming healthy, a
    resource going away): the check waits up to ``timeout`` seconds instead of
    failing on the first look. Exceptions from the probe count as "not yet"
    until the deadline, then the last one is raised with context -- except a
    missing engine, which will not appear by waiting and is raised at once.
    """
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    result: Any = None
    while True:
        try:
            result = probe()
            last_exc = None
            if until(result):
                return result
        except EngineUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - reported below when time is up
            last_exc = exc
        if time.monotonic() >= deadline:
            if last_exc is not None:
                raise TimeoutError(f"{what} was not reached within {timeout:g} s; last error: {last_exc}") from last_exc
            return result
        time.sleep(interval)


__all__ = ["eventually"]
