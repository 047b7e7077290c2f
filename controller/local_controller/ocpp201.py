"""Forwarding an OCPP 2.0.1 charging station: what goes up, and how the central system's calls are
booked.

No id mapping: a 2.0.1 transaction is named by the station itself (a string in every
TransactionEvent), and the central system knows it by that same name. A RequestStartTransaction
goes to the station as it came (its remoteStartId is the central system's, and comes back up in
the TransactionEvent) and is booked like the operator's own; a RequestStopTransaction names the
station's transaction and is booked as a stop of ours.
"""

from __future__ import annotations

from controller.authorization import DEFAULT_TOKEN_TYPE, IdTag
from controller.csms.rpc import Dialect
from controller.csms.v201.schemas import CENTRAL_ACTIONS, CHARGER_ACTIONS, VALIDATOR, frame_error_code
from controller.local_controller.commands import UpstreamCommands, start_of
from controller.local_controller.versions import UpstreamVersion
from controller.upstream.config import UpstreamOcppSection

FORWARDED = frozenset({
    "BootNotification", "StatusNotification", "Authorize", "TransactionEvent", "MeterValues", "NotifyReport",
    "DataTransfer", "FirmwareStatusNotification", "LogStatusNotification",
})

CARD_STATUS = {"Accepted": "Accepted", "Blocked": "Blocked", "Expired": "Expired", "Invalid": "Invalid",
               "Unknown": "Invalid", "NoCredit": "Blocked", "NotAtThisLocation": "Invalid"}
"""2.0.1's word on a card in the site's. The others (ConcurrentTx, NotAllowedTypeEVSE,
NotAtThisTime) say where or when, not whether the card is good: not kept."""


def introduction(boot: dict) -> dict:
    """The station's last boot as a 2.0.1 one: as it came, or from a 1.6 boot what it says of the
    station (not its firmware: the messages this boot introduces were sent under another)."""
    if "chargingStation" in boot or "chargePointVendor" not in boot:
        return boot
    station = {"vendorName": boot["chargePointVendor"], "model": boot["chargePointModel"]}
    if boot.get("chargePointSerialNumber"):
        station["serialNumber"] = boot["chargePointSerialNumber"]
    return {"reason": "Unknown", "chargingStation": station}


def card(payload: dict, answer: dict) -> IdTag | None:
    info, token = answer.get("idTokenInfo"), payload.get("idToken")
    if not isinstance(info, dict) or not isinstance(token, dict) or info.get("status") not in CARD_STATUS:
        return None
    group = info.get("groupIdToken") or {}
    return IdTag(token["idToken"], CARD_STATUS[info["status"]], info.get("cacheExpiryDateTime"),
                 group.get("idToken"), token.get("type") or DEFAULT_TOKEN_TYPE)


def kept(action: str, payload: dict, ocpp: UpstreamOcppSection) -> str | None:
    """A SetVariables of a `protected_variables` entry ("Component.Variable", or a whole component)."""
    if action != "SetVariables":
        return None
    protected = {p.casefold() for p in ocpp.protected_variables}
    for item in payload.get("setVariableData") or []:
        component, variable = item["component"]["name"], item["variable"]["name"]
        if component.casefold() in protected or f"{component}.{variable}".casefold() in protected:
            return (f"variable {component}.{variable} is kept by the site's local controller"
                    " ([upstream.ocpp] protected_variables)")
    return None


# -- the central system's calls the site books ---------------------------------------------


async def request_start(commands: UpstreamCommands, payload: dict) -> dict:
    if commands.managed() is not None and "chargingProfile" in payload:
        # load management sets the charge's limits: a profile from above is a bound (SetChargingProfile)
        payload = {k: v for k, v in payload.items() if k != "chargingProfile"}
    return await commands.as_operator("RequestStartTransaction", payload)


async def request_stop(commands: UpstreamCommands, payload: dict) -> dict:
    return await commands.as_operator("RequestStopTransaction", payload)


async def set_charging_profile(commands: UpstreamCommands, payload: dict) -> dict:
    if commands.managed() is None:  # the station itself obeys it (its own transaction ids in it)
        return await commands.to_charger("SetChargingProfile", payload)
    profile = payload["chargingProfile"]
    schedule = profile["chargingSchedule"][0]  # the others are ISO 15118 alternatives
    await commands.bound(payload["evseId"], profile["id"], unit=schedule["chargingRateUnit"],
                         periods=[(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]],
                         start=start_of(profile["chargingProfileKind"] == "Absolute", schedule.get("startSchedule")),
                         valid_to=profile.get("validTo"), duration=schedule.get("duration"))
    return {"status": "Accepted"}


async def clear_charging_profile(commands: UpstreamCommands, payload: dict) -> dict:
    if commands.managed() is None:
        return await commands.to_charger("ClearChargingProfile", payload)
    criteria = payload.get("chargingProfileCriteria") or {}
    cleared = await commands.unbound(criteria.get("evseId"), payload.get("chargingProfileId"))
    return {"status": "Accepted" if cleared else "Unknown"}


VERSION = UpstreamVersion(
    subprotocol="ocpp2.0.1",
    dialect=Dialect(charger_actions=CENTRAL_ACTIONS, known_actions=CHARGER_ACTIONS | CENTRAL_ACTIONS,
                    validate=VALIDATOR.validate, frame_error_code=frame_error_code),
    forwarded=FORWARDED, card=card, kept=kept, introduction=introduction,
    booked={"RequestStartTransaction": request_start, "RequestStopTransaction": request_stop,
            "SetChargingProfile": set_charging_profile, "ClearChargingProfile": clear_charging_profile},
)
