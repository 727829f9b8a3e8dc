"""Which backend a lab uses: the given engine client's, the workshop's lab broker, or this machine's engine.

The environment decides, so the same notebook cell works on a laptop and in the
workshop hub: the hub's spawner sets CAREOPS_BROKER_URL in each learner's server.
"""
from __future__ import annotations

from typing import Any

from careops import engine
from careops.lab.backend import BROKER_URL_ENV, LabBackend, via_broker
from careops.lab.broker import BrokerBackend
from careops.lab.direct import DirectBackend

_broker: BrokerBackend | None = None


def lab_backend(client: Any = None) -> LabBackend:
    """``client``'s engine when given; else the broker when CAREOPS_BROKER_URL is set; else this machine's engine."""
    global _broker
    if client is not None:
        return DirectBackend(client)
    if via_broker():
        wanted = BrokerBackend.from_env_key()
        if _broker is None or _broker.key != wanted:
            _broker = BrokerBackend.from_env()
        return _broker
    return DirectBackend(engine.client())


def broker_backend() -> BrokerBackend:
    """The lab broker's backend (for the operations only the broker offers: builds, image scans)."""
    found = lab_backend()
    if not isinstance(found, BrokerBackend):
        raise TypeError(f"{BROKER_URL_ENV} is not set: this process uses the engine directly")
    return found
