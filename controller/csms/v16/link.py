"""Our commands to an OCPP 1.6 charger: the domain's `ChargerLink` over one RPC session."""

from __future__ import annotations

from typing import Any

from controller.chargers import ChargeStatus
from controller.csms.link import SessionLink, status
from controller.csms.v16 import smart_charging

PROTOCOL = "ocpp1.6"


class V16Link(SessionLink):
    protocol = PROTOCOL

    async def answered(self, action: str, payload: dict, answer: Any) -> None:
        if action == "UnlockConnector" and status(answer) == "Unlocked":
            await self.chargers.unlocked(self.session.charger_id, payload["connectorId"])

    async def remote_start(self, connector_id: int, id_tag: str, remote_start_id: int,
                           token_type: str = "ISO14443") -> bool:
        answer = await self.call("RemoteStartTransaction", {"connectorId": connector_id, "idTag": id_tag})
        return status(answer) == "Accepted"

    async def remote_stop(self, transaction_id: int, charger_transaction_id: str | None = None) -> bool:
        answer = await self.call("RemoteStopTransaction", {"transactionId": transaction_id})
        return status(answer) == "Accepted"

    async def unlock(self, connector_id: int) -> bool:
        return status(await self.call("UnlockConnector", {"connectorId": connector_id})) == "Unlocked"

    async def charge_status(self, charger_transaction_id: str) -> ChargeStatus | None:
        return None  # 1.6 has no such question (and its chargers do not name their charges)

    async def set_default_limit(self, amps: float, phases: int) -> bool:
        answer = await self.call("SetChargingProfile", smart_charging.default_profile(amps, phases))
        return status(answer) == "Accepted"

    async def set_transaction_limit(self, connector_id: int, transaction_id: int, amps: float, phases: int,
                                    duration_s: int, charger_transaction_id: str | None = None) -> bool:
        payload = smart_charging.transaction_profile(connector_id, transaction_id, amps, phases, duration_s)
        return status(await self.call("SetChargingProfile", payload)) == "Accepted"

    async def reserve(self, reservation_id: int, connector_id: int, id_tag: str, expires_at: str,
                      parent_id_tag: str | None, token_type: str = "ISO14443") -> str | None:
        payload = {"connectorId": connector_id, "expiryDate": expires_at, "idTag": id_tag,
                   "reservationId": reservation_id}
        if parent_id_tag:
            payload["parentIdTag"] = parent_id_tag
        return status(await self.call("ReserveNow", payload))

    async def cancel_reservation(self, reservation_id: int) -> bool:
        return status(await self.call("CancelReservation", {"reservationId": reservation_id})) == "Accepted"
