"""Our commands to an OCPP 2.0.1 charging station: the domain's `ChargerLink` over one RPC session.

Our connector ids are the station's EVSE ids (connector 1 of each EVSE).
"""

from __future__ import annotations

from typing import Any

from controller.csms.link import SessionLink, status

PROTOCOL = "ocpp2.0.1"
TOKEN_TYPE = "ISO14443"  # the id tags on the site's list are RFID cards
DEFAULT_PROFILE_ID = 1


class V201Link(SessionLink):
    protocol = PROTOCOL

    async def answered(self, action: str, payload: dict, answer: Any) -> None:
        if action == "UnlockConnector" and status(answer) == "Unlocked":
            await self.chargers.unlocked(self.session.charger_id, payload["evseId"])

    async def remote_start(self, connector_id: int, id_tag: str, remote_start_id: int) -> bool:
        answer = await self.call("RequestStartTransaction", {
            "idToken": {"idToken": id_tag, "type": TOKEN_TYPE}, "remoteStartId": remote_start_id,
            "evseId": connector_id,
        })
        return status(answer) == "Accepted"

    async def remote_stop(self, transaction_id: int, charger_transaction_id: str | None = None) -> bool:
        if charger_transaction_id is None:  # the station has not told us its id: nothing to name
            return False
        answer = await self.call("RequestStopTransaction", {"transactionId": charger_transaction_id})
        return status(answer) == "Accepted"

    async def reserve(self, reservation_id: int, connector_id: int, id_tag: str, expires_at: str,
                      parent_id_tag: str | None) -> str | None:
        """ReserveNow of the EVSE; 2.0.1 answers in 1.6's words (Accepted, Faulted, Occupied, ...)."""
        payload: dict[str, Any] = {"id": reservation_id, "expiryDateTime": expires_at,
                                   "idToken": {"idToken": id_tag, "type": TOKEN_TYPE}, "evseId": connector_id}
        if parent_id_tag:
            payload["groupIdToken"] = {"idToken": parent_id_tag, "type": TOKEN_TYPE}
        return status(await self.call("ReserveNow", payload))

    async def cancel_reservation(self, reservation_id: int) -> bool:
        return status(await self.call("CancelReservation", {"reservationId": reservation_id})) == "Accepted"

    async def unlock(self, connector_id: int) -> bool:
        answer = await self.call("UnlockConnector", {"evseId": connector_id, "connectorId": 1})
        return status(answer) == "Unlocked"

    async def set_default_limit(self, amps: float, phases: int) -> bool:
        """TxDefaultProfile on the whole station (EVSE 0): what every charge may draw, also when
        the controller is gone (no duration)."""
        profile = {"id": DEFAULT_PROFILE_ID, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                   "chargingProfileKind": "Relative", "chargingSchedule": [{
                       "id": DEFAULT_PROFILE_ID, "chargingRateUnit": "A",
                       "chargingSchedulePeriod": [{"startPeriod": 0, "limit": round(max(0.0, amps), 1),
                                                   "numberPhases": phases}]}]}
        answer = await self.call("SetChargingProfile", {"evseId": 0, "chargingProfile": profile})
        return status(answer) == "Accepted"

    async def set_transaction_limit(self, connector_id: int, transaction_id: int, amps: float, phases: int,
                                    duration_s: int) -> bool:
        """Not sent to 2.0.1 stations yet: False, so load management reserves the charger's maximum
        (safe) and the station keeps the default limit it holds."""
        return False
