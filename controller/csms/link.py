"""The part of a `ChargerLink` every OCPP version shares: one call over the RPC session, its
transport failures and CALLERRORs turned into domain errors."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from controller.chargers import ChargerRegistry
from controller.csms.frames import OcppError
from controller.csms.rpc import CallTimeout, ConnectionLost, NotConnected, RpcSession
from controller.errors import (
    ChargerCallError,
    ChargerDisconnected,
    ChargerOffline,
    ChargerTimeout,
)


def limit_amps(amps: float) -> float:
    """A limit as both versions' schemas want it: a multiple of 0.1 A, rounded down (never above
    what we mean)."""
    return math.floor(max(0.0, amps) * 10 + 1e-6) / 10


class SessionLink:
    protocol = ""
    list_version_field = ""  # GetLocalListVersion's answer names its version so

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
        await self.answered(action, payload, answer)
        return answer

    async def answered(self, action: str, payload: dict, answer: Any) -> None:
        """What an answer tells the domain (a version reports an unlocked connector, ...)."""

    async def trigger_boot(self) -> bool:
        """TriggerMessage(BootNotification): OCPP 1.6 and 2.0.1 name the call and the message
        alike, so every version's link shares it."""
        return status(await self.call("TriggerMessage", {"requestedMessage": "BootNotification"})) == "Accepted"

    async def trigger(self, message: str, connector_id: int | None = None) -> str:
        """TriggerMessage: the payload in the version's words, checked against its schema."""
        return str(status(await self.checked_call("TriggerMessage", self.trigger_payload(message, connector_id))))

    async def checked_call(self, action: str, payload: dict) -> dict:
        """A call we build from an operator's values: checked against the version's schema first
        (errors.Invalid names the field), the answer as an object."""
        self.check(action, payload)
        answer = await self.call(action, payload)
        return answer if isinstance(answer, dict) else {}

    async def local_list_version(self) -> int:
        answer = await self.call("GetLocalListVersion", {})
        version = answer.get(self.list_version_field) if isinstance(answer, dict) else None
        return version if isinstance(version, int) else 0

    def trigger_payload(self, message: str, connector_id: int | None) -> dict:
        raise NotImplementedError

    def check(self, action: str, payload: dict) -> None:
        """Raise errors.Invalid for a payload the version's schema refuses."""

    async def close(self, code: int, reason: str) -> None:
        await self.session.aclose(code, reason)


def status(answer: Any) -> Any:
    """The `status` of an answer; a charger may answer anything, so nothing is assumed of it."""
    return answer.get("status") if isinstance(answer, dict) else None


def first_int(items: Any, matches: Callable[[dict], bool], key: str) -> int | None:
    """The integer under `key` of the first item that `matches` in a list a charger answered
    (None: no such item, or not a number): a configuration key, a device model variable."""
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and matches(item):
            try:
                return int(str(item.get(key)))
            except ValueError:
                return None
    return None


def optional(payload: dict, **fields: object) -> None:
    """Add the fields that have a value (a payload leaves out what is not given)."""
    payload.update({name: value for name, value in fields.items() if value is not None})
