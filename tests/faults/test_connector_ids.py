"""Connector ids a charger cannot have are refused (CALLERROR PropertyConstraintViolation), logged,
and never stored.

Before, 20,000 distinct ids from a 2-connector charger made a 3.9 MB charger list. Valid: 1 up to
the configured count (0, the charger itself, for statuses and meter values but never for a
charge); an unconfigured charger's count is unknown, so up to 100 (the most a config may give).
"""

from __future__ import annotations

import logging
import sqlite3

import pytest

from tests.faults.ocpp_clients import fault_config, status_payload
from tests.support import CHARGER, CHARGER_2, api_client, raw_charger, running_site

NOW = "2026-02-06T12:00:00Z"
REFUSED = "PropertyConstraintViolation"
UNCONFIGURED = "CP-UNLISTED"


def meter_values_16(connector: int) -> dict:
    return {"connectorId": connector, "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "10"}]}]}


def start_16(connector: int) -> dict:
    return {"connectorId": connector, "idTag": "TAG", "meterStart": 0, "timestamp": NOW}


def status_201(evse: int) -> dict:
    return {"timestamp": NOW, "connectorStatus": "Available", "evseId": evse, "connectorId": 1}


def started_201(evse: int) -> dict:
    return {"eventType": "Started", "timestamp": NOW, "triggerReason": "Authorized", "seqNo": 0,
            "transactionInfo": {"transactionId": f"TX-{evse}"}, "evse": {"id": evse, "connectorId": 1},
            "idToken": {"idToken": "TAG", "type": "ISO14443"}}


def meter_values_201(evse: int) -> dict:
    return {"evseId": evse, "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": 10}]}]}


# (charger, subprotocol, action, payload, connector id, refused?)
CALLS = [
    (CHARGER, "ocpp1.6", "StatusNotification", status_payload(3, "Available"), 3, True),
    (CHARGER, "ocpp1.6", "StatusNotification", status_payload(20_000, "Available"), 20_000, True),
    (CHARGER, "ocpp1.6", "StatusNotification", status_payload(-1, "Available"), -1, True),
    (CHARGER, "ocpp1.6", "MeterValues", meter_values_16(3), 3, True),
    (CHARGER, "ocpp1.6", "StartTransaction", start_16(0), 0, True),
    (CHARGER, "ocpp1.6", "StartTransaction", start_16(3), 3, True),
    (UNCONFIGURED, "ocpp1.6", "StatusNotification", status_payload(101, "Available"), 101, True),
    (UNCONFIGURED, "ocpp1.6", "MeterValues", meter_values_16(5000), 5000, True),
    (CHARGER_2, "ocpp2.0.1", "StatusNotification", status_201(2), 2, True),
    (CHARGER_2, "ocpp2.0.1", "TransactionEvent", started_201(0), 0, True),
    (CHARGER_2, "ocpp2.0.1", "TransactionEvent", started_201(7), 7, True),
    (CHARGER_2, "ocpp2.0.1", "MeterValues", meter_values_201(9), 9, True),
    # what a charger may say
    (CHARGER, "ocpp1.6", "StatusNotification", status_payload(0, "Available"), 0, False),
    (CHARGER, "ocpp1.6", "StatusNotification", status_payload(2, "Available"), 2, False),
    (CHARGER, "ocpp1.6", "MeterValues", meter_values_16(0), 0, False),
    (CHARGER, "ocpp1.6", "StartTransaction", start_16(2), 2, False),
    (UNCONFIGURED, "ocpp1.6", "StatusNotification", status_payload(7, "Available"), 7, False),
    (CHARGER_2, "ocpp2.0.1", "StatusNotification", status_201(1), 1, False),
    (CHARGER_2, "ocpp2.0.1", "MeterValues", meter_values_201(0), 0, False),
    # last: a station that reconnects with a charge running is asked about it first (GetTransactionStatus)
    (CHARGER_2, "ocpp2.0.1", "TransactionEvent", started_201(1), 1, False),
]


async def boot(cp, subprotocol: str) -> None:
    if subprotocol == "ocpp1.6":
        await cp.boot()
    else:
        reply = await cp.call("BootNotification", {"reason": "PowerUp",
                                                   "chargingStation": {"model": "raw", "vendorName": "faults"}})
        assert reply[0] == 3, reply


async def test_connector_ids_beyond_the_charger_are_refused_and_never_stored(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, "evedge.ocpp")
    config = fault_config(tmp_path, unknown_chargers="accept", accept_unknown_id_tags=True)
    async with running_site(config) as site:
        for charger_id, subprotocol, action, payload, connector, refused in CALLS:
            async with raw_charger(site, charger_id, subprotocols=[subprotocol]) as cp:
                await boot(cp, subprotocol)
                reply = await cp.call(action, payload)
            what = f"{charger_id} {action} connector {connector}"
            if refused:
                assert reply[0] == 4 and reply[2] == REFUSED, (what, reply)
                assert str(connector) in reply[3], (what, reply)
                assert any(charger_id in r.getMessage() and REFUSED in r.getMessage() and action in r.getMessage()
                           for r in caplog.records), what
            else:
                assert reply[0] == 3, (what, reply)
        async with api_client(site) as api:
            listed = {c["chargeBoxId"]: sorted(k["connectorId"] for k in c["connectors"])
                      for c in (await api.get("/api/v1/chargers")).json()["chargers"]}
    assert listed == {CHARGER: [0, 1, 2], CHARGER_2: [0, 1], UNCONFIGURED: [7]}
    with sqlite3.connect(site.store.path) as db:
        stored = set(db.execute("SELECT charger_id, connector_id FROM connectors UNION"
                                " SELECT charger_id, connector_id FROM meter_values UNION"
                                " SELECT charger_id, connector_id FROM transactions").fetchall())
    assert stored <= {(CHARGER, 0), (CHARGER, 1), (CHARGER, 2), (CHARGER_2, 1), (CHARGER_2, 0),
                      (UNCONFIGURED, 7)}, stored


@pytest.mark.parametrize("connector", [0, 3])
async def test_a_remote_start_names_a_connector_of_the_charger(tmp_path, connector: int) -> None:
    async with running_site(fault_config(tmp_path)) as site:
        async with raw_charger(site, CHARGER) as cp, api_client(site) as api:
            await cp.boot()
            response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start",
                                      json={"connectorId": connector, "idTag": "TAG"})
    assert response.status_code in (400, 422), response.text
