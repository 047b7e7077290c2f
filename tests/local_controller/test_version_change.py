"""Local-controller mode when a charger changes OCPP version (new firmware) while its messages wait
for the central system: they go up in the version they were sent in, over a connection in that
version, then what it said since over one in its new version; nothing is dropped. Over real
sockets: the site, the 1.6 and 2.0.1 charger simulators, and an independent central system that
speaks both on one URL."""

from __future__ import annotations

import sqlite3

from controller.simulators.charger_process import SimulatedCharger
from controller.store.schema import MIGRATIONS, migrate
from tests.local_controller.support import central_system, link_down, link_drained, local_config, upstream_link
from tests.support import CHARGER, eventually, ocpp_url, running_site, unique


async def test_messages_queued_before_a_version_change_go_up_in_their_version_then_the_new_ones(tmp_path):
    old_tag, new_tag = unique(), unique()
    async with central_system(version="both") as cs:
        config = local_config(tmp_path, cs.port, accept_unknown_id_tags=True)
        async with running_site(config) as site:
            async with SimulatedCharger.open(ocpp_url(site, CHARGER)) as charger:
                await charger.boot()
                await cs.next_call("BootNotification")
                await eventually(lambda: link_drained(site), what="the boot answered")
                await cs.cmd("cut")
                await eventually(lambda: link_down(site), what="the link seen down")
                await charger.status(1, "Preparing", timestamp="2026-01-01T09:59:00.000Z")
                await charger.start_transaction(1, old_tag, meterStart=100, timestamp="2026-01-01T10:00:00.000Z")
                await charger.meter(1, energyWh=500, timestamp="2026-01-01T10:05:00.000Z")
                await charger.stop(1, meterStop=800, timestamp="2026-01-01T10:10:00.000Z")

            # new firmware: the same charger, now a 2.0.1 station, while the uplink is still down
            async with SimulatedCharger.open(ocpp_url(site, CHARGER), version="2.0.1") as station:
                await station.boot(vendor="Example Charging Systems", model="EX-22", serialNumber="SN-7",
                                   firmwareVersion="2.0.0")
                await station.status(1, "Occupied", timestamp="2026-01-01T10:59:00.000Z")
                started = await station.start_transaction(1, new_tag, timestamp="2026-01-01T11:00:00.000Z")
                await station.stop(1, timestamp="2026-01-01T11:30:00.000Z")
                assert (await upstream_link(site))["queued"] == 8  # 1.6: 4; 2.0.1: boot, status, 2 events

                await cs.cmd("resume")
                await cs.next_call("TransactionEvent", timeout=15, payload={"eventType": "Ended"})
                await eventually(lambda: link_drained(site), what="the queue emptied")

    after_cut = _calls_by_connection(cs.events)[1:]  # the first: before the cut
    assert [(subprotocol, [action for action, _ in calls]) for subprotocol, calls in after_cut] == [
        ("ocpp1.6", ["BootNotification", "StatusNotification", "StartTransaction", "MeterValues",
                     "StopTransaction"]),
        ("ocpp2.0.1", ["BootNotification", "StatusNotification", "TransactionEvent", "TransactionEvent"]),
    ]
    (_, old_calls), (_, new_calls) = after_cut
    old = dict(old_calls)  # one of each
    # the 1.6 connection is introduced with what the charger last said of itself, in 1.6's words
    assert old["BootNotification"] == {"chargePointVendor": "Example Charging Sys", "chargePointModel": "EX-22",
                                       "chargePointSerialNumber": "SN-7"}
    assert old["StatusNotification"]["timestamp"] == "2026-01-01T09:59:00.000Z"
    assert old["StartTransaction"]["timestamp"] == "2026-01-01T10:00:00.000Z"
    assert old["MeterValues"]["transactionId"] == old["StopTransaction"]["transactionId"] == 1001
    assert old["StopTransaction"]["meterStop"] == 800
    # the station's own boot opens the 2.0.1 connection; its messages as it sent them
    assert new_calls[0][1]["chargingStation"]["firmwareVersion"] == "2.0.0"
    assert new_calls[1][1]["timestamp"] == "2026-01-01T10:59:00.000Z"
    events = [payload for _, payload in new_calls[2:]]
    assert [e["eventType"] for e in events] == ["Started", "Ended"]
    assert {e["transactionInfo"]["transactionId"] for e in events} == {started["transactionId"]}


def _calls_by_connection(events: list[dict]) -> list[tuple[str, list[tuple[str, dict]]]]:
    """(subprotocol, [(action, payload), ...]) for each connection of the charger, in order."""
    connections: list[tuple[str, list[tuple[str, dict]]]] = []
    for event in events:
        if event.get("charger") != CHARGER:
            continue
        if event["event"] == "connected":
            connections.append((event["subprotocol"], []))
        elif event["event"] == "call":
            connections[-1][1].append((event["action"], event["payload"]))
    return connections


def test_messages_queued_before_the_upgrade_go_up_in_their_charger_s_version(tmp_path):
    """Rows queued by a release that did not record the version: the charger's as last seen
    (1.6 for one the books do not know)."""
    recorded = next(i for i, script in enumerate(MIGRATIONS) if "forward_queue ADD COLUMN protocol" in script)
    conn = sqlite3.connect(tmp_path / "books.db", isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:recorded], start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.executemany("INSERT INTO chargers (id, registration, first_seen, protocol) VALUES (?, 'accepted', 'then', ?)",
                     [("STATION", "ocpp2.0.1"), ("CHARGER", "ocpp1.6"), ("NEVER-SAID", None)])
    conn.executemany("INSERT INTO forward_queue (charger_id, action, payload, created_at) VALUES (?, 'Heartbeat', '{}',"
                     " 'then')", [("STATION",), ("CHARGER",), ("NEVER-SAID",), ("UNKNOWN",)])
    migrate(conn)
    assert dict(conn.execute("SELECT charger_id, protocol FROM forward_queue")) == {
        "STATION": "ocpp2.0.1", "CHARGER": "ocpp1.6", "NEVER-SAID": "ocpp1.6", "UNKNOWN": "ocpp1.6"}
    conn.close()
