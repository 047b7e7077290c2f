"""OCPP-J 1.6 frames: decoding, schema validation and compact encoding.

Built on the `ocpp` library's shipped JSON schemas (through its cached validators); the error
codes are OCPP 1.6's own names (`FormationViolation`, not 2.0's `FormatViolation`).
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from collections.abc import Callable
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
    """Check a payload against the OCPP 1.6 schema; raise OcppError with the 1.6 error code.

    A valid payload passes a check compiled from the same schema (`_fast_check`, ~20x faster
    than walking the schema); anything it does not pass (or a schema it cannot compile) goes to
    the library's jsonschema validator, which decides and words the error. The compiled check
    only ever says "valid" for what jsonschema accepts, so the verdicts and the errors are the same.
    """
    check = _FAST.get((kind, action), _UNCOMPILED)
    if check is _UNCOMPILED:
        check = _FAST[(kind, action)] = _fast_check(kind, action)
    if check is not None and check(payload):
        return
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


_UNCOMPILED = object()
_FAST: dict[tuple[int, str], Callable[[Any], bool] | None] = {}


class _Unsupported(Exception):
    """A schema keyword the compiler does not handle: that schema stays with jsonschema."""


# Keywords with no effect on a Draft 4 validator without a format checker (as the library's).
_IGNORED = frozenset({"$schema", "$id", "id", "title", "description", "definitions", "javaType", "format",
                      "additionalItems"})
_TYPE_TESTS = {
    # Draft 4 semantics, as jsonschema's draft-4 type checker: bools are neither integers nor numbers.
    "object": "isinstance({v}, dict)",
    "array": "isinstance({v}, list)",
    "string": "isinstance({v}, str)",
    "boolean": "isinstance({v}, bool)",
    "integer": "(isinstance({v}, int) and not isinstance({v}, bool))",
    "number": "(isinstance({v}, (int, float)) and not isinstance({v}, bool))",
    "null": "({v} is None)",
}


def _fast_check(kind: int, action: str) -> Callable[[Any], bool] | None:
    """Compile the action's schema into a Python function that says whether a payload is valid.

    It may say False for a valid payload (then jsonschema decides); it never says True for an
    invalid one. Schemas that need Decimal numbers, or use a keyword not handled here, get None.
    """
    if (kind, action) in _DECIMAL_SCHEMAS:
        return None
    try:
        schema = get_validator(kind, action, "1.6").schema
    except (OSError, ValueError):
        return None
    consts: dict[str, Any] = {}
    lines = ["def check(x0):", " try:"]
    counter = [0]

    def const(value: Any) -> str:
        name = f"_c{len(consts)}"
        consts[name] = value
        return name

    def resolve(node: dict, depth: int) -> dict:
        while "$ref" in node:  # Draft 4: siblings of $ref are ignored
            ref = node["$ref"]
            if not ref.startswith("#/") or depth > 20:
                raise _Unsupported(ref)
            node = schema
            for part in ref[2:].split("/"):
                node = node[part]
            depth += 1
        return node

    def emit(node: Any, v: str, ind: str, depth: int) -> None:
        if not isinstance(node, dict):
            raise _Unsupported(repr(node))
        node = resolve(node, depth)
        unknown = set(node) - _IGNORED - {"type", "properties", "required", "additionalProperties", "enum",
                                          "maxLength", "items", "minItems"}
        if unknown:
            raise _Unsupported(", ".join(sorted(unknown)))
        kind_ = node.get("type")
        if kind_ is not None:
            if not isinstance(kind_, str) or kind_ not in _TYPE_TESTS:
                raise _Unsupported(f"type {kind_!r}")
            lines.append(f"{ind}if not {_TYPE_TESTS[kind_].format(v=v)}: return False")
        if "enum" in node:
            if not all(isinstance(e, str) for e in node["enum"]):
                raise _Unsupported("enum of non-strings")
            # (an unhashable value raises TypeError: caught below, it means "not valid here")
            lines.append(f"{ind}if {v} not in {const(frozenset(node['enum']))}: return False")
        if "maxLength" in node:
            lines.append(f"{ind}if isinstance({v}, str) and len({v}) > {int(node['maxLength'])}: return False")
        object_keys = {"properties", "required", "additionalProperties"} & set(node)
        if object_keys:
            inner = ind
            if kind_ != "object":
                lines.append(f"{ind}if isinstance({v}, dict):")
                inner = ind + " "
            props = node.get("properties", {})
            if node.get("additionalProperties", True) is not True:
                if node["additionalProperties"] is not False:
                    raise _Unsupported("additionalProperties schema")
                lines.append(f"{inner}if not {const(frozenset(props))}.issuperset({v}): return False")
            for name in node.get("required", []):
                lines.append(f"{inner}if {name!r} not in {v}: return False")
            for name, sub in props.items():
                counter[0] += 1
                x = f"x{counter[0]}"
                lines.append(f"{inner}{x} = {v}.get({name!r}, _missing)")
                lines.append(f"{inner}if {x} is not _missing:")
                before = len(lines)
                emit(sub, x, inner + " ", depth)
                if len(lines) == before:
                    lines.append(f"{inner} pass")
            if lines[-1].endswith(":"):
                lines.append(f"{inner}pass")
        if "items" in node or "minItems" in node:
            inner = ind
            if kind_ != "array":
                lines.append(f"{ind}if isinstance({v}, list):")
                inner = ind + " "
            if "minItems" in node:
                lines.append(f"{inner}if len({v}) < {int(node['minItems'])}: return False")
            items = node.get("items")
            if items is not None:
                if not isinstance(items, dict):
                    raise _Unsupported("items as a list")
                counter[0] += 1
                x = f"x{counter[0]}"
                lines.append(f"{inner}for {x} in {v}:")
                before = len(lines)
                emit(items, x, inner + " ", depth)
                if len(lines) == before:
                    lines.append(f"{inner} pass")
            if lines[-1].endswith(":"):
                lines.append(f"{inner}pass")

    try:
        emit(schema, "x0", "  ", 0)
    except _Unsupported:
        return None
    lines += ["  return True", " except TypeError:", "  return False"]
    namespace: dict[str, Any] = {"_missing": _UNCOMPILED, **consts}
    exec(compile("\n".join(lines), f"<ocpp16 {action} {kind}>", "exec"), namespace)  # noqa: S102
    return namespace["check"]


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
