"""Our commands to an OCPP 2.0.1 charging station: the domain's `ChargerLink` over one RPC session.

Our connector ids are the station's EVSE ids (connector 1 of each EVSE).
"""

from __future__ import annotations

from typing import Any

from controller.chargers import ChargeStatus
from controller.csms.link import SessionLink, status
from controller.csms.v201 import smart_charging

PROTOCOL = "ocpp2.0.1"
GROUP_TOKEN_TYPE = "Central"  # a parent id tag is the site's, not a card's


class V201Link(SessionLink):
    protocol = PROTOCOL

    async def answered(self, action: str, payload: dict, answer: Any) -> None:
        if action == "UnlockConnector" and status(answer) == "Unlocked":
            await self.chargers.unlocked(self.session.charger_id, payload["evseId"])

    async def remote_start(self, connector_id: int, id_tag: str, remote_start_id: int,
                           token_type: str = "ISO14443") -> bool:
        answer = await self.call("RequestStartTransaction", {
            "idToken": {"idToken": id_tag, "type": token_type}, "remoteStartId": remote_start_id,
            "evseId": connector_id,
        })
        return status(answer) == "Accepted"

    async def remote_stop(self, transaction_id: int, charger_transaction_id: str | None = None) -> bool:
        if charger_transaction_id is None:  # the station has not told us its id: nothing to name
            return False
        answer = await self.call("RequestStopTransaction", {"transactionId": charger_transaction_id})
        return status(answer) == "Accepted"

    async def reserve(self, reservation_id: int, connector_id: int, id_tag: str, expires_at: str,
                      parent_id_tag: str | None, token_type: str = "ISO14443") -> str | None:
        """ReserveNow of the EVSE; 2.0.1 answers in 1.6's words (Accepted, Faulted, Occupied, ...)."""
        payload: dict[str, Any] = {"id": reservation_id, "expiryDateTime": expires_at,
                                   "idToken": {"idToken": id_tag, "type": token_type}, "evseId": connector_id}
        if parent_id_tag:
            payload["groupIdToken"] = {"idToken": parent_id_tag, "type": GROUP_TOKEN_TYPE}
        return status(await self.call("ReserveNow", payload))

    async def cancel_reservation(self, reservation_id: int) -> bool:
        return status(await self.call("CancelReservation", {"reservationId": reservation_id})) == "Accepted"

    async def unlock(self, connector_id: int) -> bool:
        answer = await self.call("UnlockConnector", {"evseId": connector_id, "connectorId": 1})
        return status(answer) == "Unlocked"

    async def charge_status(self, charger_transaction_id: str) -> ChargeStatus | None:
        answer = await self.call("GetTransactionStatus", {"transactionId": charger_transaction_id})
        return ChargeStatus(ongoing=answer.get("ongoingIndicator"), queued=answer["messagesInQueue"])

    async def set_default_limit(self, amps: float, phases: int) -> bool:
        answer = await self.call("SetChargingProfile", smart_charging.default_profile(amps, phases))
        return status(answer) == "Accepted"

    async def set_transaction_limit(self, connector_id: int, transaction_id: int, amps: float, phases: int,
                                    duration_s: int, charger_transaction_id: str | None = None) -> bool:
        if charger_transaction_id is None:  # the station has not named the charge yet: nothing to bind to
            return False
        payload = smart_charging.transaction_profile(connector_id, charger_transaction_id, amps, phases, duration_s)
        return status(await self.call("SetChargingProfile", payload)) == "Accepted"
