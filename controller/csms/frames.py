"""OCPP-J 1.6 frames: decoding, schema validation and compact encoding.

Built on the `ocpp` library's shipped JSON schemas (through its cached validators); the error
codes are OCPP 1.6's own names (`FormationViolation`, not 2.0's `FormatViolation`).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema.exceptions import ValidationError as SchemaError
from ocpp.messages import get_validator

CALL, CALLRESULT, CALLERROR = 2, 3, 4
MAX_UNIQUE_ID = 36

# Actions a charger may send us, and actions we may send a charger (OCPP 1.6 core and profiles).
CHARGER_ACTIONS = frozenset({
    "Authorize", "BootNotification", "DataTransfer", "DiagnosticsStatusNotification",
    "FirmwareStatusNotification", "Heartbeat", "MeterValues", "StartTransaction",
    "StatusNotification", "StopTransaction",
})
CENTRAL_ACTIONS = frozenset({
    "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
    "ClearChargingProfile", "DataTransfer", "GetCompositeSchedule", "GetConfiguration",
    "GetDiagnostics", "GetLocalListVersion", "RemoteStartTransaction", "RemoteStopTransaction",
    "ReserveNow", "Reset", "SendLocalList", "SetChargingProfile", "TriggerMessage",
    "UnlockConnector", "UpdateFirmware",
})
# Schemas with `multipleOf: 0.1` that only validate correctly with Decimal numbers.
_DECIMAL_SCHEMAS = {(CALL, "SetChargingProfile"), (CALL, "RemoteStartTransaction"),
                    (CALLRESULT, "GetCompositeSchedule")}


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


def _code_for(err: SchemaError) -> str:
    if err.validator == "required":
        return "ProtocolError"
    if err.validator == "type":
        return "TypeConstraintViolation" if err.path else "FormationViolation"
    if err.validator == "maxLength":
        return "TypeConstraintViolation"
    if err.validator == "additionalProperties":
        return "FormationViolation"
    if err.validator in ("enum", "minimum", "maximum", "multipleOf", "minLength", "format"):
        return "PropertyConstraintViolation"
    if err.validator in ("minItems", "maxItems", "uniqueItems"):
        return "OccurenceConstraintViolation"
    return "FormationViolation"


def validate(kind: int, action: str, payload: Any) -> None:
    """Check a payload against the OCPP 1.6 schema; raise OcppError with the 1.6 error code."""
    if (kind, action) in _DECIMAL_SCHEMAS:
        validator = get_validator(kind, action, "1.6", parse_float=decimal.Decimal)
        payload = orjson.loads(orjson.dumps(payload)) if payload is not None else payload
        payload = _decimals(payload)
    else:
        validator = get_validator(kind, action, "1.6")
    try:
        validator.validate(payload)
    except SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "payload"
        raise OcppError(_code_for(err), f"{where}: {err.message}") from None


def _decimals(value: Any) -> Any:
    """Floats as exact decimals of their shortest repr, for `multipleOf: 0.1` checks."""
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def encode_call(unique_id: str, action: str, payload: Any) -> str:
    return orjson.dumps([CALL, unique_id, action, payload]).decode()


def encode_result(unique_id: str, payload: Any) -> str:
    return orjson.dumps([CALLRESULT, unique_id, payload]).decode()


def encode_error(unique_id: str, code: str, description: str = "", details: Any = None) -> str:
    return orjson.dumps([CALLERROR, unique_id, code, description, details or {}]).decode()
