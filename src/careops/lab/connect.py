"""Which backend a lab uses: the given engine client's, the workshop's lab broker, or this machine's engine.

The environment decides, so the same notebook cell works on a laptop and in the
workshop hub: the hub's spawner sets CAREOPS_BROKER_URL in each learner's server.
"""
from __future__ import annotations

import os
from typing import Any

from careops import engine
from careops.lab.backend import BROKER_URL_ENV, LabBackend, via_broker
from careops.lab.broker import BrokerBackend
from careops.lab.direct import DirectBackend

_broker: LabBackend | None = None


def lab_backend(client: Any = None) -> LabBackend:
    """``client``'s engine when given; else the broker when CAREOPS_BROKER_URL is set; else this machine's engine."""
    global _broker
    if client is not None:
        return DirectBackend(client)
    if via_broker():
        url = os.environ[BROKER_URL_ENV]
        if _broker is None or getattr(_broker, "url", None) != BrokerBackend.base_url(url):
            _broker = BrokerBackend.from_env()
        return _broker
    return DirectBackend(engine.client())
