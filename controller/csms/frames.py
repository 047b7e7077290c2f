"""OCPP-J frames, whatever the version: decoding the RPC envelope and compact encoding.

A frame that cannot be decoded is refused with OCPP 1.6's words (`FormationViolation`,
`ProtocolError`); each version's dialect renames them for its chargers (controller/csms/rpc.py).
Payloads are checked by the version's schemas (controller/csms/v16/schemas.py, v201/schemas.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from controller.timefmt import normalize

CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_UNIQUE_ID = 36

class OcppError(Exception):
    """An error to answer with a CALLERROR (or one received in a CALLERROR)."""

    def __init__(self, code: str, description: str = "", details: dict | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}


@dataclass(slots=True)
class Call:
    unique_id: str
    action: str
    payload: Any


@dataclass(slots=True)
class CallResult:
    unique_id: str
    payload: Any


@dataclass(slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: Any


class FrameError(OcppError):
    """A frame that could not be decoded; `unique_id` is known when the frame got that far."""

    def __init__(self, code: str, description: str, unique_id: str | None = None) -> None:
        super().__init__(code, description)
        self.unique_id = unique_id


def decode(text: str | bytes) -> Call | CallResult | CallError:
    """Parse one frame's structure (not its payload: see `validate`)."""
    try:
        msg = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameError("FormationViolation", "frame is not valid JSON") from None
    if not isinstance(msg, list) or not msg:
        raise FrameError("FormationViolation", "frame is not a JSON array")
    kind = msg[0]
    unique_id = msg[1] if len(msg) > 1 and isinstance(msg[1], str) else None
    if len(msg) < 2 or unique_id is None:
        raise FrameError("FormationViolation", "frame has no string unique id")
    if len(unique_id) > MAX_UNIQUE_ID:
        raise FrameError("FormationViolation", "unique id longer than 36 characters", unique_id)
    if kind == CALL and len(msg) == 4 and isinstance(msg[2], str):
        return Call(unique_id, msg[2], msg[3])
    if kind == CALLRESULT and len(msg) == 3:
        return CallResult(unique_id, msg[2])
    if kind == CALLERROR and len(msg) in (4, 5):
        details = msg[4] if len(msg) == 5 else {}
        return CallError(unique_id, str(msg[2]), str(msg[3]), details)
    if kind not in (CALL, CALLRESULT, CALLERROR):
        raise FrameError("ProtocolError", f"unknown message type id {kind!r}", unique_id)
    raise FrameError("FormationViolation", "frame has the wrong number of elements", unique_id)


def timestamp(text: str, field: str, code: str) -> str:
    """A charger's date-time as our canonical UTC text; a CALLERROR `code` naming `field` if none."""
    try:
        return normalize(text)
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 shifted out of range to UTC
        raise OcppError(code, f"{field}: not an ISO 8601 date-time") from None


def encode_call(unique_id: str, action: str, payload: Any) -> str:
    return orjson.dumps([CALL, unique_id, action, payload]).decode()


def encode_result(unique_id: str, payload: Any) -> str:
    return orjson.dumps([CALLRESULT, unique_id, payload]).decode()


def encode_error(unique_id: str, code: str, description: str = "", details: Any = None) -> str:
    return orjson.dumps([CALLERROR, unique_id, code, description, details or {}]).decode()
