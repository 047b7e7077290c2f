"""REST resources for load management: circuits, what each connector gets and why, and the
operator's (or a DSO's) override of a circuit's limit."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import errors, openapi
from controller.load_management.manager import CircuitView, ConnectorTrack, LoadManager, Sent
from controller.timefmt import normalize


class LimitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    maxCurrentA: float = Field(ge=0, le=10_000, allow_inf_nan=False, strict=True)
    expiresAt: str | None = Field(None, strict=True)

    @field_validator("expiresAt")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        return None if value is None else normalize(value)


def _phases(values: Any) -> list[float] | None:
    return None if values is None else [round(float(v), 2) for v in values]


def profile_to_api(sent: Sent | None) -> dict[str, Any] | None:
    if sent is None:
        return None
    return {"kind": sent.kind, "limitA": sent.amps, "phases": sent.phases, "sentAt": sent.sent_at,
            "answer": sent.answer, "durationS": sent.duration_s}


def connector_to_api(track: ConnectorTrack) -> dict[str, Any]:
    share = track.share
    return {
        "chargeBoxId": track.charger_id,
        "connectorId": track.connector_id,
        "transactionId": track.transaction_id,
        "allocatedA": share.amps if share is not None else None,
        "reason": share.reason if share is not None else None,
        "drawnA": _phases(track.drawn),
        "drawnSource": track.drawn_source,
        "profile": profile_to_api(track.profile),
    }


def circuit_to_api(load: LoadManager, view: CircuitView) -> dict[str, Any]:
    c = view.config
    override = load.overrides.get(c.id)
    state = view.state
    chargers = []
    for charger_id in load.chargers_below(c.id):
        track = load.charger_tracks.get(charger_id)
        registered = load.chargers.get(charger_id)
        chargers.append({
            "chargeBoxId": charger_id,
            "online": registered is not None and registered.online,
            "controllable": track is None or track.uncontrollable is None,
            "uncontrollableReason": track.uncontrollable if track is not None else None,
            "defaultLimitA": track.wanted_default if track is not None else None,
            "defaultProfile": profile_to_api(track.default if track is not None else None),
        })
    return {
        "id": c.id,
        "parent": c.parent,
        "maxCurrentA": c.max_current_a,
        "marginA": c.margin_a,
        "limitA": load.effective_limit(c),
        "override": None if override is None else {
            "maxCurrentA": override.max_current_a, "expiresAt": override.expires_at, "createdAt": override.created_at},
        "meter": c.meter,
        "meterState": view.meter_state,
        "failsafe": state.failsafe,
        "failsafeReason": "meter stale" if state.failsafe else None,
        "failsafeCurrentA": c.failsafe_current_a,
        "measuredA": _phases(view.measured_a),
        "baseLoadA": _phases(state.base_a),
        "availableA": _phases(state.available_a),
        "allocatedA": _phases(state.allocated_a),
        "overLimitSeconds": round(view.over_limit_s, 3),
        "connectors": [connector_to_api(t) for t in view.connectors],
        "chargers": chargers,
    }


def register(app: QuartTrio, load: LoadManager) -> None:
    @app.get("/api/v1/circuits")
    async def list_circuits() -> Response:
        return jsonify({"circuits": [circuit_to_api(load, load.view(c.id)) for c in load.config.current.circuits]})

    @app.get("/api/v1/circuits/<circuit_id>")
    async def get_circuit(circuit_id: str) -> Response:
        return jsonify(circuit_to_api(load, load.view(circuit_id)))

    @app.put("/api/v1/circuits/<circuit_id>/limit")
    async def put_limit(circuit_id: str) -> Response:
        load.view(circuit_id)  # 404 before a body problem
        body = await errors.json_body(LimitBody)
        await load.set_override(circuit_id, body.maxCurrentA, body.expiresAt)
        return jsonify(circuit_to_api(load, load.view(circuit_id)))

    @app.delete("/api/v1/circuits/<circuit_id>/limit")
    async def delete_limit(circuit_id: str) -> tuple[str, int]:
        await load.clear_override(circuit_id)
        return "", 204


# -- OpenAPI -----------------------------------------------------------------------------------

_NUM = {"type": ["number", "null"]}
_PHASES = {"type": ["array", "null"], "items": {"type": "number"}, "minItems": 3, "maxItems": 3,
           "description": "L1, L2, L3 in A"}
_STR = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "LimitProfile": {
        "type": "object",
        "description": "The limit last sent to the charger and its answer",
        "required": ["kind", "limitA", "phases", "sentAt", "answer"],
        "properties": {
            "kind": {"type": "string", "enum": ["default", "transaction"],
                     "description": "default: the charger's fallback for every charge (no duration); "
                                    "transaction: the running charge's limit, with a duration, renewed"},
            "limitA": {"type": "number", "minimum": 0},
            "phases": {"type": "integer", "enum": [1, 3]},
            "sentAt": {"type": "string", "format": "date-time"},
            "answer": {"type": "string", "description": "accepted, rejected, no answer, offline, "
                                                        "or error: <the charger's error code>"},
            "durationS": {"type": ["integer", "null"]},
        },
    },
    "CircuitConnector": {
        "type": "object",
        "required": ["chargeBoxId", "connectorId", "transactionId", "allocatedA", "reason", "drawnA",
                     "drawnSource", "profile"],
        "properties": {
            "chargeBoxId": {"type": "string"},
            "connectorId": {"type": "integer", "minimum": 1},
            "transactionId": {"type": "integer"},
            "allocatedA": {**_NUM, "description": "The connector's share per phase (0: paused)"},
            "reason": {**_STR, "description": "fair share, charger max, car draws less, paused: not enough "
                                              "capacity, failsafe: meter stale, uncontrollable, offline: "
                                              "allocation reserved, unconfirmed: limit reserved, override, "
                                              "surplus, surplus: waiting for export"},
            "drawnA": {**_PHASES, "description": "What it draws on the grid's phases"},
            "drawnSource": {"type": "string", "enum": ["connector meter", "charger", "assumed"],
                            "description": "assumed: no fresh reading, taken to draw the limit in force"},
            "profile": {"oneOf": [openapi.ref("LimitProfile"), {"type": "null"}]},
        },
    },
    "CircuitCharger": {
        "type": "object",
        "required": ["chargeBoxId", "online", "controllable", "uncontrollableReason", "defaultLimitA",
                     "defaultProfile"],
        "properties": {
            "chargeBoxId": {"type": "string"},
            "online": {"type": "boolean"},
            "controllable": {"type": "boolean", "description": "false: it refused a limit or draws over it; "
                                                               "its max current is reserved"},
            "uncontrollableReason": _STR,
            "defaultLimitA": {**_NUM, "description": "The default limit it should hold"},
            "defaultProfile": {"oneOf": [openapi.ref("LimitProfile"), {"type": "null"}]},
        },
    },
    "Circuit": {
        "type": "object",
        "required": ["id", "parent", "maxCurrentA", "marginA", "limitA", "override", "meter", "meterState",
                     "failsafe", "failsafeReason", "measuredA", "baseLoadA", "availableA", "allocatedA",
                     "overLimitSeconds", "connectors", "chargers"],
        "properties": {
            "id": {"type": "string"},
            "parent": _STR,
            "maxCurrentA": {"type": "number", "description": "Configured limit per phase (the fuse)"},
            "marginA": {"type": "number"},
            "limitA": {"type": "number", "description": "The limit in force (an override applied)"},
            "override": {"oneOf": [{"type": "null"}, {
                "type": "object", "required": ["maxCurrentA", "expiresAt", "createdAt"],
                "properties": {"maxCurrentA": {"type": "number"}, "expiresAt": _TIME,
                               "createdAt": {"type": "string", "format": "date-time"}}}]},
            "meter": _STR,
            "meterState": {"type": "string", "enum": ["ok", "stale", "none"]},
            "failsafe": {"type": "boolean"},
            "failsafeReason": _STR,
            "failsafeCurrentA": {"type": "number"},
            "measuredA": {**_PHASES, "description": "What the meter measures (negative: export); null: stale "
                                                    "or no meter"},
            "baseLoadA": {**_PHASES, "description": "Measured minus what the managed connectors draw"},
            "availableA": {**_PHASES, "description": "For the managed connectors: limit - margin - base load"},
            "allocatedA": {**_PHASES, "description": "The sum of the connectors' shares"},
            "overLimitSeconds": {"type": "number", "description": "Time measured over the limit since start"},
            "connectors": {"type": "array", "items": openapi.ref("CircuitConnector")},
            "chargers": {"type": "array", "items": openapi.ref("CircuitCharger")},
        },
    },
    "CircuitList": {"type": "object", "required": ["circuits"],
                    "properties": {"circuits": {"type": "array", "items": openapi.ref("Circuit")}}},
    "CircuitLimitRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["maxCurrentA"],
        "properties": {
            "maxCurrentA": {"type": "number", "minimum": 0, "maximum": 10000,
                            "description": "Per phase; not above the circuit's configured max_current_a"},
            "expiresAt": {"type": ["string", "null"], "format": "date-time",
                          "description": "With a time zone; in the future. Absent or null: until lifted"},
        },
    },
}

CIRCUIT_ID = {**openapi.path_param("circuitId", {"type": "string"}, "The circuit's id in the config"),
              "example": "main"}


def _paths() -> openapi.Paths:
    op, response, ref, errs = openapi.operation, openapi.response, openapi.ref, openapi.errors
    return {
        "/api/v1/circuits": {"get": op(
            "listCircuits", "Load management", "Circuits ([[circuits]]) with measurements and every share",
            {"200": response("The circuits, in config order", ref("CircuitList")), **errs()})},
        "/api/v1/circuits/{circuitId}": {"get": op(
            "getCircuit", "Load management", "One circuit: limit, measurements, each connector's share and why",
            {"200": response("The circuit", ref("Circuit")), **errs(404)}, parameters=[CIRCUIT_ID])},
        "/api/v1/circuits/{circuitId}/limit": {
            "put": op("putCircuitLimit", "Load management",
                      "Lower a circuit's limit until a time (demand response, a DSO's dimming signal)",
                      {"200": response("The circuit with the override (shares follow within a loop)",
                                       ref("Circuit")), **errs(400, 404, 422)},
                      body=ref("CircuitLimitRequest"), parameters=[CIRCUIT_ID],
                      description="Stored: survives a restart until it expires. Needs an operator key."),
            "delete": op("deleteCircuitLimit", "Load management", "Lift the override: the configured limit again",
                         {"204": response("Lifted (or there was none)"), **errs(404)}, parameters=[CIRCUIT_ID]),
        },
    }


openapi.add_section("circuits", _paths, SCHEMAS)
