"""GET /healthz: 200 while the controller can do its job, 503 with the failing part when not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from .conftest import charger, running_site


async def test_healthy_site_reports_its_parts(config_file: Path) -> None:
    async with running_site(config_file) as site, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{site.api_port}") as client:
        async with charger(site.ocpp_port, "CP1") as cp:
            await cp.boot()
            response = await client.get("/healthz")  # no API key needed
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "ok"
        assert body["chargersOnline"] == 1
        assert body["transactionsOpen"] == 0
        checks = body["checks"]
        assert checks["database"]["status"] == "ok" and checks["database"]["sizeBytes"] > 0
        assert checks["ocpp"]["status"] == "ok" and checks["ocpp"]["port"] == site.ocpp_port
        assert checks["upstream"]["status"] == "ok" and checks["upstream"]["outboxPending"] == 0
        assert checks["eventLoop"]["status"] == "ok"


async def test_a_degraded_bus_is_reported_but_still_200(config_file: Path) -> None:
    async with running_site(config_file) as site, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{site.api_port}") as client:
        site.health_checks["bus:rs485-1"] = lambda: {"status": "degraded", "error": "meter 3 silent"}
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json()["status"] == "degraded"
        assert response.json()["checks"]["bus:rs485-1"]["error"] == "meter 3 silent"


async def test_a_database_that_takes_no_writes_is_503(config_file: Path) -> None:
    async with running_site(config_file) as site, httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{site.api_port}") as client:
        # another process (a backup, an sqlite3 shell) holds the write lock
        other = sqlite3.connect(site.store.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            response = await client.get("/healthz")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "failing"
        assert body["checks"]["database"]["status"] == "failing"
        assert "lock" in body["checks"]["database"]["error"]
        assert (await client.get("/healthz")).status_code == 200  # and back once released
