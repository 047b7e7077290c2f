"""A connector runs one charge: a start on a connector whose previous charge was never stopped (its
StopTransaction got lost) closes that one, and the upstream hears of it."""

from __future__ import annotations

import pytest

from controller.simulators.charger_process import SimulatedCharger
from tests.support import CHARGER, make_config, ocpp_url, running_site
from tests.upstream.test_flows import upstream_toml, wait_delivered

T0 = "2026-02-06T12:00:00.000Z"
T1 = "2026-02-06T12:30:00.000Z"
T2 = "2026-02-06T12:40:00.000Z"


@pytest.fixture
async def site(tmp_path, receiver):
    async with running_site(make_config(tmp_path, extra=upstream_toml(receiver))) as running:
        yield running


@pytest.fixture
async def sim(site, nursery):
    async with SimulatedCharger.open(ocpp_url(site, CHARGER), connectors=2) as charger:
        assert (await charger.boot())["status"] == "Accepted"
        yield charger


async def test_a_start_closes_the_charge_its_connector_never_stopped(site, api, sim, receiver):
    for tag in ("TAG1", "TAG2"):
        await api.put(f"/api/v1/id-tags/{tag}", json={"status": "Accepted"})
    first = (await sim.start(connector=1, idTag="TAG1", meterStart=1000, timestamp=T0))["transactionId"]
    await sim.meter(1, energyWh=4000, timestamp=T1)
    # the charger lost that stop and starts the next charge on the same connector
    second = (await sim.start(connector=1, idTag="TAG2", meterStart=4200, timestamp=T2))["transactionId"]
    active = (await api.get("/api/v1/transactions", params={"status": "active", "chargeBoxId": CHARGER})).json()
    assert [t["transactionId"] for t in active["transactions"]] == [second]
    closed = (await api.get(f"/api/v1/transactions/{first}")).json()
    assert (closed["status"], closed["closedBy"], closed["stopReason"]) == ("completed", "controller", "Other")
    assert (closed["meterStop"], closed["energyDelivered"], closed["stopTime"]) == (4000, 3.0, T2)
    assert (await api.get(f"/api/v1/transactions/{second}")).json()["closedBy"] is None
    events = await wait_delivered(receiver, lambda e: len(of_type_in(e, "start")) == 2
                                  and len(of_type_in(e, "stop_transaction")) == 1)
    [stop] = of_type_in(events, "stop_transaction")
    assert (stop["transaction_id"], stop["kwh"], stop["idTag"]) == (first, 3.0, "TAG1")

    # the lost stop turns up after all: the charger's figures replace the controller's, and the
    # stop is not announced twice
    await sim.stop(transactionId=first, meterStop=4100, timestamp=T1, reason="EVDisconnected")
    late = (await api.get(f"/api/v1/transactions/{first}")).json()
    assert (late["meterStop"], late["stopReason"], late["stopTime"], late["closedBy"]) == (
        4100, "EVDisconnected", T1, "charger")
    assert len((await api.get("/api/v1/transactions")).json()["transactions"]) == 2


def of_type_in(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]
