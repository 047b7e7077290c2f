"""Public charging respects a reservation: a reserved connector takes no pay-by-phone session."""

from __future__ import annotations

from datetime import timedelta

from controller.timefmt import iso, utcnow
from tests.public_charging.helpers import CHARGER, CODE, charger, make_config, problem, public_site


async def test_a_reserved_connector_takes_no_public_session(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.cmd("auto", enabled=False)  # the connector still reads Available: the books decide
        reserved = await h.admin.post(f"/api/v1/chargers/{CHARGER}/reservations", json={
            "connectorId": 1, "idTag": "MEMBER", "expiresAt": iso(utcnow() + timedelta(hours=1))})
        assert reserved.status_code == 201, reserved.text
        response = await h.public.post("/api/v1/public-charging/sessions", json={"code": CODE, "connector_id": 1})
        body = problem(response, 409, "ConnectorReserved")
        assert "reserved for another id tag" in body["message"]
        token, _ = await h.create(2)  # the other connector is free
        assert token
