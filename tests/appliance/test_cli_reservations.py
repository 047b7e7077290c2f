"""`evedge reservations`, run as real processes against a live in-process site and a raw charger."""

from __future__ import annotations

import json
from pathlib import Path

import trio

from .conftest import charger, evedge, running_site, write_config


async def test_reservations_create_list_cancel(tmp_path: Path) -> None:
    async with running_site(write_config(tmp_path)) as site:
        api = ("--url", f"http://127.0.0.1:{site.api_port}", "--api-key", "test-key")
        async with charger(site.ocpp_port, "CP1") as cp:
            await cp.boot()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cp.answer_one, {"status": "Accepted"})
                rc, out, err = await evedge("reservations", "create", "CP1", "1", "GUEST", "--minutes", "30", *api)
            assert rc == 0, err
            header, row = out.splitlines()
            assert header.split()[:4] == ["ID", "CHARGER", "CONN", "ID"]
            rid = row.split()[0]
            assert row.split()[1:4] == ["CP1", "1", "GUEST"] and "accepted" in row.split()
            call = cp.answered[-1]
            assert call[2] == "ReserveNow" and call[3]["reservationId"] == int(rid) and call[3]["idTag"] == "GUEST"

            rc, out, err = await evedge("reservations", "list", "--status", "accepted", "--json", *api)
            assert rc == 0, err
            assert [r["reservationId"] for r in json.loads(out)["reservations"]] == [int(rid)]

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cp.answer_one, {"status": "Accepted"})
                rc, out, err = await evedge("reservations", "cancel", "CP1", rid, *api)
            assert rc == 0 and "cancelled" in out.split(), err
            assert cp.answered[-1][2:] == ["CancelReservation", {"reservationId": int(rid)}]

        rc, _, err = await evedge("reservations", "create", "CP1", "1", "GUEST", *api)
        assert rc == 2 and "--minutes" in err
        rc, _, err = await evedge("reservations", "cancel", "CP1", rid, *api)
        assert rc == 1 and "ReservationNotActive" in err
