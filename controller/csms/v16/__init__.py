"""OCPP 1.6J: the adapter between 1.6 frames and the domain.

`PROTOCOL` describes the version to the domain; `open_session` builds the RPC session and the
`ChargerLink` for one accepted connection.
"""

from __future__ import annotations

from trio_websocket import WebSocketConnection

from controller.chargers import ChargeOperation, ChargerRegistry, ChargerState, Protocol
from controller.csms import adapter
from controller.csms.rpc import RpcSession
from controller.csms.v16.handlers import ChargerHandlers, availability
from controller.csms.v16.link import PROTOCOL as SUBPROTOCOL
from controller.csms.v16.link import V16Link, new_password
from controller.csms.v16.schemas import CENTRAL_ACTIONS, validate
from controller.live_config import LiveConfig
from controller.transactions import Transactions



def charge_operation(action: str, payload: dict) -> ChargeOperation | None:
    """The operator's RemoteStartTransaction / RemoteStopTransaction (checked against the schema)."""
    if action == "RemoteStartTransaction":
        return ChargeOperation("start", connector_id=payload.get("connectorId", 0), id_tag=payload["idTag"])
    if action == "RemoteStopTransaction":
        return ChargeOperation("stop", transaction_id=payload["transactionId"])
    return None


CHECK_OPERATION = adapter.operation_checker(validate)


def check_charging_profile(connector_id: int, profile: dict) -> None:
    """An operator's profile record as SetChargingProfile would carry it, against the 1.6 schema."""
    CHECK_OPERATION("SetChargingProfile", {"connectorId": connector_id, "csChargingProfiles": profile})


PROTOCOL = Protocol(name=SUBPROTOCOL, operations=CENTRAL_ACTIONS, check_operation=CHECK_OPERATION,
                    availability=availability, charge_operation=charge_operation, new_password=new_password,
                    check_charging_profile=check_charging_profile)


def open_session(ws: WebSocketConnection, state: ChargerState, chargers: ChargerRegistry,
                 transactions: Transactions, config: LiveConfig,
                 forward: adapter.Forward | None = None) -> tuple[RpcSession, V16Link]:
    return adapter.open_session(ws, ChargerHandlers(state, chargers, transactions, config), V16Link, chargers, forward)
