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

This package imports nothing at import time, so the hub side stays light.
"""

__all__: list[str] = []  # the modules are the API: careops.workshop.settings, .roster, .hub ...
