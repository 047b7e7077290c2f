"""Forwarding an OCPP 1.6J charger: what goes up, in whose transaction ids, and how the central
system's calls are booked.

Transaction ids are the site's: the charger gets ours at once, the central system gives its own
when it answers the forwarded StartTransaction (`transaction_ids.py`), and every later message
about that charge goes up under its id.
"""

from __future__ import annotations

import logging

from controller.authorization import IdTag
from controller.csms.rpc import Dialect
from controller.csms.v16.schemas import CENTRAL_ACTIONS, CHARGER_ACTIONS, VALIDATOR
from controller.local_controller.commands import UpstreamCommands, start_of
from controller.local_controller.transaction_ids import TransactionIds
from controller.local_controller.versions import UpstreamVersion
from controller.upstream.config import UpstreamOcppSection

log = logging.getLogger("evedge.local_controller")

FORWARDED = frozenset({
    "BootNotification", "StatusNotification", "Authorize", "StartTransaction", "StopTransaction", "MeterValues",
    "DataTransfer", "FirmwareStatusNotification", "DiagnosticsStatusNotification",
})


def introduction(boot: dict) -> dict:
    """The charger's last boot as a 1.6 one: as it came, or from a 2.0.1 boot what it says of the
    charger (not its firmware: the messages this boot introduces were sent under another)."""
    if "chargePointVendor" in boot or "chargingStation" not in boot:
        return boot
    station = boot["chargingStation"]
    ours = {"chargePointVendor": station["vendorName"][:20], "chargePointModel": station["model"]}
    if station.get("serialNumber"):
        ours["chargePointSerialNumber"] = station["serialNumber"]
    return ours


def transaction_of(action: str, payload: dict, answer: dict | None) -> int | None:
    """Ours: the id the site gave a start, the one a later message names."""
    return (answer or {}).get("transactionId") if action == "StartTransaction" else payload.get("transactionId")


async def outgoing(row: dict, payload: dict, ids: TransactionIds) -> dict | None:
    """The central system's transaction id, the time a status happened. None: a stop whose start
    the central system never took (nothing to stop there)."""
    action = row["action"]
    if action == "StatusNotification" and "timestamp" not in payload:
        payload["timestamp"] = row["created_at"]
    if action in ("StopTransaction", "MeterValues") and payload.get("transactionId") is not None:
        theirs = await ids.upstream(payload["transactionId"])
        if theirs is not None:
            payload["transactionId"] = theirs
        elif action == "StopTransaction":
            log.warning("charger=%s: transaction %s was never taken by the central system; its stop is not"
                        " forwarded", row["charger_id"], payload["transactionId"])
            return None
        else:
            del payload["transactionId"]
    return payload


async def answered(charger_id: str, row: dict, answer: dict, ids: TransactionIds) -> None:
    """A start's answer: the central system's id beside ours."""
    if row["action"] == "StartTransaction" and isinstance(answer.get("transactionId"), int):
        await ids.record(charger_id, row["id"], row["transaction_id"], answer["transactionId"])


def card(payload: dict, answer: dict) -> IdTag | None:
    """IdTagInfo on a card; ConcurrentTx says nothing of the card itself (it was busy elsewhere)."""
    info = answer.get("idTagInfo")
    if not isinstance(info, dict) or not payload.get("idTag") or info.get("status") == "ConcurrentTx":
        return None
    return IdTag(payload["idTag"], info["status"], info.get("expiryDate"), info.get("parentIdTag"))


def kept(action: str, payload: dict, ocpp: UpstreamOcppSection) -> str | None:
    if action == "ChangeConfiguration":
        key = str(payload.get("key", ""))
        if key.casefold() in {k.casefold() for k in ocpp.protected_keys}:
            return f"configuration key {key} is kept by the site's local controller ([upstream.ocpp] protected_keys)"
    return None


# -- the central system's calls the site books ---------------------------------------------


async def remote_start(commands: UpstreamCommands, payload: dict) -> dict:
    accepted = await commands.remote_start(payload.get("connectorId"), payload["idTag"])
    return {"status": "Accepted" if accepted else "Rejected"}


async def remote_stop(commands: UpstreamCommands, payload: dict) -> dict:
    ours = await commands.ids.ours(commands.charger_id, payload["transactionId"])
    return {"status": "Accepted" if await commands.remote_stop(ours) else "Rejected"}


async def set_charging_profile(commands: UpstreamCommands, payload: dict) -> dict:
    profile = payload["csChargingProfiles"]
    if commands.managed() is None:  # the charger itself obeys it: our ids in it
        if profile.get("transactionId") is not None:
            ours = await commands.ids.ours(commands.charger_id, profile["transactionId"])
            if ours is None:
                return {"status": "Rejected"}
            payload = {**payload, "csChargingProfiles": {**profile, "transactionId": ours}}
        return await commands.to_charger("SetChargingProfile", payload)
    schedule = profile["chargingSchedule"]
    absolute = profile.get("chargingProfileKind") == "Absolute"
    await commands.bound(payload["connectorId"], profile["chargingProfileId"], unit=schedule["chargingRateUnit"],
                         periods=[(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]],
                         start=start_of(absolute, schedule.get("startSchedule")),
                         valid_to=profile.get("validTo"), duration=schedule.get("duration"))
    return {"status": "Accepted"}


async def clear_charging_profile(commands: UpstreamCommands, payload: dict) -> dict:
    if commands.managed() is None:
        return await commands.to_charger("ClearChargingProfile", payload)
    cleared = await commands.unbound(payload.get("connectorId"), payload.get("id"))
    return {"status": "Accepted" if cleared else "Unknown"}


VERSION = UpstreamVersion(
    subprotocol="ocpp1.6",
    dialect=Dialect(charger_actions=CENTRAL_ACTIONS, known_actions=CHARGER_ACTIONS | CENTRAL_ACTIONS,
                    validate=VALIDATOR.validate, frame_error_code=lambda code: code),
    forwarded=FORWARDED, card=card, kept=kept, introduction=introduction,
    booked={"RemoteStartTransaction": remote_start, "RemoteStopTransaction": remote_stop,
            "SetChargingProfile": set_charging_profile, "ClearChargingProfile": clear_charging_profile},
    queued_after_answer=frozenset({"StartTransaction"}), transaction_of=transaction_of, outgoing=outgoing,
    answered=answered,
)
