"""Our commands to an OCPP 2.0.1 charging station: the domain's `ChargerLink` over one RPC session.

Our connector ids are the station's EVSE ids (connector 1 of each EVSE).
"""

from __future__ import annotations

from typing import Any

from controller.authorization import DEFAULT_TOKEN_TYPE
from controller.chargers import ChargeStatus
from controller.csms.adapter import operation_checker
from controller.csms.link import SessionLink, first_int, optional, status
from controller.csms.v201 import smart_charging
from controller.csms.v201.schemas import validate
from controller.local_list import LocalListEntry

PROTOCOL = "ocpp2.0.1"
GROUP_TOKEN_TYPE = "Central"  # a parent id tag is the site's, not a card's
PASSWORD = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}


def new_password(action: str, payload: dict) -> str | None:
    """The password a SetVariables of SecurityCtrlr.BasicAuthPassword sets (Protocol.new_password)."""
    if action != "SetVariables":
        return None
    for item in payload.get("setVariableData") or []:
        if item.get("component", {}).get("name") == "SecurityCtrlr" and \
                item.get("variable", {}).get("name") == "BasicAuthPassword":
            return str(item.get("attributeValue"))
    return None


class V201Link(SessionLink):
    protocol = PROTOCOL
    check = staticmethod(operation_checker(validate))
    list_version_field = "versionNumber"

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

    def trigger_payload(self, message: str, connector_id: int | None) -> dict:
        payload: dict = {"requestedMessage": message}
        if connector_id is not None:
            payload["evse"] = {"id": connector_id}
        return payload

    async def send_local_list(self, version: int, full: bool, entries: list[LocalListEntry]) -> str:
        listed = []
        for entry in entries:
            token_type = entry.tag.token_type if entry.tag is not None else DEFAULT_TOKEN_TYPE
            item: dict = {"idToken": {"idToken": entry.id_tag, "type": token_type}}
            if entry.tag is not None:
                item["idTokenInfo"] = {"status": entry.tag.status}
                if entry.tag.expiry_date:
                    item["idTokenInfo"]["cacheExpiryDateTime"] = entry.tag.expiry_date
                if entry.tag.parent_id_tag:
                    item["idTokenInfo"]["groupIdToken"] = {"idToken": entry.tag.parent_id_tag,
                                                           "type": GROUP_TOKEN_TYPE}
            listed.append(item)
        payload: dict = {"versionNumber": version, "updateType": "Full" if full else "Differential"}
        if listed:
            payload["localAuthorizationList"] = listed
        return str(status(await self.call("SendLocalList", payload)))

    async def local_list_max_length(self) -> int | None:
        """LocalAuthListCtrlr.ItemsPerMessage from the station's device model."""
        answer = await self.call("GetVariables", {"getVariableData": [
            {"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": "ItemsPerMessage"}}]})
        results = answer.get("getVariableResult") if isinstance(answer, dict) else None
        return first_int(results, lambda item: item.get("attributeStatus") == "Accepted", "attributeValue")

    async def update_firmware(self, request_id: int, location: str, retrieve_date: str, retries: int | None,
                              retry_interval_s: int | None) -> dict:
        payload: dict = {"requestId": request_id, "firmware": {"location": location, "retrieveDateTime": retrieve_date}}
        optional(payload, retries=retries, retryInterval=retry_interval_s)
        return await self.checked_call("UpdateFirmware", payload)

    async def get_diagnostics(self, request_id: int, location: str, start: str | None, stop: str | None,
                              retries: int | None, retry_interval_s: int | None) -> dict:
        log: dict = {"remoteLocation": location}
        optional(log, oldestTimestamp=start, latestTimestamp=stop)
        payload: dict = {"logType": "DiagnosticsLog", "requestId": request_id, "log": log}
        optional(payload, retries=retries, retryInterval=retry_interval_s)
        return await self.checked_call("GetLog", payload)

    async def change_password(self, password: str) -> Any:
        return await self.call("SetVariables", {"setVariableData": [{**PASSWORD, "attributeValue": password}]})

    def password_status(self, answer: Any) -> str | None:
        """SetVariables answers per variable: the password's result."""
        results = answer.get("setVariableResult") if isinstance(answer, dict) else None
        for result in results if isinstance(results, list) else []:
            if isinstance(result, dict) and result.get("variable", {}).get("name") == "BasicAuthPassword":
                return result.get("attributeStatus")
        return None
