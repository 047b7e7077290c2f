"""Our commands to an OCPP 1.6 charger: the domain's `ChargerLink` over one RPC session."""

from __future__ import annotations

from typing import Any

from controller.chargers import ChargerRegistry
from controller.csms.frames import OcppError
from controller.csms.rpc import CallTimeout, ConnectionLost, NotConnected, RpcSession
from controller.csms.v16 import smart_charging
from controller.errors import ChargerCallError, ChargerDisconnected, ChargerOffline, ChargerTimeout

PROTOCOL = "ocpp1.6"


class V16Link:
    protocol = PROTOCOL

    def __init__(self, session: RpcSession, chargers: ChargerRegistry) -> None:
        self.session = session
        self.chargers = chargers

    @property
    def address(self) -> str | None:
        return self.session.address

    async def call(self, action: str, payload: dict) -> Any:
        """Send one call; transport failures and CALLERRORs as domain errors."""
        charger_id = self.session.charger_id
        try:
            answer = await self.session.call(action, payload)
        except CallTimeout:
            raise ChargerTimeout(f"charger {charger_id} did not answer {action} in time") from None
        except NotConnected:
            raise ChargerOffline(charger_id) from None
        except ConnectionLost:
            raise ChargerDisconnected(f"charger {charger_id} disconnected before answering") from None
        except OcppError as err:
            raise ChargerCallError(err.code, err.description, err.details) from None
        if action == "UnlockConnector" and _status(answer) == "Unlocked":
            await self.chargers.unlocked(charger_id, payload["connectorId"])
        return answer

    async def remote_start(self, connector_id: int, id_tag: str) -> bool:
        answer = await self.call("RemoteStartTransaction", {"connectorId": connector_id, "idTag": id_tag})
        return _status(answer) == "Accepted"

    async def remote_stop(self, transaction_id: int) -> bool:
        answer = await self.call("RemoteStopTransaction", {"transactionId": transaction_id})
        return _status(answer) == "Accepted"

    async def unlock(self, connector_id: int) -> bool:
        return _status(await self.call("UnlockConnector", {"connectorId": connector_id})) == "Unlocked"

    async def set_default_limit(self, amps: float, phases: int) -> bool:
        answer = await self.call("SetChargingProfile", smart_charging.default_profile(amps, phases))
        return _status(answer) == "Accepted"

    async def set_transaction_limit(self, connector_id: int, transaction_id: int, amps: float, phases: int,
                                    duration_s: int) -> bool:
        payload = smart_charging.transaction_profile(connector_id, transaction_id, amps, phases, duration_s)
        return _status(await self.call("SetChargingProfile", payload)) == "Accepted"

    async def close(self, code: int, reason: str) -> None:
        await self.session.aclose(code, reason)


def _status(answer: Any) -> Any:
    """The `status` of an answer; a charger may answer anything, so nothing is assumed of it."""
    return answer.get("status") if isinstance(answer, dict) else None
