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

from controller.chargers import ChargeOperation, ChargerRegistry, ChargerState, Protocol
from controller.csms import adapter
from controller.csms.rpc import RpcSession
from controller.csms.v201.handlers import StationHandlers, availability
from controller.csms.v201.link import PROTOCOL as SUBPROTOCOL
from controller.csms.v201.link import V201Link, new_password
from controller.csms.v201.schemas import CENTRAL_ACTIONS, validate
from controller.live_config import LiveConfig
from controller.transactions import Transactions



def charge_operation(action: str, payload: dict) -> ChargeOperation | None:
    """The operator's RequestStartTransaction / RequestStopTransaction (checked against the schema)."""
    if action == "RequestStartTransaction":
        return ChargeOperation("start", connector_id=payload.get("evseId", 0), id_tag=payload["idToken"]["idToken"])
    if action == "RequestStopTransaction":
        return ChargeOperation("stop", charger_transaction_id=payload["transactionId"])
    return None


PROTOCOL = Protocol(name=SUBPROTOCOL, operations=CENTRAL_ACTIONS, check_operation=adapter.operation_checker(validate),
                    availability=availability, charge_operation=charge_operation, new_password=new_password)


def open_session(ws: WebSocketConnection, state: ChargerState, chargers: ChargerRegistry,
                 transactions: Transactions, config: LiveConfig,
                 forward: adapter.Forward | None = None) -> tuple[RpcSession, V201Link]:
    return adapter.open_session(ws, StationHandlers(state, chargers, transactions, config), V201Link, chargers, forward)
