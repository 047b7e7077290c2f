"""Our commands to an OCPP 1.6 charger: the domain's `ChargerLink` over one RPC session."""

from __future__ import annotations

from typing import Any

from controller.chargers import ChargeStatus
from controller.csms.adapter import operation_checker
from controller.csms.link import SessionLink, first_int, optional, status
from controller.csms.v16 import smart_charging
from controller.csms.v16.schemas import validate
from controller.local_list import LocalListEntry

PROTOCOL = "ocpp1.6"
PASSWORD_KEY = "AuthorizationKey"


def new_password(action: str, payload: dict) -> str | None:
    """The key a ChangeConfiguration of AuthorizationKey sets (Protocol.new_password)."""
    if action == "ChangeConfiguration" and payload.get("key") == PASSWORD_KEY:
        return str(payload.get("value"))
    return None


class V16Link(SessionLink):
    protocol = PROTOCOL
    check = staticmethod(operation_checker(validate))
    list_version_field = "listVersion"

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
    def trigger_payload(self, message: str, connector_id: int | None) -> dict:
        payload: dict = {"requestedMessage": message}
        if connector_id is not None:
            payload["connectorId"] = connector_id
        return payload

    async def send_local_list(self, version: int, full: bool, entries: list[LocalListEntry]) -> str:
        listed = []
        for entry in entries:
            item: dict = {"idTag": entry.id_tag}
            if entry.tag is not None:
                item["idTagInfo"] = {"status": entry.tag.status}
                if entry.tag.expiry_date:
                    item["idTagInfo"]["expiryDate"] = entry.tag.expiry_date
                if entry.tag.parent_id_tag:
                    item["idTagInfo"]["parentIdTag"] = entry.tag.parent_id_tag
            listed.append(item)
        payload = {"listVersion": version, "updateType": "Full" if full else "Differential",
                   "localAuthorizationList": listed}
        return str(status(await self.call("SendLocalList", payload)))

    async def local_list_max_length(self) -> int | None:
        answer = await self.call("GetConfiguration", {"key": ["SendLocalListMaxLength"]})
        keys = answer.get("configurationKey") if isinstance(answer, dict) else None
        return first_int(keys, lambda item: item.get("key") == "SendLocalListMaxLength", "value")

    async def update_firmware(self, request_id: int, location: str, retrieve_date: str, retries: int | None,
                              retry_interval_s: int | None) -> dict:
        payload: dict = {"location": location, "retrieveDate": retrieve_date}
        optional(payload, retries=retries, retryInterval=retry_interval_s)
        return await self.checked_call("UpdateFirmware", payload)

    async def get_diagnostics(self, request_id: int, location: str, start: str | None, stop: str | None,
                              retries: int | None, retry_interval_s: int | None) -> dict:
        payload: dict = {"location": location}
        optional(payload, startTime=start, stopTime=stop, retries=retries, retryInterval=retry_interval_s)
        return await self.checked_call("GetDiagnostics", payload)

    async def set_charging_profile(self, connector_id: int, profile: dict) -> str:
        answer = await self.call("SetChargingProfile", {"connectorId": connector_id, "csChargingProfiles": profile})
        return str(status(answer))

    async def clear_charging_profile(self, profile_id: int) -> str:
        return str(status(await self.call("ClearChargingProfile", {"id": profile_id})))

    async def change_password(self, password: str) -> Any:
        return await self.call("ChangeConfiguration", {"key": PASSWORD_KEY, "value": password})

    def password_status(self, answer: Any) -> str | None:
        return status(answer)
