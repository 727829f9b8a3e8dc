"""Lab sandbox API: ``from careops.lab import Lab``."""
from careops.lab.container import ExecResult, LabContainer, RunState, StreamResult
from careops.lab.policy import Limits
from careops.lab.resources import Resource, RemovalReport, find, reset
from careops.lab.sandbox import DEFAULT_IMAGE, Lab
from careops.lab.spec import ContainerSpec, parse_spec

__all__ = ["Lab", "LabContainer", "ExecResult", "RunState", "StreamResult", "Limits", "Resource", "RemovalReport",
           "find", "reset", "ContainerSpec", "parse_spec", "DEFAULT_IMAGE"]
