"""REST resources for the site's hardware (drivers/): energy meters and card readers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import openapi
from controller.api.errors import not_found

if TYPE_CHECKING:
    from controller.site import Site


def reader_to_api(site: Site, reader_id: str) -> dict[str, Any]:
    body = site.hardware.readers[reader_id].state.to_api()
    body["lastTapResult"] = site.tap_to_charge.results.get(reader_id)
    return body


def register(app: QuartTrio, site: Site) -> None:
    @app.get("/api/v1/meters")
    async def list_meters() -> Response:
        return jsonify({"meters": [m.state.to_api() for m in site.hardware.meters.values()]})

    @app.get("/api/v1/meters/<meter_id>")
    async def get_meter(meter_id: str) -> Response:
        meter = site.hardware.meters.get(meter_id)
        if meter is None:
            raise not_found("Meter", meter_id)
        return jsonify(meter.state.to_api())

    @app.get("/api/v1/readers")
    async def list_readers() -> Response:
        return jsonify({"readers": [reader_to_api(site, r) for r in site.hardware.readers]})

    @app.get("/api/v1/readers/<reader_id>")
    async def get_reader(reader_id: str) -> Response:
        if reader_id not in site.hardware.readers:
            raise not_found("Reader", reader_id)
        return jsonify(reader_to_api(site, reader_id))


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
