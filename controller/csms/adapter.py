"""What the protocol adapters (csms/v16, csms/v201) share: dispatching a charger's calls, the
boot answer, the operator's payload check, and building a connection's session and link."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from trio_websocket import WebSocketConnection

from controller import logs
from controller.chargers import BootInfo, ChargerRegistry, ChargerState
from controller.csms.frames import CALL, OcppError
from controller.csms.link import SessionLink
from controller.csms.rpc import Dialect, RpcSession
from controller.errors import Invalid
from controller.live_config import LiveConfig
from controller.transactions import Transactions

log = logging.getLogger("evedge.ocpp")

Handler = Callable[[dict], Awaitable[dict]]
Forward = Callable[[ChargerState, str, dict, Handler], Awaitable[dict]]
"""Local-controller mode (controller/local_controller/): a charger's call, as it came, handed on
with the handler that answers it; the hook runs the handler and stores what it forwards before
the answer goes back to the charger."""
# What a charger that is not (yet) accepted may still do.
BEFORE_ACCEPTANCE = frozenset({"BootNotification", "Heartbeat"})
REGISTRATION = {"accepted": "Accepted", "pending": "Pending"}  # anything else: Rejected


class Handlers:
    """Dispatches one connected charger's calls to the version's `table` of handlers."""

    def __init__(self, state: ChargerState, chargers: ChargerRegistry, transactions: Transactions,
                 config: LiveConfig, dialect: Dialect) -> None:
        self.state = state
        self.charger_id = state.id
        self.chargers = chargers
        self.transactions = transactions
        self.config = config
        self.dialect = dialect
        self.table: dict[str, Handler] = {}
        self.forward: Forward | None = None

    async def __call__(self, action: str, payload: dict) -> dict:
        handler = self.table.get(action)
        if handler is None:
            if action in self.dialect.known_actions:
                raise OcppError("NotSupported", f"{action} is not taken by this central system")
            raise OcppError("NotImplemented", f"unknown action {action!r}")
        if self.state.registration != "accepted" and action not in BEFORE_ACCEPTANCE:
            raise OcppError("SecurityError", f"charger {self.charger_id} is not accepted by this site")
        if action not in BEFORE_ACCEPTANCE:  # an accepted charger new to us that skipped its boot
            await self.chargers.enlist(self.state)
        if self.forward is not None:
            return await self.forward(self.state, action, payload, handler)
        return await handler(payload)

    async def booted(self, boot: BootInfo) -> dict:
        """The BootNotification answer, the same in both versions."""
        registration = await self.chargers.booted(self.state, boot)
        return {"status": REGISTRATION.get(registration, "Rejected"),
                "currentTime": self.chargers.current_time(self.state.last_boot),
                "interval": self.config.current.ocpp.heartbeat_interval_s}

    async def heartbeat(self, payload: dict) -> dict:
        return {"currentTime": self.chargers.current_time(self.chargers.heartbeat(self.state))}

    async def data_transfer(self, payload: dict) -> dict:
        log.info("charger=%s DataTransfer vendor=%s ignored", self.charger_id, payload["vendorId"])
        return {"status": "UnknownVendorId"}

    async def firmware_status(self, payload: dict) -> dict:
        detail = {"requestId": payload["requestId"]} if "requestId" in payload else None
        await self.chargers.reported(self.state, "firmware", payload["status"], detail)
        return {}


def operation_checker(validate: Callable[[int, str, Any], None]) -> Callable[[str, dict], None]:
    """`Protocol.check_operation`: an operator's payload checked against the version's schema."""

    def check_operation(action: str, payload: dict) -> None:
        try:
            validate(CALL, action, payload)
        except OcppError as err:
            raise Invalid(f"{action} {err.description}") from None

    return check_operation


def open_session(ws: WebSocketConnection, handlers: Handlers, link: type[SessionLink],
                 chargers: ChargerRegistry, forward: Forward | None = None) -> tuple[RpcSession, SessionLink]:
    """The RPC session of one accepted connection, and the link the domain calls it through."""
    config = handlers.config
    handlers.forward = forward
    session = RpcSession(ws, handlers.charger_id, handlers, config.current.ocpp.call_timeout_s,
                         handlers.dialect, frame_log=logs.frame_logger(handlers.charger_id),
                         offline_after=lambda: config.current.ocpp.offline_after)
    return session, link(session, chargers)
