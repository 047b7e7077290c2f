"""OCPP-J 1.6 frames: decoding, schema validation and compact encoding.

Built on the `ocpp` library's shipped JSON schemas (through its cached validators): compiled by
fastjsonschema to check payloads, and jsonschema to word the errors of invalid ones. The error
codes are OCPP 1.6's own names (`FormationViolation`, not 2.0's `FormatViolation`).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import fastjsonschema
import orjson
from jsonschema import Draft4Validator
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
    """Check a payload against the OCPP 1.6 schema; raise OcppError with the 1.6 error code.

    A valid payload passes a check compiled from the same schema by fastjsonschema
    (`_fast_check`, 20-50x faster than jsonschema walking the schema); anything it does not pass
    goes to the library's jsonschema validator, which decides and words the error. The compiled
    check says "valid" exactly where jsonschema does (tests/test_frames_schema_validation.py),
    so the verdicts and the errors are those of jsonschema.
    """
    check = _FAST.get((kind, action), _UNCOMPILED)
    if check is _UNCOMPILED:
        check = _FAST[(kind, action)] = _fast_check(kind, action)
    if check is not None and check(payload):
        return
    validator = _validator(kind, action)
    if (kind, action) in _DECIMAL_SCHEMAS:
        payload = orjson.loads(orjson.dumps(payload)) if payload is not None else payload
        payload = _decimals(payload)
    try:
        validator.validate(payload)
    except SchemaError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "payload"
        raise OcppError(_code_for(err), f"{where}: {err.message}") from None


def _validator(kind: int, action: str) -> Draft4Validator:
    """The `ocpp` library's (cached) jsonschema validator for the action's 1.6 schema.

    The library caches one validator per schema whatever `parse_float`, and itself loads the
    `multipleOf: 0.1` schemas with Decimal: those are always asked for with Decimal here too.
    """
    if (kind, action) in _DECIMAL_SCHEMAS:
        return get_validator(kind, action, "1.6", parse_float=decimal.Decimal)
    return get_validator(kind, action, "1.6")


_UNCOMPILED = object()
_FAST: dict[tuple[int, str], Callable[[Any], bool] | None] = {}


def _fast_check(kind: int, action: str) -> Callable[[Any], bool] | None:
    """The action's schema compiled by fastjsonschema, as a function saying whether a payload is valid.

    The schemas are Draft 4 (their `$schema`, which fastjsonschema follows as jsonschema's
    Draft4Validator does): bools are neither integers nor numbers, 1.0 is not an integer.
    Options as the library's validator: no format checks (it has no format checker), and no
    defaults written into the payload. `multipleOf` is checked on Decimal(repr(number)) by
    fastjsonschema, as jsonschema does on the Decimal payload (`_decimals`). Anything other
    than a clean pass (an invalid payload, or an exception in the generated code) is "not
    valid here" and goes to jsonschema. None for a schema that cannot be loaded or compiled.
    """
    try:
        schema = _validator(kind, action).schema
    except (OSError, ValueError):
        return None
    # fastjsonschema wants multipleOf as a float (it takes Decimal(repr()) of both sides itself).
    schema = orjson.loads(orjson.dumps(schema, default=float))
    try:
        compiled = fastjsonschema.compile(schema, use_default=False, use_formats=False,
                                          detailed_exceptions=False)
    except fastjsonschema.JsonSchemaDefinitionException:
        return None

    def check(payload: Any) -> bool:
        try:
            compiled(payload)
        except Exception:  # noqa: BLE001 - jsonschema decides, and words the error
            return False
        return True

    return check


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
