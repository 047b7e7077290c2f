"""The controller's own endpoints: /healthz for probes, /metrics for Prometheus, and this API's
OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller import metrics as prometheus
from controller.api import models, openapi

HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
OPENAPI_PATH = "/api/v1/openapi.json"
PUBLIC_PATHS = (HEALTH_PATH, OPENAPI_PATH)
"""Answered without a key: probes and clients must reach them before they have one. /metrics is
public too unless api.metrics_require_api_key (controller/api/app.py decides per request)."""


def register(app: QuartTrio, health: Callable[[], Awaitable[dict[str, Any]]],
             metrics: Callable[[], Awaitable[bytes]], document: dict[str, Any]) -> None:
    """`health` and `metrics` are the site's (controller/health.py check, controller/metrics.py
    render, bound to its parts); `document` is served as it is (it never changes while running)."""

    @app.get(HEALTH_PATH)
    async def healthz() -> tuple[Response, int]:
        body = await health()
        return jsonify(body), 503 if body.get("status") == "failing" else 200

    @app.get(METRICS_PATH)
    async def prometheus_metrics() -> Response:
        return Response(await metrics(), content_type=prometheus.CONTENT_TYPE)

    @app.get(OPENAPI_PATH)
    async def openapi_json() -> Response:
        return jsonify(document)


# -- the OpenAPI section -------------------------------------------------------------------------

SECTION = openapi.Section({
    HEALTH_PATH: {"get": openapi.operation(
        "health", "System", "Liveness and the number of connected chargers",
        {"200": openapi.response("The controller can do its job (status ok or degraded)", models.Health),
         "503": openapi.response("A check is failing", models.Health)}, public=True)},
    METRICS_PATH: {"get": openapi.operation(
        "metrics", "System", "Prometheus metrics (text exposition format)",
        {"200": openapi.response("Metrics", {"type": "string"}, media="text/plain"), **openapi.errors()},
        description="Requires the X-API-Key unless api.metrics_require_api_key is false.")},
    OPENAPI_PATH: {"get": openapi.operation(
        "openapi", "System", "This document",
        {"200": openapi.response("The OpenAPI 3.1 document", {"type": "object"})}, public=True)},
})
