"""OCPP 1.6J: the adapter between 1.6 frames and the domain.

`PROTOCOL` describes the version to the domain; `open_session` builds the RPC session and the
`ChargerLink` for one accepted connection.
"""

from __future__ import annotations

from trio_websocket import WebSocketConnection

from controller.chargers import ChargerRegistry, ChargerState, Protocol
from controller.csms import adapter
from controller.csms.rpc import RpcSession
from controller.csms.v16.handlers import ChargerHandlers, availability
from controller.csms.v16.link import PROTOCOL as SUBPROTOCOL
from controller.csms.v16.link import V16Link
from controller.csms.v16.schemas import CENTRAL_ACTIONS, validate
from controller.live_config import LiveConfig
from controller.transactions import Transactions

PROTOCOL = Protocol(name=SUBPROTOCOL, operations=CENTRAL_ACTIONS, check_operation=adapter.operation_checker(validate),
                    availability=availability)


def open_session(ws: WebSocketConnection, state: ChargerState, chargers: ChargerRegistry,
                 transactions: Transactions, config: LiveConfig,
                 forward: adapter.Forward | None = None) -> tuple[RpcSession, V16Link]:
    return adapter.open_session(ws, ChargerHandlers(state, chargers, transactions, config), V16Link, chargers, forward)
