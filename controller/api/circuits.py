"""REST resources for load management: circuits, what each connector gets and why, and the
operator's (or a DSO's) override of a circuit's limit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import errors, openapi
from controller.api.models import ResponseBody, Timestamp
from controller.load_management.manager import CircuitView, ConnectorTrack, LoadManager, Sent
from controller.timefmt import normalize


class LimitBody(BaseModel):
    """An override of a circuit's limit (demand response, a DSO's dimming signal)."""

    model_config = ConfigDict(extra="forbid")
    maxCurrentA: float = Field(ge=0, le=10_000, allow_inf_nan=False, strict=True,
                               description="Per phase; not above the circuit's configured max_current_a")
    expiresAt: str | None = Field(None, strict=True, json_schema_extra={"format": "date-time"},
                                  description="With a time zone; in the future. Absent or null: until lifted")

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


# -- response models (the OpenAPI document's schemas) ----------------------------------------------

Phases = list[float] | None  # L1, L2, L3 in A


class LimitProfile(ResponseBody):
    """The limit last sent to the charger and its answer."""

    kind: Literal["default", "transaction"] = Field(
        description="default: the charger's fallback for every charge (no duration); "
                    "transaction: the running charge's limit, with a duration, renewed")
    limitA: float = Field(ge=0)
    phases: Literal[1, 3]
    sentAt: Timestamp
    answer: str = Field(description="accepted, rejected, no answer, offline, or error: <the charger's error code>")
    durationS: int | None


class CircuitConnector(ResponseBody):
    chargeBoxId: str
    connectorId: int = Field(ge=1)
    transactionId: int
    allocatedA: float | None = Field(description="The connector's share per phase (0: paused)")
    reason: str | None = Field(description="fair share, charger max, car draws less, paused: not enough capacity, "
                                           "failsafe: meter stale, uncontrollable, offline: allocation reserved, "
                                           "unconfirmed: limit reserved, override, surplus, surplus: waiting for "
                                           "export")
    drawnA: Phases = Field(description="What it draws on the grid's phases")
    drawnSource: Literal["connector meter", "charger", "assumed"] = Field(
        description="assumed: no fresh reading, taken to draw the limit in force")
    profile: LimitProfile | None


class CircuitCharger(ResponseBody):
    chargeBoxId: str
    online: bool
    controllable: bool = Field(description="false: it refused a limit or draws over it; its max current is reserved")
    uncontrollableReason: str | None
    defaultLimitA: float | None = Field(description="The default limit it should hold")
    defaultProfile: LimitProfile | None


class CircuitOverride(ResponseBody):
    maxCurrentA: float
    expiresAt: Timestamp | None
    createdAt: Timestamp


class Circuit(ResponseBody):
    id: str
    parent: str | None
    maxCurrentA: float = Field(description="Configured limit per phase (the fuse)")
    marginA: float
    limitA: float = Field(description="The limit in force (an override applied)")
    override: CircuitOverride | None
    meter: str | None
    meterState: Literal["ok", "stale", "none"]
    failsafe: bool
    failsafeReason: str | None
    failsafeCurrentA: float
    measuredA: Phases = Field(description="What the meter measures (negative: export); null: stale or no meter")
    baseLoadA: Phases = Field(description="Measured minus what the managed connectors draw")
    availableA: Phases = Field(description="For the managed connectors: limit - margin - base load")
    allocatedA: Phases = Field(description="The sum of the connectors' shares")
    overLimitSeconds: float = Field(description="Time measured over the limit since start")
    connectors: list[CircuitConnector]
    chargers: list[CircuitCharger]


class CircuitList(ResponseBody):
    circuits: list[Circuit]


# -- the OpenAPI section -------------------------------------------------------------------------

CIRCUIT_ID = {**openapi.path_param("circuitId", {"type": "string"}, "The circuit's id in the config"),
              "example": "main"}
_op, _response, _errors = openapi.operation, openapi.response, openapi.errors

SECTION = openapi.Section({
    "/api/v1/circuits": {"get": _op(
        "listCircuits", "Load management", "Circuits ([[circuits]]) with measurements and every share",
        {"200": _response("The circuits, in config order", CircuitList), **_errors()})},
    "/api/v1/circuits/{circuitId}": {"get": _op(
        "getCircuit", "Load management", "One circuit: limit, measurements, each connector's share and why",
        {"200": _response("The circuit", Circuit), **_errors(404)}, parameters=[CIRCUIT_ID])},
    "/api/v1/circuits/{circuitId}/limit": {
        "put": _op("putCircuitLimit", "Load management",
                   "Lower a circuit's limit until a time (demand response, a DSO's dimming signal)",
                   {"200": _response("The circuit with the override (shares follow within a loop)", Circuit),
                    **_errors(400, 404, 422)},
                   body=LimitBody, parameters=[CIRCUIT_ID],
                   description="Stored: survives a restart until it expires. Needs an operator key."),
        "delete": _op("deleteCircuitLimit", "Load management", "Lift the override: the configured limit again",
                      {"204": _response("Lifted (or there was none)"), **_errors(404)}, parameters=[CIRCUIT_ID]),
    },
})
