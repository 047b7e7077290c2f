"""REST resource for local-controller mode: each charger's link to the central system above the
site (connected, since, queued messages, its boot answer, the last error)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import models, openapi

UpstreamLinks = Callable[[], Awaitable[list[dict[str, Any]]]]


def register(app: QuartTrio, links: UpstreamLinks | None) -> None:
    @app.get("/api/v1/upstream")
    async def upstream_links() -> Response:
        return jsonify({"enabled": links is not None, "chargers": await links() if links is not None else []})


SECTION = openapi.Section({
    "/api/v1/upstream": {"get": openapi.operation(
        "upstreamLinks", "Upstream",
        "Local-controller mode: each charger's link to the central system above the site",
        {"200": openapi.response("The links", models.UpstreamLinks), **openapi.errors()})},
})
