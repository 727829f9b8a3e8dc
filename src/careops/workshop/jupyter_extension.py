"""JupyterLab's "Hand in" on the learner's server: a Jupyter Server extension (enabled in careops/learner).

The learner image's JupyterLab extension (workshop/learner/handin-extension) saves the open notebook and posts
its path here; this reads the saved file inside the server's root folder and hands it in with
careops.workshop.handin_client (the server's hub token: identity from the hub). Routes, under the server's
base URL: ``POST careops/hand-in`` ``{"path": "00-orientation/orientation.ipynb"}`` and ``GET careops/hand-in``
(whether hand-in works here, and where the learner's feedback is).
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from careops.workshop import handin_client
from careops.workshop.labels import HANDIN_URL_ENV


class HandInHandler(APIHandler):
    def _fail(self, status: int, message: str, fix: str | None = None) -> None:
        self.set_status(status)
        self.finish(json.dumps({"message": message, "fix": fix}))

    @web.authenticated
    def get(self) -> None:
        import os

        self.finish(json.dumps({"available": bool(os.environ.get(HANDIN_URL_ENV)),
                                "feedback_url": handin_client.feedback_url()}))

    @web.authenticated
    async def post(self) -> None:
        data = self.get_json_body() or {}
        rel = data.get("path") if isinstance(data, dict) else None
        root = Path(self.contents_manager.root_dir).resolve()
        if not isinstance(rel, str) or not rel.endswith(".ipynb"):
            return self._fail(400, "hand in a notebook (.ipynb): open it and press Hand in in its toolbar")
        path = (root / rel.lstrip("/")).resolve()
        if root not in path.parents or not path.is_file():
            return self._fail(404, f"no notebook {rel} in your workspace", "save it first (Ctrl+S)")
        if path.parent == root:
            return self._fail(400, f"{path.name} is not in a module's folder, so it is no assignment's notebook",
                              "hand in the notebook inside its module folder (e.g. 00-orientation/orientation.ipynb)")
        loop = asyncio.get_running_loop()
        try:
            receipt = await loop.run_in_executor(None, lambda: handin_client.send(path, assignment=path.parent.name))
        except handin_client.HandInFailed as exc:
            return self._fail(exc.status or 502, exc.message, exc.fix)
        self.finish(json.dumps({"message": str(receipt), **receipt.__dict__}))


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "careops.workshop.jupyter_extension"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    web_app = serverapp.web_app
    route = url_path_join(web_app.settings["base_url"], "careops", "hand-in")
    web_app.add_handlers(".*$", [(route, HandInHandler)])
    serverapp.log.info("careops: Hand in at %s", route)
