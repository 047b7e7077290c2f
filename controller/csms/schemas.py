"""Payload validation against an OCPP version's JSON schemas, fast for the payloads that pass.

A valid payload passes a check compiled from the schema (`compile_check`, ~20x faster than
walking the schema with jsonschema); anything it does not pass (or a schema it cannot compile)
goes to the `ocpp` library's jsonschema validator, which decides and words the error in the
version's error codes. The compiled check only ever says "valid" for what jsonschema accepts, so
the verdicts and the errors are jsonschema's. (fastjsonschema was measured slower end to end:
docs/performance.md.)
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from typing import Any

import orjson
from jsonschema.exceptions import ValidationError as SchemaError
from ocpp.messages import get_validator

from controller.csms.frames import OcppError

CodeFor = Callable[[SchemaError], str]
"""The version's CALLERROR code for what jsonschema found wrong."""


class SchemaValidator:
    """One OCPP version's payload checks: `validate(kind, action, payload)` raises OcppError."""

    def __init__(self, version: str, code_for: CodeFor,
                 decimal_schemas: frozenset[tuple[int, str]] = frozenset()) -> None:
        self.version = version  # as the ocpp library names its schema folders: "1.6", "2.0.1"
        self.code_for = code_for
        self.decimal_schemas = decimal_schemas  # `multipleOf: 0.1` schemas: Decimal numbers, no compiled check
        self._compiled: dict[tuple[int, str], Callable[[Any], bool] | None] = {}

    def compiled(self, kind: int, action: str) -> Callable[[Any], bool] | None:
        """The compiled check of the action's schema; None where jsonschema always decides."""
        key = (kind, action)
        if key not in self._compiled:
            check = None
            if key not in self.decimal_schemas:
                try:
                    schema = get_validator(kind, action, self.version).schema
                except (OSError, ValueError):
                    schema = None
                if schema is not None:
                    check = compile_check(schema, f"ocpp{self.version} {action} {kind}")
            self._compiled[key] = check
        return self._compiled[key]

    def validate(self, kind: int, action: str, payload: Any) -> None:
        """Check a payload against its schema; raise OcppError with the version's error code."""
        check = self._compiled.get((kind, action), _MISSING)  # the hot path: one dict lookup
        if check is _MISSING:
            check = self.compiled(kind, action)
        if check is not None and check(payload):
            return
        if (kind, action) in self.decimal_schemas:
            validator = get_validator(kind, action, self.version, parse_float=decimal.Decimal)
            payload = orjson.loads(orjson.dumps(payload)) if payload is not None else payload
            payload = decimals(payload)
        else:
            validator = get_validator(kind, action, self.version)
        try:
            validator.validate(payload)
        except SchemaError as err:
            where = "/".join(str(p) for p in err.absolute_path) or "payload"
            raise OcppError(self.code_for(err), f"{where}: {err.message}") from None
        except (decimal.InvalidOperation, OverflowError):  # a number too large for `multipleOf`
            raise OcppError("PropertyConstraintViolation", "a number is out of range") from None


_MISSING = object()


class _Unsupported(Exception):
    """A schema keyword the compiler does not handle: that schema stays with jsonschema."""


# Keywords with no effect on a Draft 4 validator without a format checker (as the library's).
_IGNORED = frozenset({"$schema", "$id", "id", "title", "description", "comment", "definitions", "javaType",
                      "format", "default", "additionalItems"})
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


def compile_check(schema: dict, label: str) -> Callable[[Any], bool] | None:
    """Compile a schema into a Python function that says whether a payload is valid.

    It may say False for a valid payload (then jsonschema decides); it never says True for an
    invalid one. A schema with a keyword not handled here gets None.
    """
    consts: dict[str, Any] = {}
    lines = ["def check(x0):", " try:"]
    counter = [0]

    def const(value: Any) -> str:
        key = f"_c{len(consts)}"
        consts[key] = value
        return key

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
                                          "maxLength", "items", "minItems", "maxItems"}
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
        if "items" in node or "minItems" in node or "maxItems" in node:
            inner = ind
            if kind_ != "array":
                lines.append(f"{ind}if isinstance({v}, list):")
                inner = ind + " "
            if "minItems" in node:
                lines.append(f"{inner}if len({v}) < {int(node['minItems'])}: return False")
            if "maxItems" in node:
                lines.append(f"{inner}if len({v}) > {int(node['maxItems'])}: return False")
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
    namespace: dict[str, Any] = {"_missing": _MISSING, **consts}
    exec(compile("\n".join(lines), f"<{label}>", "exec"), namespace)  # noqa: S102
    return namespace["check"]


def decimals(value: Any) -> Any:
    """Floats as exact decimals of their shortest repr, for `multipleOf: 0.1` checks."""
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    if isinstance(value, dict):
        return {k: decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decimals(v) for v in value]
    return value


