"""ADT-Legacy, the course's case-study service: the names and numbers every module that runs it shares.

Its release images are tagged in ``careops.images.catalog`` (``ADT_V1``, ``ADT_V2``, ``ADT_V2_FAULTY``);
this says how a lab runs it: its container names, its data volume, its ports and its health path.
It imports nothing, so every floor of careops can use it (the Dockerfile rules as well as the rollout
controller, the router's defaults, the traffic plan, the checks and the bench).
"""
from __future__ import annotations

#: The one container of the service in a lab (modules 2 and 4); the others reach it as ``adt:2575``.
CONTAINER = "adt"
#: Module 3's two releases side by side: blue/green and canary deploy to the colour not serving.
COLOURS = ("adt-blue", "adt-green")
#: Module 3's rolling update numbers its copies adt-1, adt-2, ... (a new copy takes the next free number).
REPLICA_PREFIX = "adt-"
#: The named volume holding the service's database, shared by every release in a lab.
VOLUME = "adt-data"
#: The short-lived container that prepares ``VOLUME`` (owner, WAL mode) before a release touches it.
VOLUME_INIT = "adt-data-init"
#: HL7 v2 over MLLP (admissions in, ACKs out).
MLLP_PORT = 2575
#: The status and read API over HTTP.
HTTP_PORT = 8081
#: Answers 200 with ``{"status": "ok", "version": ...}`` when the service is ready.
HEALTH_PATH = "/health"

__all__ = ["COLOURS", "CONTAINER", "HEALTH_PATH", "HTTP_PORT", "MLLP_PORT", "REPLICA_PREFIX", "VOLUME",
           "VOLUME_INIT"]
