"""What a simulated charger (controller.simulators: OCPP 1.6 or 2.0.1) reported, in the words of a
charge rather than of either protocol's messages.

The simulators emit a `sent` event for every message they send on their own (auto mode: after
a remote start or stop, a trigger, ...). A charge's start is StartTransaction in 1.6 and a
TransactionEvent Started in 2.0.1; these helpers wait for either, so a flow test reads the same
for both versions:

    event = await next_start(sim, connector=1)
    tx = await booked_id(site, sim, event)      # our transaction id on the books
    ...
    await next_stop(sim)
"""

from __future__ import annotations

from typing import Any

from controller.simulators.charger_process import SimulatedCharger

V201 = "2.0.1"


def _connector(event: dict[str, Any]) -> int | None:
    request = event.get("request") or {}
    if "connectorId" in request:
        return request["connectorId"]
    return (request.get("evse") or {}).get("id")


def is_start(event: dict[str, Any], connector: int | None = None) -> bool:
    """A `sent` event of a charge's start: StartTransaction (1.6), TransactionEvent Started (2.0.1)."""
    if event.get("event") != "sent":
        return False
    action, request = event.get("action"), event.get("request") or {}
    started = action == "StartTransaction" or (action == "TransactionEvent" and request.get("eventType") == "Started")
    return started and (connector is None or _connector(event) == connector)


def is_stop(event: dict[str, Any]) -> bool:
    """A `sent` event of a charge's end: StopTransaction (1.6), TransactionEvent Ended (2.0.1)."""
    if event.get("event") != "sent":
        return False
    action, request = event.get("action"), event.get("request") or {}
    return action == "StopTransaction" or (action == "TransactionEvent" and request.get("eventType") == "Ended")


async def next_start(sim: SimulatedCharger, connector: int | None = None, timeout: float = 10) -> dict[str, Any]:
    """The next charge start the charger sent on its own (and got an answer to)."""
    event = await sim.next_event(lambda e: is_start(e, connector), timeout=timeout)
    assert "response" in event, event
    return event


async def next_stop(sim: SimulatedCharger, timeout: float = 10) -> dict[str, Any]:
    """The next charge end the charger sent on its own (and got an answer to)."""
    event = await sim.next_event(is_stop, timeout=timeout)
    assert "response" in event, event
    return event


def station_transaction_id(event: dict[str, Any]) -> Any:
    """The charger's name for the charge of a start/stop event: 1.6's integer (ours), 2.0.1's string."""
    request = event["request"]
    if "transactionInfo" in request:
        return request["transactionInfo"]["transactionId"]
    return request.get("transactionId", (event.get("response") or {}).get("transactionId"))


async def booked_id(site: Any, charger_id: str, event: dict[str, Any]) -> int:
    """Our transaction id of a start event: 1.6 gets it in the answer; a 2.0.1 station names its
    own transaction, which the books keep beside ours."""
    if event["action"] == "StartTransaction":
        return event["response"]["transactionId"]
    found = await site.transactions.resolve(charger_id, station_transaction_id(event))
    assert found is not None, f"{charger_id}'s transaction {station_transaction_id(event)} is not on the books"
    return found[0]
