"""The public listener ([public_charging] listen): the driver page and the driver's API, and
nothing else, on an address that drivers' phones reach from mobile data.

It is a second hypercorn server in the controller's nursery with an app of its own: the operator's
API (keys, chargers, transactions) is not on it at all, so a mistake in key handling cannot open
it to the internet. With [public_charging] tls_cert/tls_key it speaks HTTPS itself; otherwise
put a reverse proxy that does in front (docs/public-charging.md) and list it in trusted_proxies.
"""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config as HypercornConfig
from quart import Response
from quart_trio import QuartTrio

from controller.api import errors
from controller.api.app import MAX_BODY_BYTES, drain_body
from controller.api.http_server import ConnectionGate, serve
from controller.api.services import Services
from controller.config import parse_listen
from controller.public_charging import api as public_charging

log = logging.getLogger("evedge.api")


def create_public_app(services: Services) -> QuartTrio:
    app = QuartTrio("evedge-public")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    errors.install(app)
    live = services.config

    @app.after_request
    async def _finish(response: Response) -> Response:
        await drain_body(response)
        return response

    public_charging.register_driver(app, services.public_charging, services.public_limits,
                                    lambda: tuple(live.current.public_charging.trusted_proxies))
    return app


async def serve_public(services: Services, gate: ConnectionGate, shutdown: trio.Event,
                       task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    """Serve the driver's routes on [public_charging] listen until `shutdown`; reports the bound
    addresses. The same server as the API's (controller/api/http_server.py): closed what the client
    closes, its connections capped by `gate`."""
    current = services.config.current
    host, port = parse_listen(current.public_charging.listen or "")
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    tls = current.public_tls_files
    if tls is not None:
        config.certfile, config.keyfile = (str(path) for path in tls)
    config.accesslog = None
    config.errorlog = logging.getLogger("evedge.http")
    config.graceful_timeout = 2
    await serve(create_public_app(services), config, gate, shutdown, task_status=task_status)
