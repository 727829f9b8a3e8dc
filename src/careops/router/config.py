"""The router config a learner writes (small, declarative YAML) and the nginx.conf careops renders from it.

Learners never write nginx syntax: they say which backends take HTTP and MLLP
traffic, with weights; careops renders one nginx.conf (an ``http`` upstream for
the status/read API, a ``stream`` upstream for MLLP over TCP) and nginx itself
validates it (``nginx -t``) before any reload.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from careops import legacy_adt as adt
from careops.errors import RouterConfigError
from careops.router.yamlpos import Located, load_located, require_mapping
from careops.report import theme

#: Ports inside the router container.
HTTP_PORT = 8080
MLLP_PORT = 2575
STATUS_PORT = 8099
PROTOCOLS = ("http", "mllp")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Backend:
    """One upstream target: a lab container's short name (its DNS alias on the lab network), port, weight."""

    host: str
    port: int
    weight: int = 100

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RouterConfig:
    """Where HTTP and MLLP traffic go; weights are relative (5 and 95 send 5 % to the first)."""

    http: tuple[Backend, ...]
    mllp: tuple[Backend, ...]
    #: extra nginx directives inside the HTTP ``location`` (for tests of a config nginx rejects); not from YAML
    raw_http_directives: tuple[str, ...] = field(default=(), compare=False)

    def backends(self, protocol: str) -> tuple[Backend, ...]:
        return self.http if protocol == "http" else self.mllp

    def share(self, protocol: str = "http") -> dict[str, float]:
        """Each host's share of new requests (HTTP) or new connections (MLLP), 0..1."""
        active = [b for b in self.backends(protocol) if b.weight > 0]
        total = sum(b.weight for b in active)
        return {b.host: b.weight / total for b in active}

    @classmethod
    def single(cls, host: str, *, http_port: int = adt.HTTP_PORT, mllp_port: int = adt.MLLP_PORT) -> "RouterConfig":
        """All traffic to one backend (blue/green)."""
        return cls((Backend(host, http_port),), (Backend(host, mllp_port),))

    @classmethod
    def weighted(cls, weights: dict[str, int], *, http_port: int = adt.HTTP_PORT,
                 mllp_port: int = adt.MLLP_PORT) -> "RouterConfig":
        """Traffic split by weight between backends (canary), e.g. {"adt-blue": 95, "adt-green": 5}."""
        return cls(tuple(Backend(h, http_port, w) for h, w in weights.items()),
                   tuple(Backend(h, mllp_port, w) for h, w in weights.items()))

    def to_yaml(self) -> str:
        out = []
        for proto in PROTOCOLS:
            out.append(f"{proto}:\n  backends:")
            out += [f"    - {{host: {b.host}, port: {b.port}, weight: {b.weight}}}" for b in self.backends(proto)]
        return "\n".join(out) + "\n"

    def _repr_html_(self) -> str:
        rows = ([p, theme.code(b.address), b.weight, theme.num(f"{self.share(p).get(b.host, 0):.0%}")]
                for p in PROTOCOLS for b in self.backends(p))
        return theme.card("Router config", theme.table(rows, header=["traffic", "backend", "weight", "share"]))


#: The starting config of every module 3 lab: all traffic to the first colour, in the YAML learners write.
#: The shape learners are shown when theirs is wrong: a placeholder backend, not exercise 1a's answer.
EXAMPLE = RouterConfig.single("my-backend").to_yaml()


def _backend(doc: Located, value: Any, path: tuple[Any, ...]) -> Backend:
    item = require_mapping(doc, value, path, {"host": f"the backend container's name, e.g. {adt.COLOURS[1]}",
                                               "port": f"its port ({adt.HTTP_PORT} HTTP, {adt.MLLP_PORT} MLLP)",
                                               "weight": "relative share of traffic, 0..100 (default 100)"})
    host = item.get("host")
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise doc.fail(path + ("host",), f"expected a container name (lower-case letters, digits, '-'), got {host!r}",
                       fix=f"use the short name you started the service with, e.g. host: {adt.COLOURS[1]}")
    port = item.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise doc.fail(path + ("port",), f"expected a port number 1..65535, got {port!r}",
                       fix=f"{adt.HTTP_PORT} for the service's HTTP port, {adt.MLLP_PORT} for its MLLP port")
    weight = item.get("weight", 100)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise doc.fail(path + ("weight",), f"expected a whole number 0..100, got {weight!r}",
                       fix="e.g. weight: 95 for the stable release and weight: 5 for the canary")
    return Backend(host, port, weight)


def parse_router_config(source: str | dict[str, Any] | RouterConfig) -> RouterConfig:
    """Parse and validate the learner's router YAML; each problem names the key, its line and the fix."""
    if isinstance(source, RouterConfig):
        return source
    doc = load_located(source, what="the router config", error=RouterConfigError)
    top = require_mapping(doc, doc.data, (), {p: f"where {p.upper()} traffic goes" for p in PROTOCOLS})
    parsed: dict[str, tuple[Backend, ...]] = {}
    for proto in PROTOCOLS:
        if proto not in top:
            raise doc.fail((), f"no '{proto}' section: expected both http and mllp",
                           fix="start from this shape:\n" + EXAMPLE)
        section = require_mapping(doc, top[proto], (proto,), {"backends": "a list of {host, port, weight}"})
        backends = section.get("backends")
        if not isinstance(backends, list) or not backends:
            raise doc.fail((proto, "backends"), f"expected a non-empty list of backends, got {backends!r}",
                           fix=f"list at least one: - {{host: my-backend, port: {adt.HTTP_PORT}, weight: 100}}")
        items = tuple(_backend(doc, b, (proto, "backends", i)) for i, b in enumerate(backends))
        seen: set[str] = set()
        for i, b in enumerate(items):
            if b.address in seen:
                raise doc.fail((proto, "backends", i), f"backend {b.address} is listed twice",
                               fix="list each backend once and give it the weight it should have")
            seen.add(b.address)
        if sum(b.weight for b in items) == 0:
            raise doc.fail((proto, "backends"), "every backend has weight 0: no traffic could be served",
                           fix="give at least one backend a weight above 0")
        parsed[proto] = items
    return RouterConfig(parsed["http"], parsed["mllp"])


def _servers(backends: tuple[Backend, ...]) -> str:
    return "\n".join(f"        server {b.address} weight={b.weight} max_fails=0;" for b in backends if b.weight > 0)


def render_nginx(config: RouterConfig, *, generation: int = 0) -> str:
    """The nginx.conf for ``config``; ``generation`` is served on the status port so a reload can be confirmed.

    Why these settings: one worker (2-core lab machines); no access log (the
    traffic generator records every request); temp paths under /tmp because
    nginx runs as a non-root user; ``max_fails=0`` so a blip never takes a
    backend out behind careops' back; MLLP connections are long-lived, so on a
    reload the old worker keeps them until the backend or the sender closes them
    (``worker_shutdown_timeout`` bounds that).
    """
    extra = "".join(f"            {d}\n" for d in config.raw_http_directives)
    return f"""# Rendered by careops.router (generation {generation}); edit the router YAML, not this file.
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
pid /tmp/careops-router.pid;
error_log stderr warn;
worker_shutdown_timeout 60s;
events {{
    worker_connections 2048;
}}
http {{
    access_log off;
    client_body_temp_path /tmp/nginx-client-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;
    upstream adt_http {{
{_servers(config.http)}
    }}
    server {{
        listen {HTTP_PORT};
        location / {{
            proxy_pass http://adt_http;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 2s;
            proxy_read_timeout 15s;
            add_header X-Upstream $upstream_addr always;
{extra}        }}
    }}
    server {{
        listen {STATUS_PORT};
        location = /router-status {{
            default_type text/plain;
            return 200 "careops-router generation {generation}\\n";
        }}
    }}
}}
stream {{
    upstream adt_mllp {{
{_servers(config.mllp)}
    }}
    server {{
        listen {MLLP_PORT};
        proxy_pass adt_mllp;
        proxy_connect_timeout 2s;
        proxy_timeout 10m;
    }}
}}
"""


#: What the image ships before careops applies a real config (nginx -t passes without DNS).
DEFAULT_CONFIG = RouterConfig.single("127.0.0.1")
