"""REST resources for the site's hardware (drivers/): energy meters and card readers.

The drivers hand out plain states (snake_case fields, datetimes, tuples); the API's shape
(camelCase keys, ISO 8601 timestamps via `controller.timefmt`, lists) is made here, next to the
schemas that document it, so that the drivers know nothing of the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import openapi
from controller.api.errors import not_found
from controller.timefmt import iso
from drivers import MeterState, ReaderState

if TYPE_CHECKING:
    from controller.site import Site


def _phases(values: tuple[float | None, ...] | None) -> list[float | None] | None:
    return None if values is None else list(values)


def meter_to_api(state: MeterState) -> dict[str, Any]:
    """A meter's snapshot as the `Meter` schema below."""
    return {
        "id": state.id,
        "model": state.model,
        "bus": state.bus,
        "role": state.role,
        "charger": state.charger,
        "connector": state.connector,
        "online": state.online,
        "lastError": state.last_error,
        "energyImportWh": state.energy_import_wh,
        "energyExportWh": state.energy_export_wh,
        "powerW": state.power_w,
        "voltageV": _phases(state.voltage_v),
        "currentA": _phases(state.current_a),
        "phasePowerW": _phases(state.phase_power_w),
        "updatedAt": iso(state.updated_at) if state.updated_at else None,
    }


def reader_to_api(state: ReaderState, last_tap_result: dict[str, Any] | None) -> dict[str, Any]:
    """A reader's state and what its last tap did (`TapToCharge.results`) as the `Reader` schema."""
    return {
        "id": state.id,
        "kind": state.kind,
        "charger": state.charger,
        "connector": state.connector,
        "connected": state.connected,
        "lastError": state.last_error,
        "lastTapAt": iso(state.last_tap_at) if state.last_tap_at else None,
        "lastIdTag": state.last_id_tag,
        "taps": state.taps,
        "badFrames": state.bad_frames,
        "noiseBytes": state.noise_bytes,
        "reconnects": state.reconnects,
        "lastTapResult": last_tap_result,
    }


def register(app: QuartTrio, site: Site) -> None:
    def reader(reader_id: str) -> dict[str, Any]:
        return reader_to_api(site.hardware.readers[reader_id].state, site.tap_to_charge.results.get(reader_id))

    @app.get("/api/v1/meters")
    async def list_meters() -> Response:
        return jsonify({"meters": [meter_to_api(m.state) for m in site.hardware.meters.values()]})

    @app.get("/api/v1/meters/<meter_id>")
    async def get_meter(meter_id: str) -> Response:
        meter = site.hardware.meters.get(meter_id)
        if meter is None:
            raise not_found("Meter", meter_id)
        return jsonify(meter_to_api(meter.state))

    @app.get("/api/v1/readers")
    async def list_readers() -> Response:
        return jsonify({"readers": [reader(r) for r in site.hardware.readers]})

    @app.get("/api/v1/readers/<reader_id>")
    async def get_reader(reader_id: str) -> Response:
        if reader_id not in site.hardware.readers:
            raise not_found("Reader", reader_id)
        return jsonify(reader(reader_id))


_NUM = {"type": ["number", "null"]}
_PHASES = {"type": ["array", "null"], "items": _NUM}
_STR = {"type": ["string", "null"]}
_INT = {"type": ["integer", "null"]}
_TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Meter": {
        "type": "object",
        "required": ["id", "model", "bus", "role", "online", "energyImportWh", "updatedAt"],
        "properties": {
            "id": {"type": "string"},
            "model": {"type": "string"},
            "bus": {"type": "string"},
            "role": {"type": "string", "enum": ["site", "connector"]},
            "charger": _STR,
            "connector": _INT,
            "online": {"type": "boolean"},
            "lastError": _STR,
            "energyImportWh": _NUM,
            "energyExportWh": _NUM,
            "powerW": _NUM,
            "voltageV": _PHASES,
            "currentA": _PHASES,
            "phasePowerW": _PHASES,
            "updatedAt": {**_TIME, "description": "When the readings were polled (kept while offline)"},
        },
    },
    "MeterList": {"type": "object", "required": ["meters"],
                  "properties": {"meters": {"type": "array", "items": openapi.ref("Meter")}}},
    "TapResult": {
        "type": "object",
        "required": ["result", "message", "idTag", "at"],
        "properties": {
            "result": {"type": "string", "description": "Started, Stopped, Rejected (idTagStatus says why), "
                       "InProgress, Occupied, NotAssigned, Error, or the API error code of a failed call "
                       "(ChargerOffline, ChargerRejected, ChargerTimeout, ConnectorNotAvailable...)"},
            "message": {"type": "string"},
            "idTag": {"type": "string"},
            "idTagStatus": _STR,
            "transactionId": _INT,
            "at": {"type": "string", "format": "date-time"},
        },
    },
    "Reader": {
        "type": "object",
        "required": ["id", "kind", "connected", "taps", "lastTapResult"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"type": "string"},
            "charger": _STR,
            "connector": _INT,
            "connected": {"type": "boolean"},
            "lastError": _STR,
            "lastTapAt": _TIME,
            "lastIdTag": _STR,
            "taps": {"type": "integer", "minimum": 0},
            "badFrames": {"type": "integer", "minimum": 0},
            "noiseBytes": {"type": "integer", "minimum": 0},
            "reconnects": {"type": "integer", "minimum": 0},
            "lastTapResult": {"oneOf": [openapi.ref("TapResult"), {"type": "null"}],
                              "description": "What the last tap did (null before the first tap)"},
        },
    },
    "ReaderList": {"type": "object", "required": ["readers"],
                   "properties": {"readers": {"type": "array", "items": openapi.ref("Reader")}}},
}

METER_ID = openapi.path_param("meterId", {"type": "string"}, "The meter's id in the config")
READER_ID = openapi.path_param("readerId", {"type": "string"}, "The reader's id in the config")


def _paths() -> openapi.Paths:
    op, response, ref, errors = openapi.operation, openapi.response, openapi.ref, openapi.errors
    return {
        "/api/v1/meters": {"get": op(
            "listMeters", "Hardware", "Energy meters ([[meters]]) with their latest readings",
            {"200": response("The meters, in config order", ref("MeterList")), **errors()})},
        "/api/v1/meters/{meterId}": {"get": op(
            "getMeter", "Hardware", "One energy meter",
            {"200": response("The meter", ref("Meter")), **errors(404)}, parameters=[METER_ID])},
        "/api/v1/readers": {"get": op(
            "listReaders", "Hardware", "Card readers ([[readers]]) with their state and last tap's outcome",
            {"200": response("The readers, in config order", ref("ReaderList")), **errors()})},
        "/api/v1/readers/{readerId}": {"get": op(
            "getReader", "Hardware", "One card reader",
            {"200": response("The reader", ref("Reader")), **errors(404)}, parameters=[READER_ID])},
    }


openapi.add_section("hardware", _paths, SCHEMAS)
