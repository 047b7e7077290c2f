"""Getting the books out: filtered lists that page stably past 1,000 rows, the CSV export (API and
`evedge transactions export`), and a transaction's meter values; over real sockets and a real
SQLite file, the CLI as a real process."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from controller.config import load_config
from controller.store import transactions as q
from controller.timefmt import iso, parse_iso
from tests.appliance.conftest import evedge
from tests.support import (
    API_KEY,
    CHARGER,
    CHARGER_2,
    api_client,
    config_text,
    raw_charger,
    running_site,
)

BASE = parse_iso("2026-02-01T00:00:00Z")


def _book(conn, count: int, first: int = 0) -> None:
    """`count` completed charges, one every hour from BASE (+ `first` hours), 2 kWh each: every
    third on CHARGER_2, every fifth with the card FLEET-7."""
    from datetime import timedelta

    for n in range(first, first + count):
        start = iso(BASE + timedelta(hours=n))
        stop = iso(BASE + timedelta(hours=n, minutes=45))
        charger = CHARGER_2 if n % 3 == 0 else CHARGER
        tag = "FLEET-7" if n % 5 == 0 else f"CARD-{n}"
        row, _ = q.begin(conn, charger_id=charger, connector_id=1, id_tag=tag, id_tag_status="Accepted",
                         meter_start=10_000 * n, start_time=start, reservation_id=None, start_key=f"k{n}",
                         default_mode="local")
        q.finish(conn, transaction_id=row["id"], charger_id=charger, meter_stop=10_000 * n + 2_000,
                 stop_time=stop, reason="Local", id_tag=None, transaction_data=None)


def _config(tmp_path: Path):
    text = config_text(tmp_path / "data").replace("[site]\n", '[site]\ntimezone = "Asia/Kolkata"\n', 1)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


async def test_cursor_pages_past_1000_rows_while_charges_start(tmp_path):
    async with running_site(_config(tmp_path)) as site, api_client(site) as api:
        await site.store.write(_book, 1_100)
        first = (await api.get("/api/v1/transactions", params={"limit": 1000})).json()
        assert first["pagination"]["total"] == 1_100 and len(first["transactions"]) == 1000
        await site.store.write(_book, 5, 2_000)  # new charges between two pages
        second = (await api.get("/api/v1/transactions", params={
            "limit": 1000, "cursor": first["pagination"]["nextCursor"]})).json()
        assert second["pagination"]["nextCursor"] is None
        seen = [t["transactionId"] for t in first["transactions"] + second["transactions"]]
        assert len(seen) == len(set(seen)) == 1_100  # none twice, none left out
        assert seen == sorted(seen, reverse=True)

        bad = await api.get("/api/v1/transactions", params={"cursor": "x1"})
        assert bad.status_code == 422 and "cursor" in bad.json()["message"]


async def test_filters_by_start_time_id_tag_and_status(tmp_path):
    async with running_site(_config(tmp_path)) as site, api_client(site) as api:
        await site.store.write(_book, 48)  # two days from BASE

        async def listing(**params) -> list[dict]:
            response = await api.get("/api/v1/transactions", params={"limit": 1000, **params})
            assert response.status_code == 200, response.text
            return response.json()["transactions"]

        day_two = await listing(**{"from": "2026-02-02T00:00:00Z", "to": "2026-02-03"})
        assert len(day_two) == 24 and all(t["startTime"].startswith("2026-02-02") for t in day_two)
        # an offset is honoured: 01:00+01:00 is midnight UTC
        assert len(await listing(**{"from": "2026-02-02T01:00:00+01:00"})) == 24
        assert len(await listing(to="2026-02-01T05:00:00Z")) == 5  # 'to' is exclusive
        fleet = await listing(idTag="fleet-7")
        assert {t["idTag"] for t in fleet} == {"FLEET-7"} and len(fleet) == 10
        assert len(await listing(idTag="fleet-7", chargeBoxId=CHARGER_2)) == 4  # n = 0, 15, 30, 45
        assert await listing(status="active") == []
        for bad in ({"from": "yesterday"}, {"to": "2026-13-01"}):
            response = await api.get("/api/v1/transactions", params=bad)
            assert response.status_code == 422 and next(iter(bad)) in response.json()["message"]


async def test_csv_export_has_kwh_and_utc_and_local_times(tmp_path):
    async with running_site(_config(tmp_path)) as site, api_client(site) as api:
        await site.store.write(_book, 30)
        await site.store.write(lambda conn: q.begin(  # a formula where a card number should be
            conn, charger_id=CHARGER, connector_id=2, id_tag="=1+1", id_tag_status="Invalid", meter_start=0,
            start_time="2026-02-01T12:30:00.000Z", reservation_id=None, start_key="evil", default_mode="local"))
        response = await api.get("/api/v1/transactions.csv", params={"from": "2026-02-01T10:00:00Z",
                                                                     "to": "2026-02-01T13:00:00Z"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["transactionId"] for r in rows] == ["31", "13", "12", "11"]  # newest first
        evil, charge = rows[0], rows[1]
        assert evil["idTag"] == "'=1+1" and evil["status"] == "active"
        assert charge == {
            "transactionId": "13", "chargeBoxId": CHARGER_2, "connectorId": "1", "idTag": "CARD-12",
            "status": "completed", "startTimeUtc": "2026-02-01T12:00:00.000Z", "stopTimeUtc": "2026-02-01T12:45:00.000Z",
            "startTimeLocal": "2026-02-01T17:30:00+05:30", "stopTimeLocal": "2026-02-01T18:15:00+05:30",
            "durationMinutes": "45", "meterStartWh": "120000", "meterStopWh": "122000", "energyKWh": "2.0",
            "stopReason": "Local"}
        everything = await api.get("/api/v1/transactions.csv")
        assert len(list(csv.DictReader(io.StringIO(everything.text)))) == 31
        async with api_client(site, validate=False) as plain:  # the list, asked for CSV: the same export
            negotiated = await plain.get("/api/v1/transactions", params={"idTag": "=1+1", "limit": 1},
                                         headers={"Accept": "text/csv"})
        assert negotiated.headers["content-type"].startswith("text/csv")
        assert [r["transactionId"] for r in csv.DictReader(io.StringIO(negotiated.text))] == ["31"]
        assert (await api.get("/api/v1/transactions", headers={"Accept": "*/*"})).json()["transactions"]
        bad = await api.get("/api/v1/transactions.csv", params={"limit": 5})
        assert bad.status_code == 422 and "limit" in bad.json()["message"]
        assert (await api.get("/api/v1/transactions.csv", headers={"X-API-Key": "wrong"})).status_code == 401


async def test_meter_values_of_a_transaction_paged(tmp_path):
    async with running_site(_config(tmp_path)) as site, api_client(site) as api:
        async with raw_charger(site, CHARGER) as cp:
            await cp.boot()
            started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "CARD", "meterStart": 1000,
                                                         "timestamp": "2026-02-01T10:00:00Z"})
            tx = started[2]["transactionId"]
            for minute, wh in ((1, 1100), (2, 1250), (3, 1400)):
                sample = {"timestamp": f"2026-02-01T10:0{minute}:00Z", "sampledValue": [
                    {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "7200", "measurand": "Power.Active.Import", "unit": "W"}]}
                reply = await cp.call("MeterValues", {"connectorId": 1, "transactionId": tx, "meterValue": [sample]})
                assert reply[0] == 3
        page = (await api.get(f"/api/v1/transactions/{tx}/meter-values", params={"limit": 2})).json()
        assert page["transactionId"] == tx and page["pagination"] == {"total": 3, "limit": 2, "offset": 0}
        assert [v["timestamp"] for v in page["meterValues"]] == ["2026-02-01T10:01:00.000Z", "2026-02-01T10:02:00.000Z"]
        assert page["meterValues"][0]["connectorId"] == 1
        assert page["meterValues"][0]["sampledValue"][0] == {
            "value": "1100", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        rest = (await api.get(f"/api/v1/transactions/{tx}/meter-values", params={"offset": 2})).json()
        assert [v["sampledValue"][0]["value"] for v in rest["meterValues"]] == ["1400"]
        missing = await api.get("/api/v1/transactions/99999/meter-values")
        assert missing.status_code == 404
        assert (await api.get("/api/v1/transactions/abc/meter-values")).status_code == 422


async def test_cli_lists_with_filters_and_exports_a_month(tmp_path):
    async with running_site(_config(tmp_path)) as site:
        await site.store.write(_book, 60)
        api = ("--url", f"http://127.0.0.1:{site.api_port}", "--api-key", API_KEY)
        output = tmp_path / "feb-2.csv"
        rc, out, err = await evedge("transactions", "export", "--from", "2026-02-02", "--to", "2026-02-03",
                                    "--output", str(output), *api)
        assert rc == 0, err
        assert "exported 24 transactions" in err
        rows = list(csv.DictReader(output.open(newline="", encoding="utf-8")))
        assert len(rows) == 24 and {r["startTimeUtc"][:10] for r in rows} == {"2026-02-02"}
        assert sum(float(r["energyKWh"]) for r in rows) == pytest.approx(48.0)

        rc, out, err = await evedge("transactions", "export", "--id-tag", "FLEET-7", *api)
        assert rc == 0, err
        assert len(list(csv.DictReader(io.StringIO(out)))) == 12

        rc, out, err = await evedge("transactions", "list", "--limit", "50", *api)
        assert rc == 0, err
        cursor = out.rsplit("--cursor ", 1)[1].strip()
        rc, out, err = await evedge("transactions", "list", "--cursor", cursor, "--json", *api)
        assert rc == 0, err
        assert [t["transactionId"] for t in json.loads(out)["transactions"]] == list(range(10, 0, -1))

        rc, out, err = await evedge("transactions", "export", "--from", "last week", "--output", str(output), *api)
        assert rc == 1 and "from" in err
        assert output.exists()  # the earlier export is not replaced by a failed one
