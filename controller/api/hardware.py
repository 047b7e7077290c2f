"""REST resources for the site's hardware (drivers/): energy meters and card readers.

The drivers hand out plain states (snake_case fields, datetimes, tuples); the API's shape
(camelCase keys, ISO 8601 timestamps via `controller.timefmt`, lists: models.Meter and
models.Reader) is made here, so that the drivers know nothing of the API. A reader's body adds the
outcome of its last tap, which tap-to-charge keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import models, openapi
from controller.api.errors import not_found
from controller.timefmt import iso
from drivers import Hardware, MeterState, ReaderState

TapResults = Mapping[str, dict[str, Any]]
"""Reader id -> its last tap's outcome in the API's shape (controller/tap_to_charge.py)."""


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


def register(app: QuartTrio, hardware: Hardware, tap_results: TapResults) -> None:
    @app.get("/api/v1/meters")
    async def list_meters() -> Response:
        return jsonify({"meters": [meter_to_api(m.state) for m in hardware.meters.values()]})

    @app.get("/api/v1/meters/<meter_id>")
    async def get_meter(meter_id: str) -> Response:
        meter = hardware.meters.get(meter_id)
        if meter is None:
            raise not_found("Meter", meter_id)
        return jsonify(meter_to_api(meter.state))

    @app.get("/api/v1/readers")
    async def list_readers() -> Response:
        return jsonify({"readers": [reader_to_api(r.state, tap_results.get(r.state.id)) for r in hardware.readers.values()]})

    @app.get("/api/v1/readers/<reader_id>")
    async def get_reader(reader_id: str) -> Response:
        reader = hardware.readers.get(reader_id)
        if reader is None:
            raise not_found("Reader", reader_id)
        return jsonify(reader_to_api(reader.state, tap_results.get(reader.state.id)))


# -- the OpenAPI section -------------------------------------------------------------------------

METER_ID = openapi.path_param("meterId", {"type": "string"}, "The meter's id in the config")
READER_ID = openapi.path_param("readerId", {"type": "string"}, "The reader's id in the config")
_op, _response, _errors = openapi.operation, openapi.response, openapi.errors

SECTION = openapi.Section({
    "/api/v1/meters": {"get": _op(
        "listMeters", "Hardware", "Energy meters ([[meters]]) with their latest readings",
        {"200": _response("The meters, in config order", models.MeterList), **_errors()})},
    "/api/v1/meters/{meterId}": {"get": _op(
        "getMeter", "Hardware", "One energy meter",
        {"200": _response("The meter", models.Meter), **_errors(404)}, parameters=[METER_ID])},
    "/api/v1/readers": {"get": _op(
        "listReaders", "Hardware", "Card readers ([[readers]]) with their state and last tap's outcome",
        {"200": _response("The readers, in config order", models.ReaderList), **_errors()})},
    "/api/v1/readers/{readerId}": {"get": _op(
        "getReader", "Hardware", "One card reader",
        {"200": _response("The reader", models.Reader), **_errors(404)}, parameters=[READER_ID])},
})
