"""Docker plumbing every package builds on: one build-stream reader and one always-removed container.

``careops.dockerops`` sits at the bottom of the house (it imports nothing else
of careops), so ``images``, ``lab``, ``containerize`` and ``pipeline`` all use
it without an upward edge. Lab containers (exec, files,
state) are ``careops.lab.LabContainer``.
"""
from careops.dockerops.build import (
    Aux,
    BuildEvent,
    BuildLine,
    BuildStream,
    Built,
    CacheHit,
    Failed,
    ImageId,
    Layer,
    Step,
    StepContainer,
    Stopped,
    stream_build,
)
from careops.dockerops.tracked import tracked_container

__all__ = ["Aux", "BuildEvent", "BuildLine", "BuildStream", "Built", "CacheHit", "Failed", "ImageId", "Layer",
           "Step", "StepContainer", "Stopped", "stream_build", "tracked_container"]
