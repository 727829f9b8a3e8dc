"""Workshop mode: a JupyterHub for a whole class on one host (``careops workshop``, ``make workshop``).

Two sides. On the host (careops.apps.workshop and these modules): ``settings``
(names and limits), ``roster`` (the class list and initial passwords),
``config`` (the hub's jupyterhub_config.py, generated), ``hub`` (the hub
container, networks, volumes), ``api`` (the hub's REST API with the CLI's
token), ``status``, ``probe`` (code run in a learner's server, the broker's
overhead). Inside the careops/hub image: ``auth`` (login from the roster) and
``spawner`` (one careops/learner container per learner), which import only
JupyterHub's packages and ``labels``; and ``broker``, the lab broker, a hub
service that runs careops.lab (and the learner's Dockerfile build) on the
engine for the learner each request's hub token names.

Hand-in by identity and the instructor's dashboard: the store itself is
``careops.handins`` (the grader reads it too); in the hub, ``handin_service``
(hand-ins, the checks' live reports, each learner's own feedback) and
``dashboard`` (instructors only), with ``service`` (who asks: the hub says) and
``activity`` (the reports and the class's view); in a learner's server,
``handin_client`` (:func:`hand_in`) and ``jupyter_extension`` (the "Hand in"
button's server side).

This package imports nothing at import time, so the hub side stays light.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["hand_in"]  # besides hand_in, the modules are the API: careops.workshop.settings, .roster, .hub ...


def hand_in(notebook: str | Path | None = None) -> Any:
    """Hand in a notebook (default: this kernel's) from a learner's server in the workshop hub.

    Save it first (Ctrl+S); JupyterLab's "Hand in" button saves and hands in. See careops.workshop.handin_client.
    """
    from careops.workshop.handin_client import hand_in as send

    return send(notebook)
