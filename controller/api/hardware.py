"""REST resources for the site's hardware (drivers/): energy meters and card readers.

A meter's body is its driver state's `to_api()` (models.Meter); a reader's is its state's plus
the outcome of its last tap (models.Reader), which tap-to-charge keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import models, openapi
from controller.api.errors import not_found
from drivers import Hardware, Reader

TapResults = Mapping[str, dict[str, Any]]
"""Reader id -> its last tap's outcome in the API's shape (controller/tap_to_charge.py)."""


def reader_to_api(reader: Reader, tap_results: TapResults) -> dict[str, Any]:
    """A card reader as models.Reader."""
    body = reader.state.to_api()
    body["lastTapResult"] = tap_results.get(reader.state.id)
    return body


def register(app: QuartTrio, hardware: Hardware, tap_results: TapResults) -> None:
    @app.get("/api/v1/meters")
    async def list_meters() -> Response:
        return jsonify({"meters": [m.state.to_api() for m in hardware.meters.values()]})

    @app.get("/api/v1/meters/<meter_id>")
    async def get_meter(meter_id: str) -> Response:
        meter = hardware.meters.get(meter_id)
        if meter is None:
            raise not_found("Meter", meter_id)
        return jsonify(meter.state.to_api())

    @app.get("/api/v1/readers")
    async def list_readers() -> Response:
        return jsonify({"readers": [reader_to_api(r, tap_results) for r in hardware.readers.values()]})

    @app.get("/api/v1/readers/<reader_id>")
    async def get_reader(reader_id: str) -> Response:
        reader = hardware.readers.get(reader_id)
        if reader is None:
            raise not_found("Reader", reader_id)
        return jsonify(reader_to_api(reader, tap_results))


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
