"""HL7 v2 helpers for the course: MLLP framing, a client, synthetic ADT messages."""
from __future__ import annotations

from careops.hl7.messages import Ack, AckParseError, build_adt, parse_ack
from careops.hl7.mllp import (
    DEFAULT_MAX_MESSAGE,
    END_BLOCK,
    START_BLOCK,
    Hl7Error,
    MllpClient,
    MllpConnectionError,
    MllpDecoder,
    MllpFrameError,
    MllpTimeout,
    frame,
    send_batches,
)

__all__ = [
    "Ack", "AckParseError", "build_adt", "parse_ack",
    "DEFAULT_MAX_MESSAGE", "END_BLOCK", "START_BLOCK", "Hl7Error", "MllpClient",
    "MllpConnectionError", "MllpDecoder", "MllpFrameError", "MllpTimeout", "frame", "send_batches",
]
