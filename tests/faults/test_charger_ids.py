"""Charger ids the rest of the controller could not handle are refused at the handshake.

An id holding `/` or `..` (sent percent-encoded in the URL) would be listed as a pending charger
that no operator can approve: `/api/v1/chargers/{id}/approve` cannot name it.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
from trio_websocket import ConnectionRejected, open_websocket_url

from tests.faults.ocpp_clients import fault_config
from tests.support import RawCharger, api_client, approve_answering, ocpp_url, running_site

UNUSABLE = ["CP%2F1", "..", "%2E%2E", "CP..1", "a%2F..%2Fb", "CP%5C1", "%2E"]


@pytest.mark.parametrize("path_id", UNUSABLE)
async def test_ids_with_slashes_or_dots_are_refused_at_the_handshake(tmp_path, caplog, path_id: str) -> None:
    caplog.set_level(logging.WARNING, "evedge.ocpp")
    async with running_site(fault_config(tmp_path, unknown_chargers="pending")) as site:
        with pytest.raises(ConnectionRejected) as refused:
            async with open_websocket_url(ocpp_url(site, path_id), subprotocols=["ocpp1.6"]):
                pass
        assert refused.value.status_code == 400
        assert any("charger id" in r.getMessage() for r in caplog.records), caplog.text
        async with api_client(site) as api:
            listed = (await api.get("/api/v1/chargers")).json()["chargers"]
        assert {c["chargeBoxId"] for c in listed} == {"CHARGER-001", "CHARGER-002"}


async def test_a_plain_unknown_id_still_gets_in(tmp_path) -> None:
    async with running_site(fault_config(tmp_path, unknown_chargers="pending")) as site:
        async with open_websocket_url(ocpp_url(site, "CP.1-a_b"), subprotocols=["ocpp1.6"]) as ws:
            assert ws.subprotocol == "ocpp1.6"


async def test_every_listed_charger_can_be_approved_through_the_api(tmp_path) -> None:
    """An odd id the handshake lets in (spaces, ?, #, %) is listed, and approved by its encoded name."""
    charger_id = "CP 1?#%"
    encoded = quote(charger_id, safe="")
    async with running_site(fault_config(tmp_path, unknown_chargers="pending")) as site, api_client(site) as api:
        async with open_websocket_url(ocpp_url(site, encoded), subprotocols=["ocpp1.6"]) as ws:
            cp = RawCharger(ws)
            assert (await cp.boot())["status"] == "Pending"
            listed = (await api.get("/api/v1/chargers")).json()["chargers"]
            assert charger_id in {c["chargeBoxId"] for c in listed}
            response, _ = await approve_answering(api, cp, encoded, {"status": "Accepted"})
            assert response.status_code == 200, response.text
            assert (await api.get(f"/api/v1/chargers/{encoded}")).json()["registration"] == "accepted"
