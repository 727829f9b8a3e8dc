"""Module 3's router: nginx in a lab container, driven by a small declarative config.

``parse_router_config`` reads the learner's YAML (backends and weights for HTTP
and MLLP), ``render_nginx`` makes nginx.conf from it, and ``Router`` runs it in
a ``careops.lab.Lab``: every change is validated by ``nginx -t`` before a
graceful reload, so a bad config never replaces a good one.
"""
from __future__ import annotations

from careops.router.config import (DEFAULT_CONFIG, EXAMPLE, HTTP_PORT, MLLP_PORT, STATUS_PORT, Backend,
                                   RouterConfig, parse_router_config, render_nginx)
from careops.router.live import ROUTER_IMAGE, ReloadResult, Router

__all__ = ["Backend", "RouterConfig", "parse_router_config", "render_nginx", "DEFAULT_CONFIG", "EXAMPLE",
           "HTTP_PORT", "MLLP_PORT", "STATUS_PORT", "ROUTER_IMAGE", "ReloadResult", "Router"]
