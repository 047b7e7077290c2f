"""The OpenAPI 3.1 document of the REST API, built from an explicit list of sections.

Each resource module (controller/api/chargers.py, ...) keeps its `SECTION` beside its routes: the
paths it serves, with pydantic models (controller/api/models.py) where a body or a response has
a JSON shape. `build_document(sections)` turns the models into component schemas (request bodies
as pydantic validates them, responses as they are serialized) and adds what every operation
shares: the key rules, the body limit, the error responses. controller/api/app.py names the
sections; tests/api/test_openapi.py keeps them and the app's routes in step, and every response
the tests receive is validated against the document.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema

from controller.api.errors import INT64_MAX
from controller.api.models import Error

Schema = dict[str, Any] | type[BaseModel]
"""An inline JSON schema, or a model that becomes a component schema and a $ref to it."""
Operation = dict[str, Any]
Paths = dict[str, dict[str, Operation]]
REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Section:
    """One area of the API: its paths, each method an `operation(...)`."""

    paths: Paths


# -- building blocks -----------------------------------------------------------------------------


def response(description: str, schema: Schema | None = None, media: str = "application/json") -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {media: {"schema": schema}}
    return out


_ERROR_TEXT = {
    400: "Malformed request (the body is not a JSON object)",
    401: "Missing or wrong X-API-Key",
    403: "The X-API-Key is read-only: this operation needs an operator key",
    404: "Unknown resource",
    405: "Method not allowed (the Allow header lists the allowed methods)",
    409: "Conflict with the current state",
    413: "Body larger than 64 KiB",
    422: "A field is invalid; the message names it",
    429: "Rate limited (see Retry-After)",
    502: "The charger answered with a CALLERROR",
    503: "The database cannot store this now (disk full or read-only); retry after Retry-After seconds",
    504: "The charger did not answer in time",
}


def error(status: int, schema: Schema = Error) -> dict[str, Any]:
    """The response for one error status, with the common `Error` body unless told otherwise."""
    return response(_ERROR_TEXT.get(status, "Error"), schema)


def errors(*statuses: int, keyed: bool = True) -> dict[str, Any]:
    """Error responses for the given statuses, plus 401 (`keyed` operations) and a default."""
    out = {str(s): error(s) for s in sorted({*statuses, *([401] if keyed else [])})}
    out["default"] = response("Any other error", Error)
    return out


def operation(operation_id: str, tag: str, summary: str, responses: dict[str, Any], *,
              body: type[BaseModel] | None = None, query: type[BaseModel] | None = None,
              parameters: Sequence[dict[str, Any]] = (), public: bool = False,
              description: str | None = None) -> Operation:
    """One operation. `query`: the model the route parses its query string with (its fields
    become the query parameters); `public`: no API key needed."""
    op: dict[str, Any] = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if description:
        op["description"] = description
    params = [*parameters, *(query_parameters(query) if query is not None else [])]
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    op["responses"] = responses
    if public:
        op["security"] = []
    return op


def path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The query parameters a query model accepts: one per field, never required, never null
    (an absent parameter is the model's None)."""
    schema = model.model_json_schema(schema_generator=_Generator)
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", "")
        options = [s for s in prop.pop("anyOf", []) if s.get("type") != "null"]
        if options:
            prop = {**options[0], **prop}
        if "default" in prop and prop["default"] is None:
            del prop["default"]
        out.append({"name": name, "in": "query", "required": False, "schema": prop, "description": description})
    return out


ID_SCHEMA = {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX}
"""Ids are SQLite row ids: anything else (not an integer, out of range) answers 422."""


# -- the document --------------------------------------------------------------------------------


class _Generator(GenerateJsonSchema):
    """pydantic's JSON schema without a title on every property (the names say it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


_WRITE_METHODS = ("post", "put", "patch", "delete")
_DESCRIPTION = (
    "The site-local REST API of the evedge EV charging controller. Every endpoint except /healthz, "
    "/api/v1/openapi.json, the driver's public-charging endpoints (the session token is the credential) "
    "and, unless api.metrics_require_api_key is set, /metrics requires the X-API-Key header. Two kinds "
    "of key: operator keys (api.api_keys) may do everything; read-only keys (api.read_only_api_keys) "
    "may GET, and anything else answers 403. Request bodies are limited to 64 KiB (413). CORS is "
    "closed unless api.cors_allow_origins lists the browser's origin: then preflights from that origin "
    "are granted and responses carry Access-Control-Allow-Origin; a preflight from any other origin "
    "answers 403. Errors are JSON objects {\"error\", \"message\"}."
)
SECURITY_SCHEMES = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "ReadOnlyApiKey": {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "A read-only key (api.read_only_api_keys), sent in the same header: enough for the "
                       "operations that list it (GET); the others answer 403 to it.",
    },
}


def _with_key_rules(method: str, op: Operation) -> Operation:
    """What the two kinds of key and the body limit add to an operation: GETs accept a read-only
    key; keyed operations that write can answer 403, and any that write 503 while the disk refuses
    writes; operations with a body can answer 413. A copy: the section's own stays as written."""
    op = copy.deepcopy(op)
    responses = op["responses"]
    keyed = op.get("security") != []
    if keyed and method == "get":
        op["security"] = [{"ApiKey": []}, {"ReadOnlyApiKey": []}]
    if keyed and method in _WRITE_METHODS:
        responses.setdefault("403", error(403))
    if method in _WRITE_METHODS:
        responses.setdefault("503", error(503))
    if "requestBody" in op:
        responses.setdefault("413", error(413))
    default = responses.pop("default", None)
    op["responses"] = dict(sorted(responses.items()))
    if default is not None:
        op["responses"]["default"] = default
    return op


def _media(op: Operation) -> Iterable[tuple[dict[str, Any], JsonSchemaMode]]:
    """Every media object of an operation, with the mode its model is documented in: a request
    body as pydantic validates it, a response as it is serialized."""
    for media in op.get("requestBody", {}).get("content", {}).values():
        yield media, "validation"
    for answer in op["responses"].values():
        for media in answer.get("content", {}).values():
            yield media, "serialization"


def build_document(sections: Iterable[Section]) -> dict[str, Any]:
    """The whole document from `sections`; models in them become component schemas."""
    paths: Paths = {}
    for section in sections:
        for path, item in section.paths.items():
            assert path not in paths, f"{path} is in two sections"
            paths[path] = {method: _with_key_rules(method, op) for method, op in item.items()}
    models: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {}
    for item in paths.values():
        for op in item.values():
            for media, mode in _media(op):
                if isinstance(media["schema"], type):
                    models[(media["schema"], mode)] = None
    refs, top = models_json_schema(list(models), ref_template=REF, schema_generator=_Generator)
    for item in paths.values():
        for op in item.values():
            for media, mode in _media(op):
                if isinstance(media["schema"], type):
                    media["schema"] = refs[(media["schema"], mode)]
    return {
        "openapi": "3.1.0",
        "info": {"title": "evedge", "version": "1", "description": _DESCRIPTION},
        "security": [{"ApiKey": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": dict(sorted(top.get("$defs", {}).items())),
        },
    }
