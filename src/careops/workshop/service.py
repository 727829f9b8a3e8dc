"""What the hand-in service and the instructor's dashboard share: who is asking (the hub says), errors as JSON.

Both are JupyterHub services the hub runs inside careops/hub (careops.workshop.config). Every request is
identified by the hub: a token in the ``Authorization`` header (a learner's server, its kernels) or the
service's OAuth cookie (a browser, after JupyterHub's login), through JupyterHub's own ``HubOAuth``. Only the hub's
users whose roles grant ``access:services!service=<this service>`` get in; nothing in the request says who it is.

Runs inside careops/hub: JupyterHub's packages and the standard library only.
"""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlparse

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

log = logging.getLogger("careops.workshop")


class ServiceError(Exception):
    """An answer other than 200, with what failed and what to do (answered as JSON, or as a page)."""

    def __init__(self, status: int, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.fix = status, message, fix


def listening(env: dict[str, str], port: int, prefix: str) -> dict[str, Any]:
    """The service's URL prefix and port, as the hub's environment for it says (``port``/``prefix`` otherwise)."""
    url = urlparse(env.get("JUPYTERHUB_SERVICE_URL") or f"http://127.0.0.1:{port}")
    return {"prefix": env.get("JUPYTERHUB_SERVICE_PREFIX", prefix), "port": url.port or port}


def hub_oauth() -> HubOAuth:
    """JupyterHub's HubOAuth, configured from the service's environment (its token, the hub's API, its scope); one
    per process, so the OAuth callback finds the login states the pages started."""
    return HubOAuth.instance(cache_max_age=60)


class OAuthCallback(HubOAuthCallbackHandler):
    """JupyterHub's end of the login (sets the service's cookie), with the service's HubOAuth."""

    def initialize(self, auth: HubOAuth) -> None:
        self.hub_auth = auth


class HubIdentified(HubOAuthenticated, web.RequestHandler):
    """A request whose user the hub named (``self.user``: the hub's user model), or an error.

    ``token_only``: an API for servers and kernels, which send their hub token; a browser's cookie is not taken
    there (so no page can make a learner's browser post on their behalf). Pages (``token_only`` False) send a
    browser without a session to the hub's login first."""

    token_only = False
    user: dict[str, Any]

    def initialize(self, auth: HubOAuth, **kwargs: Any) -> None:
        self.hub_auth = auth
        for key, value in kwargs.items():
            setattr(self, key, value)

    def check_xsrf_cookie(self) -> None:
        if not self.token_only:
            super().check_xsrf_cookie()

    async def prepare(self) -> None:
        model = await self.hub_auth.get_user(self, sync=False)
        if self.token_only and not getattr(self, "_token_authenticated", False):
            model = None
        if model is None:
            if not self.token_only and self.request.method in ("GET", "HEAD"):
                self.redirect(self.get_login_url())
                return
            raise ServiceError(401, "no valid hub token in the request (Authorization: token ...)",
                               "send it from your server in the workshop hub (careops does); log in again if it expired")
        if model.get("kind", "user") != "user":
            raise ServiceError(403, f"only the hub's users use this service, not {model.get('kind')} "
                                    f"{model.get('name')!r}")
        if not self.hub_auth.check_scopes(self.hub_auth.access_scopes, model):
            raise ServiceError(403, f"{model.get('name')} may not use this service",
                               "it is for the workshop's roles that grant it (ask the instructor)")
        self.user = model
        self.current_user = model

    @property
    def username(self) -> str:
        return str(self.user["name"])

    def answer(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))

    def html(self, page: str) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(page)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ServiceError):
            err = exc
        elif isinstance(exc, web.HTTPError):
            err = ServiceError(exc.status_code, exc.log_message or self._reason)
        else:
            log.error("the service failed a request", exc_info=kwargs.get("exc_info"))
            err = ServiceError(500, f"the service failed: {type(exc).__name__}: {exc}",
                               "tell the instructor; the hub's log (docker logs <workshop>-hub) has the details")
        self.set_status(err.status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": err.status, "message": err.message, "fix": err.fix}))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ServiceError):
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def log_exception(self, typ, value, tb) -> None:  # noqa: ANN001 - tornado's signature
        if not isinstance(value, ServiceError):
            super().log_exception(typ, value, tb)


def body_json(handler: web.RequestHandler, raw: bytes | None = None) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says so."""
    try:
        data = json.loads(raw if raw is not None else (handler.request.body or b"{}"))
    except ValueError:
        raise ServiceError(400, "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise ServiceError(400, "the request body must be a JSON object")
    return data


__all__ = ["HubIdentified", "OAuthCallback", "ServiceError", "body_json", "hub_oauth", "listening"]
