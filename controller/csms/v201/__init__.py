"""OCPP 2.0.1: the adapter between 2.0.1 frames and the domain.

`PROTOCOL` describes the version to the domain; `open_session` builds the RPC session and the
`ChargerLink` for one accepted connection. Covered: provisioning (boot, heartbeat, status, device
model reports, variables, reset, availability, triggers), authorization, transactions
(TransactionEvent), meter values, remote control, smart-charging and firmware/log operations
through the operator's endpoint. Not covered: ISO 15118 certificates, display messages, security
profile 3 (client certificates), cost updates.
"""

from __future__ import annotations

from trio_websocket import WebSocketConnection

from controller import logs
from controller.chargers import ChargerRegistry, ChargerState, Protocol
from controller.csms.frames import CALL, OcppError
from controller.csms.rpc import RpcSession
from controller.csms.v201.handlers import StationHandlers, availability
from controller.csms.v201.link import PROTOCOL as SUBPROTOCOL
from controller.csms.v201.link import V201Link
from controller.csms.v201.schemas import CENTRAL_ACTIONS, DIALECT, validate
from controller.errors import Invalid
from controller.live_config import LiveConfig
from controller.transactions import Transactions


def check_operation(action: str, payload: dict) -> None:
    """An operator's payload for `action`, checked against 2.0.1's schema before it is sent."""
    try:
        validate(CALL, action, payload)
    except OcppError as err:
        raise Invalid(f"{action} {err.description}") from None


PROTOCOL = Protocol(name=SUBPROTOCOL, operations=CENTRAL_ACTIONS, check_operation=check_operation,
                    availability=availability)


def open_session(ws: WebSocketConnection, state: ChargerState, chargers: ChargerRegistry,
                 transactions: Transactions, config: LiveConfig) -> tuple[RpcSession, V201Link]:
    handlers = StationHandlers(state, chargers, transactions, config)
    session = RpcSession(ws, state.id, handlers, config.current.ocpp.call_timeout_s, DIALECT,
                         frame_log=logs.frame_logger(state.id),
                         offline_after=lambda: config.current.ocpp.offline_after)
    return session, V201Link(session, chargers)
