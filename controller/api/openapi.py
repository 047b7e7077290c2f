"""The OpenAPI 3.1 document of the REST API.

Built from sections: each area of the API contributes its paths (and the schemas they use) with
`add_section`. A module that registers routes on the Quart app registers its section too, e.g.

    from controller.api import openapi

    def _paths() -> dict:
        return {"/api/v1/sessions": {"get": openapi.operation("listSessions", "Sessions", ...)}}

    openapi.add_section("sessions", _paths, schemas={"Session": {...}})

tests/api/test_openapi.py keeps the document and the app's url_map in step, and every response
the integration tests receive is validated against the documented schemas.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller.csms.frames import CENTRAL_ACTIONS

Paths = dict[str, dict[str, Any]]
_SECTIONS: dict[str, tuple[Callable[[], Paths], dict[str, Any]]] = {}

# -- building blocks -----------------------------------------------------------------------------


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


def response(description: str, schema: dict | None = None) -> dict:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = json_content(schema)
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
    502: "The charger answered with a CALLERROR",
    503: "The database cannot store this now (disk full or read-only); retry after Retry-After seconds",
    504: "The charger did not answer in time",
}


def errors(*statuses: int) -> dict:
    """Error responses (the common `Error` body) for the given statuses, plus 401 and a default."""
    out = {str(s): response(_ERROR_TEXT.get(s, "Error"), ref("Error")) for s in sorted({401, *statuses})}
    out["default"] = response("Any other error", ref("Error"))
    return out


def operation(operation_id: str, tag: str, summary: str, responses: dict, *, body: dict | None = None,
              parameters: list | None = None, public: bool = False, description: str | None = None) -> dict:
    op: dict[str, Any] = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": json_content(body)}
    op["responses"] = responses
    if public:
        op["security"] = []
    return op


def path_param(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def query_param(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


ID_SCHEMA = {"type": "integer", "format": "int64", "minimum": 1, "maximum": 2**63 - 1}
"""Ids are SQLite row ids: anything else (not an integer, out of range) answers 422."""
OFFSET_SCHEMA = {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**63 - 1, "default": 0}
CHARGE_BOX_ID = path_param("chargeBoxId", {"type": "string"}, "The charger's charge box id")
TRANSACTION_ID = path_param("transactionId", ID_SCHEMA, "The OCPP transaction id")
ID_TAG = path_param("idTag", {"type": "string", "minLength": 1, "maxLength": 20}, "The id tag (case-insensitive)")


def add_section(name: str, paths: Callable[[], Paths], schemas: dict[str, Any] | None = None) -> None:
    """Add (or replace) a section: a function returning paths, and the component schemas it uses."""
    _SECTIONS[name] = (paths, schemas or {})


# -- schemas -------------------------------------------------------------------------------------

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
_TX_STATUS = {"type": "string", "enum": ["pending", "active", "stopping", "completed", "failed"]}

COMMON_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "Machine-readable code, e.g. ChargerOffline"},
            "message": {"type": "string", "description": "What went wrong, naming the field or resource"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "chargersOnline"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "degraded", "failing"],
                       "description": "failing (answered with 503) when any check fails"},
            "chargersOnline": {"type": "integer", "minimum": 0},
            "transactionsOpen": {"type": "integer", "minimum": 0},
            "checks": {
                "type": "object",
                "description": "One entry per part of the site (database, upstream, ocpp, eventLoop, buses...)",
                "additionalProperties": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string", "enum": ["ok", "degraded", "failing"]}},
                },
            },
        },
    },
}

CHARGER_SCHEMAS: dict[str, Any] = {
    "Connector": {
        "type": "object",
        "required": ["connectorId", "status", "errorCode"],
        "properties": {
            "connectorId": {"type": "integer", "minimum": 0, "description": "0 is the charger as a whole"},
            "status": {"type": ["string", "null"], "description": "Latest OCPP ChargePointStatus"},
            "errorCode": {"type": ["string", "null"], "description": "Latest OCPP ChargePointErrorCode"},
            "info": _NULLABLE_STR,
            "vendorErrorCode": _NULLABLE_STR,
            "statusUpdatedAt": _NULLABLE_TIME,
            "energyWh": {"type": ["number", "null"], "description": "Latest energy register reading"},
            "powerW": {"type": ["number", "null"], "description": "Latest active power"},
            "meterUpdatedAt": _NULLABLE_TIME,
        },
    },
    "Charger": {
        "type": "object",
        "required": ["chargeBoxId", "registration", "online", "connectors"],
        "properties": {
            "chargeBoxId": {"type": "string"},
            "registration": {"type": "string", "enum": ["accepted", "pending", "rejected"]},
            "online": {"type": "boolean"},
            "connectedAt": _NULLABLE_TIME,
            "vendor": _NULLABLE_STR,
            "model": _NULLABLE_STR,
            "serialNumber": _NULLABLE_STR,
            "firmwareVersion": _NULLABLE_STR,
            "lastBoot": _NULLABLE_TIME,
            "lastHeartbeat": _NULLABLE_TIME,
            "firmwareStatus": _NULLABLE_STR,
            "diagnosticsStatus": _NULLABLE_STR,
            "connectors": {"type": "array", "items": ref("Connector")},
        },
    },
    "ChargerList": {
        "type": "object",
        "required": ["chargers"],
        "properties": {"chargers": {"type": "array", "items": ref("Charger")}},
    },
    "OperationRequest": {
        "type": "object",
        "description": "The OCPP 1.6 request payload of the operation, validated against its schema and "
                       "forwarded as given (key order preserved).",
    },
    "OperationResponse": {
        "description": "The charger's CALLRESULT payload, as received (normally an object; a charger "
                       "that answers something else is passed on as is).",
    },
    "CallErrorResponse": {
        "allOf": [ref("Error")],
        "type": "object",
        "required": ["error", "message", "callError"],
        "properties": {
            "error": {"const": "CallError"},
            "callError": {
                "type": "object",
                "required": ["code", "description", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "description": {"type": "string"},
                    "details": {"type": "object"},
                },
            },
        },
    },
}

TRANSACTION_SCHEMAS: dict[str, Any] = {
    "RemoteStartRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["connectorId", "idTag"],
        "properties": {
            "connectorId": {"type": "integer", "minimum": 1, "maximum": 100,
                            "description": "The connector to start charging on (must be Preparing)"},
            "idTag": {"type": "string", "minLength": 1, "maxLength": 20, "description": "User/RFID identifier"},
        },
    },
    "RemoteStartResponse": {
        "type": "object",
        "additionalProperties": False,
        "required": ["message", "transactionId", "chargeBoxId", "connectorId", "status", "note"],
        "properties": {
            "message": {"const": "Remote start accepted by charger"},
            "transactionId": {"type": "integer", "description": "The id the charger gets in StartTransaction.conf"},
            "chargeBoxId": {"type": "string"},
            "connectorId": {"type": "integer"},
            "status": {"const": "pending"},
            "note": {"type": "string"},
        },
    },
    "RemoteStopResponse": {
        "type": "object",
        "additionalProperties": False,
        "required": ["message", "transactionId", "chargeBoxId", "status", "note"],
        "properties": {
            "message": {"const": "Remote stop accepted by charger"},
            "transactionId": {"type": "integer"},
            "chargeBoxId": {"type": "string"},
            "status": {"const": "stopping"},
            "note": {"type": "string"},
        },
    },
    "TransactionSummary": {
        "type": "object",
        "required": ["id", "transactionId", "chargeBoxId", "connectorId", "idTag", "status",
                     "energyDelivered", "durationMinutes", "startTime", "stopTime"],
        "properties": {
            "id": {"type": "string", "pattern": "^txn_[0-9]+$"},
            "transactionId": {"type": "integer"},
            "chargeBoxId": {"type": "string"},
            "connectorId": {"type": "integer", "minimum": 0},
            "idTag": {"type": "string"},
            "status": _TX_STATUS,
            "energyDelivered": {"type": ["number", "null"], "description": "kWh"},
            "durationMinutes": {"type": ["integer", "null"], "minimum": 0},
            "startTime": _NULLABLE_TIME,
            "stopTime": _NULLABLE_TIME,
        },
    },
    "Transaction": {
        "allOf": [ref("TransactionSummary")],
        "type": "object",
        "required": ["meterStart", "meterStop", "stopReason", "remoteStarted"],
        "properties": {
            "meterStart": {"type": ["integer", "null"], "description": "Wh"},
            "meterStop": {"type": ["integer", "null"], "description": "Wh"},
            "stopReason": _NULLABLE_STR,
            "remoteStarted": {"type": "boolean"},
            "mode": {"type": "string", "enum": ["local", "api", "remote"]},
            "idTagStatus": _NULLABLE_STR,
            "paymentAmount": _NULLABLE_STR,
        },
    },
    "TransactionList": {
        "type": "object",
        "required": ["transactions", "pagination"],
        "properties": {
            "transactions": {"type": "array", "items": ref("TransactionSummary")},
            "pagination": {
                "type": "object",
                "required": ["total", "limit", "offset"],
                "properties": {
                    "total": {"type": "integer", "minimum": 0},
                    "limit": {"type": "integer", "minimum": 1},
                    "offset": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
}

_TAG_STATUS = {"type": "string", "enum": ["Accepted", "Blocked", "Expired", "Invalid"]}
ID_TAG_SCHEMAS: dict[str, Any] = {
    "IdTag": {
        "type": "object",
        "required": ["idTag", "status", "expiryDate", "parentIdTag"],
        "properties": {
            "idTag": {"type": "string"},
            "status": {"type": "string", "enum": ["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"]},
            "expiryDate": _NULLABLE_TIME,
            "parentIdTag": _NULLABLE_STR,
        },
    },
    "IdTagList": {
        "type": "object",
        "required": ["idTags"],
        "properties": {"idTags": {"type": "array", "items": ref("IdTag")}},
    },
    "IdTagBody": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "status": {**_TAG_STATUS, "default": "Accepted"},
            "expiryDate": {"type": ["string", "null"], "format": "date-time"},
            "parentIdTag": {"type": ["string", "null"], "minLength": 1, "maxLength": 20},
        },
    },
    "NewIdTagBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["idTag"],
        "properties": {
            "idTag": {"type": "string", "minLength": 1, "maxLength": 20},
            "status": {**_TAG_STATUS, "default": "Accepted"},
            "expiryDate": {"type": ["string", "null"], "format": "date-time"},
            "parentIdTag": {"type": ["string", "null"], "minLength": 1, "maxLength": 20},
        },
    },
}

# -- paths ---------------------------------------------------------------------------------------


def _common_paths() -> Paths:
    return {
        "/healthz": {"get": operation(
            "health", "System", "Liveness and the number of connected chargers",
            {"200": response("The controller can do its job (status ok or degraded)", ref("Health")),
             "503": response("A check is failing", ref("Health"))}, public=True)},
        "/metrics": {"get": operation(
            "metrics", "System", "Prometheus metrics (text exposition format)",
            {"200": {"description": "Metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
             **errors()},
            description="Requires the X-API-Key unless api.metrics_require_api_key is false.")},
        "/api/v1/openapi.json": {"get": operation(
            "openapi", "System", "This document",
            {"200": response("The OpenAPI 3.1 document", {"type": "object"})}, public=True)},
    }


def _charger_paths() -> Paths:
    operation_param = path_param("action", {"type": "string", "enum": sorted(CENTRAL_ACTIONS)},
                                 "An OCPP 1.6 operation initiated by the central system")
    return {
        "/api/v1/chargers": {"get": operation(
            "listChargers", "Chargers", "Configured chargers and chargers that have connected",
            {"200": response("The chargers, by id", ref("ChargerList")), **errors()})},
        "/api/v1/chargers/{chargeBoxId}": {"get": operation(
            "getCharger", "Chargers", "One charger: registration, connection, connectors",
            {"200": response("The charger", ref("Charger")), **errors(404)}, parameters=[CHARGE_BOX_ID])},
        "/api/v1/chargers/{chargeBoxId}/approve": {"post": operation(
            "approveCharger", "Chargers", "Accept a pending (or rejected) charger",
            {"200": response("The charger, now accepted", ref("Charger")), **errors(404)},
            parameters=[CHARGE_BOX_ID])},
        "/api/v1/chargers/{chargeBoxId}/reject": {"post": operation(
            "rejectCharger", "Chargers", "Reject a charger that is not in the config file (closes its connection)",
            {"200": response("The charger, now rejected", ref("Charger")), **errors(404, 409)},
            parameters=[CHARGE_BOX_ID])},
        "/api/v1/chargers/{chargeBoxId}/remote-start": {"post": operation(
            "remoteStart", "Transactions", "Start a charging session remotely on a specific connector",
            {"202": response("Remote start accepted by the charger", ref("RemoteStartResponse")),
             **errors(400, 404, 409, 422, 504)},
            body=ref("RemoteStartRequest"), parameters=[CHARGE_BOX_ID],
            description="The connector must be in Preparing status. The transactionId returned is the one "
                        "the charger gets in StartTransaction.conf. 409: connector not Preparing, charger "
                        "offline, or the charger rejected the request.")},
        "/api/v1/chargers/{chargeBoxId}/operations/{action}": {"post": operation(
            "chargerOperation", "Chargers", "Send any OCPP 1.6 central-system operation to the charger",
            {"200": response("The charger's answer", ref("OperationResponse")),
             "502": response(_ERROR_TEXT[502], ref("CallErrorResponse")),
             **{k: v for k, v in errors(400, 404, 409, 422, 504).items()}},
            body=ref("OperationRequest"), parameters=[CHARGE_BOX_ID, operation_param],
            description="The body is validated against the operation's OCPP 1.6 request schema and sent "
                        "as given.")},
    }


def _transaction_paths() -> Paths:
    return {
        "/api/v1/transactions": {"get": operation(
            "listTransactions", "Transactions", "Transactions, newest first, with optional filters",
            {"200": response("A page of transactions", ref("TransactionList")), **errors(422)},
            parameters=[
                query_param("chargeBoxId", {"type": "string"}, "Filter by charger"),
                query_param("status", _TX_STATUS, "Filter by status"),
                query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                            "Results per page"),
                query_param("offset", OFFSET_SCHEMA, "Pagination offset"),
            ])},
        "/api/v1/transactions/{transactionId}": {"get": operation(
            "getTransaction", "Transactions", "Full details of one transaction",
            {"200": response("The transaction", ref("Transaction")), **errors(404, 422)},
            parameters=[TRANSACTION_ID])},
        "/api/v1/transactions/{transactionId}/stop": {"post": operation(
            "remoteStop", "Transactions", "Stop an active charging session",
            {"202": response("Remote stop accepted by the charger", ref("RemoteStopResponse")),
             **errors(404, 409, 422, 504)},
            parameters=[TRANSACTION_ID])},
    }


def _id_tag_paths() -> Paths:
    return {
        "/api/v1/id-tags": {
            "get": operation("listIdTags", "Id tags", "The local id-tag list",
                             {"200": response("Every id tag", ref("IdTagList")), **errors()}),
            "post": operation("createIdTag", "Id tags", "Add an id tag",
                              {"201": response("The new id tag", ref("IdTag")), **errors(400, 409, 422)},
                              body=ref("NewIdTagBody")),
        },
        "/api/v1/id-tags/{idTag}": {
            "get": operation("getIdTag", "Id tags", "One id tag",
                             {"200": response("The id tag", ref("IdTag")), **errors(404)}, parameters=[ID_TAG]),
            "put": operation("putIdTag", "Id tags", "Create or replace an id tag",
                             {"200": response("The id tag", ref("IdTag")), **errors(400, 422)},
                             body=ref("IdTagBody"), parameters=[ID_TAG]),
            "delete": operation("deleteIdTag", "Id tags", "Remove an id tag",
                                {"204": response("Removed"), **errors(404)}, parameters=[ID_TAG]),
        },
    }


add_section("common", _common_paths, COMMON_SCHEMAS)
add_section("chargers", _charger_paths, CHARGER_SCHEMAS)
add_section("transactions", _transaction_paths, TRANSACTION_SCHEMAS)
add_section("id_tags", _id_tag_paths, ID_TAG_SCHEMAS)


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


def _with_key_rules(method: str, op: dict) -> dict:
    """What the two kinds of key and the body limit add to an operation: GETs accept a read-only
    key; keyed operations that write can answer 403, and any that write 503 while the disk refuses
    writes; operations with a body can answer 413."""
    op = {**op, "responses": dict(op["responses"])}
    responses = op["responses"]
    keyed = op.get("security") != []
    if keyed and method == "get":
        op["security"] = [{"ApiKey": []}, {"ReadOnlyApiKey": []}]
    if keyed and method in _WRITE_METHODS:
        responses.setdefault("403", response(_ERROR_TEXT[403], ref("Error")))
    if method in _WRITE_METHODS:
        responses.setdefault("503", response(_ERROR_TEXT[503], ref("Error")))
    if "requestBody" in op:
        responses.setdefault("413", response(_ERROR_TEXT[413], ref("Error")))
    default = responses.pop("default", None)
    op["responses"] = dict(sorted(responses.items()))
    if default is not None:
        op["responses"]["default"] = default
    return op


def openapi_document() -> dict:
    """The whole document, assembled from every section registered so far."""
    paths: Paths = {}
    schemas: dict[str, Any] = {}
    for paths_fn, section_schemas in _SECTIONS.values():
        for path, item in paths_fn().items():
            paths.setdefault(path, {}).update({m: _with_key_rules(m, op) for m, op in item.items()})
        schemas.update(section_schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "evedge", "version": "1", "description": _DESCRIPTION},
        "security": [{"ApiKey": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": dict(sorted(schemas.items())),
        },
    }
