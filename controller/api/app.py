"""The REST API (Quart on Trio), served by hypercorn inside the controller's nursery.

This module makes the app: the hooks every request passes (API keys, CORS, the body limit), the
resources (one module each, with its routes and its OpenAPI section) and the document built from
exactly those sections.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from controller.api import auth, chargers, circuits, errors, hardware, id_tags, notifications, openapi, system, transactions
from controller.api import charger_upkeep, reservations, upstream
from controller.api.errors import Problem
from controller.api.http_server import ConnectionGate, serve
from controller.api.limits import RequestLimit
from controller.api.services import Services
from controller.config import parse_listen
from controller.dashboard import Dashboard
from controller.public_charging import api as public_charging

log = logging.getLogger("evedge.api")
MAX_BODY_BYTES = 64 * 1024
"""Larger request bodies answer 413, by Content-Length before anything is read, or while reading."""
BODY_TIMEOUT_S = 10
"""A request body that takes longer to arrive answers 408: a slow client cannot hold a turn."""

SECTIONS = (system.SECTION, chargers.SECTION, transactions.SECTION, id_tags.SECTION, hardware.SECTION,
            circuits.SECTION, notifications.SECTION, public_charging.SECTION, reservations.SECTION,
            charger_upkeep.SECTION, upstream.SECTION)
"""The document's sections, one per resource module `create_app` registers."""


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document, built once per process and shared (read it, never change
    it): it depends on the code alone, and building it was most of an app's creation."""
    return openapi.build_document(SECTIONS)


async def drain_body(response: Response) -> None:
    """Read what is left of the request body before answering.

    An answer given before the body has arrived (a 401, a 404, a 429) otherwise leaves hypercorn's
    keep-alive connection stuck: the client's next request on it never gets an answer. A body that
    cannot be read (too large, too slow) closes the connection instead.
    """
    if not request.content_length and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    try:
        await request.get_data()  # cached: free when the view has read it already
    except HTTPException:
        response.headers["Connection"] = "close"


def create_app(services: Services, dashboard: Dashboard | None = None) -> QuartTrio:
    """`dashboard`: the installer's web pages at `/` (they check their own sign-in sessions)."""
    app = QuartTrio("evedge")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["BODY_TIMEOUT"] = BODY_TIMEOUT_S
    app.json.sort_keys = False
    errors.install(app)
    live = services.config  # read `.current` per request: a SIGHUP reload changes keys and origins

    def is_public() -> bool:
        if request.path in system.PUBLIC_PATHS or request.path.startswith(public_charging.PUBLIC_PREFIXES):
            return True
        if dashboard is not None and dashboard.owns(request.path):
            return True  # signed-in sessions, checked by the dashboard (controller/dashboard/guard.py)
        return request.path == system.METRICS_PATH and not live.current.api.metrics_require_api_key

    limit = RequestLimit(live)

    @app.before_request
    async def _admit() -> None:
        """Chargers come first: a bounded number of API requests is handled at a time."""
        await limit.admit(request._get_current_object())  # type: ignore[attr-defined]
        g.admitted = True

    @app.teardown_request
    async def _release(_error: BaseException | None) -> None:
        if g.pop("admitted", False):
            limit.release(request._get_current_object())  # type: ignore[attr-defined]

    @app.before_request
    async def _guard() -> Response | None:
        api = live.current.api
        if auth.is_preflight(request):
            return auth.preflight(api, request)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise Problem(413, "PayloadTooLarge", f"the request body is larger than {MAX_BODY_BYTES} bytes")
        if not is_public():
            try:
                auth.authorize(api, request)
            except Problem as problem:
                log.info("API %s %s from %s refused: %s", request.method, request.path, request.remote_addr,
                         problem.message)  # never the key itself
                raise
        return None

    @app.after_request
    async def _finish(response: Response) -> Response:
        await drain_body(response)
        return auth.add_cors_headers(live.current.api, request, response)

    system.register(app, services.health, services.metrics, openapi_document())
    chargers.register(app, services.chargers, services.transactions)
    transactions.register(app, services.transactions, services.config)
    id_tags.register(app, services.authorization)
    hardware.register(app, services.hardware, services.tap_results)
    circuits.register(app, services.load)
    notifications.register(app, services.delivery)
    public_charging.register(app, services.public_charging, services.public_limits,
                             lambda: tuple(live.current.public_charging.trusted_proxies))
    reservations.register(app, services.chargers, services.reservations)
    charger_upkeep.register(app, services.chargers, services.profiles, services.maintenance, services.passwords)
    upstream.register(app, services.upstream_links)
    if dashboard is not None:
        dashboard.register(app)
    return app


async def serve_api(services: Services, gate: ConnectionGate, shutdown: trio.Event, dashboard: Dashboard | None = None,
                    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the API on `[api] listen` until `shutdown` is set; reports the bound addresses.
    `gate` caps the open connections (controller/api/http_server.py)."""
    host, port = parse_listen(services.config.current.api.listen)
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("evedge.http")
    config.graceful_timeout = 2
    await serve(create_app(services, dashboard), config, gate, shutdown, task_status=task_status)
