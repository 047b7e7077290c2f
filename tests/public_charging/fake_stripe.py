"""A local HTTP server implementing the few Stripe endpoints evedge uses, plus test-only controls.

POST /v1/payment_intents (form: amount, currency, capture_method=manual), GET /v1/payment_intents/{id},
POST /v1/payment_intents/{id}/capture (amount_to_capture), POST /v1/payment_intents/{id}/cancel.
Idempotency-Key replays the first answer, as Stripe does. The test drives the browser side with
`confirm(id)` (the driver's card is accepted: requires_capture) and `decline(id)`.

`BreakingProxy` sits between the controller and the server and can reset connections, for
genuine network errors.
"""

from __future__ import annotations

import itertools
import socket
import struct
from dataclasses import dataclass, field

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart import jsonify, request
from quart_trio import QuartTrio

SECRET = "sk_test_evedge"
PUBLISHABLE = "pk_test_evedge"


@dataclass
class FakeStripe:
    intents: dict[str, dict] = field(default_factory=dict)
    idempotent: dict[tuple[str, str], tuple[int, dict]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict, str | None]] = field(default_factory=list)
    captures: list[tuple[str, int]] = field(default_factory=list)  # performed captures (not replays)
    fail_capture: str | None = None  # a decline code: the next captures answer 402
    fail_status: int | None = None  # answer every request with this status (e.g. 503)
    capture_delay_s: float = 0.0  # after performing a capture, wait this long before answering
    port: int = 0
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # test-only controls: what the driver's browser would do through stripe.js
    def confirm(self, intent_id: str) -> None:
        self.intents[intent_id].update(status="requires_capture", amount_capturable=self.intents[intent_id]["amount"],
                                       last_payment_error=None)

    def decline(self, intent_id: str, code: str = "card_declined") -> None:
        self.intents[intent_id].update(status="requires_payment_method", last_payment_error={
            "type": "card_error", "code": "card_declined", "decline_code": code, "message": "Your card was declined."})

    def last_intent(self) -> dict:
        return list(self.intents.values())[-1]

    def app(self) -> QuartTrio:
        app = QuartTrio("fake-stripe")

        def error(status: int, type_: str, code: str, message: str):
            return {"error": {"type": type_, "code": code, "message": message}}, status

        async def handle(kind: str, intent_id: str | None):
            form = dict((await request.form).items())
            key = request.headers.get("Idempotency-Key")
            self.requests.append((request.method, request.path, form, key))
            if request.headers.get("Authorization") != f"Bearer {SECRET}":
                return error(401, "invalid_request_error", "api_key_invalid", "bad key")
            if self.fail_status is not None:
                return error(self.fail_status, "api_error", "unavailable", "try later")
            if key and request.method == "POST" and (kind, key) in self.idempotent:
                status, body = self.idempotent[(kind, key)]
                return body, status
            status, body = await self._perform(kind, intent_id, form)
            if key and request.method == "POST":
                self.idempotent[(kind, key)] = (status, body)
            if kind == "capture" and status == 200 and self.capture_delay_s:
                await trio.sleep(self.capture_delay_s)
            return body, status

        @app.post("/v1/payment_intents")
        async def create():
            body, status = await handle("create", None)
            return jsonify(body), status

        @app.get("/v1/payment_intents/<intent_id>")
        async def get(intent_id: str):
            body, status = await handle("get", intent_id)
            return jsonify(body), status

        @app.post("/v1/payment_intents/<intent_id>/capture")
        async def capture(intent_id: str):
            body, status = await handle("capture", intent_id)
            return jsonify(body), status

        @app.post("/v1/payment_intents/<intent_id>/cancel")
        async def cancel(intent_id: str):
            body, status = await handle("cancel", intent_id)
            return jsonify(body), status

        return app

    async def _perform(self, kind: str, intent_id: str | None, form: dict) -> tuple[int, dict]:
        if kind == "create":
            if form.get("capture_method") != "manual" or not form.get("amount", "").isdigit():
                return 400, {"error": {"type": "invalid_request_error", "code": "parameter_invalid"}}
            n = next(self._ids)
            intent = {"id": f"pi_{n:06d}", "object": "payment_intent", "amount": int(form["amount"]),
                      "currency": form["currency"], "capture_method": "manual", "status": "requires_payment_method",
                      "client_secret": f"pi_{n:06d}_secret_{n}", "amount_capturable": 0, "amount_received": 0,
                      "last_payment_error": None,
                      "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")}}
            self.intents[intent["id"]] = intent
            return 200, dict(intent)
        intent = self.intents.get(intent_id or "")
        if intent is None:
            return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
        if kind == "get":
            return 200, dict(intent)
        if kind == "capture":
            if intent["status"] != "requires_capture":
                return 400, {"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state",
                                       "message": f"status is {intent['status']}"}}
            if self.fail_capture:
                return 402, {"error": {"type": "card_error", "code": "card_declined",
                                       "decline_code": self.fail_capture, "message": "capture declined"}}
            amount = int(form.get("amount_to_capture", intent["amount"]))
            if amount > intent["amount"]:
                return 400, {"error": {"type": "invalid_request_error", "code": "amount_too_large"}}
            intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
            self.captures.append((intent["id"], amount))
            return 200, dict(intent)
        if kind == "cancel":
            if intent["status"] in ("succeeded", "canceled"):
                return 400, {"error": {"type": "invalid_request_error", "code": "payment_intent_unexpected_state"}}
            intent.update(status="canceled", amount_capturable=0)
            return 200, dict(intent)
        raise AssertionError(kind)

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        config = HypercornConfig()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.graceful_timeout = 0.5

        server, outer = self, task_status

        class Status:
            def started(self, binds: list[str]) -> None:
                server.port = int(binds[0].rsplit(":", 1)[1])
                outer.started(server)

        await serve(self.app(), config, task_status=Status())


class BreakingProxy:
    """TCP proxy to the fake Stripe; while `broken`, every new connection is reset at once."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.broken = False
        self.port = 0
        self.resets = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def run(self, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started(self)
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, client: trio.SocketStream) -> None:
        if self.broken:
            self.resets += 1
            client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await client.aclose()
            return
        try:
            server = await trio.open_tcp_stream("127.0.0.1", self.target_port)
        except OSError:
            await client.aclose()
            return

        async def pump(a: trio.SocketStream, b: trio.SocketStream) -> None:
            try:
                async for chunk in a:
                    if self.broken:  # kept-alive connections break too
                        self.resets += 1
                        client.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        await client.aclose()
                        await server.aclose()
                        return
                    await b.send_all(chunk)
                await b.send_eof()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        async with client, server:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(pump, client, server)
                nursery.start_soon(pump, server, client)
