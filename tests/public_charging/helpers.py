"""A running site with public charging, a simulated charger, and (optionally) a fake Stripe."""

from __future__ import annotations

import hashlib
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import trio

from controller.config import load_config
from controller.store import public_sessions as q
from controller.simulators.charger_process import SimulatedCharger
from tests.public_charging.fake_stripe import PUBLISHABLE, SECRET
from tests.stations import booked_id, next_start
from tests.support import API_KEY, api_client, eventually, ocpp_url, running_site

CHARGER = "CHARGER-001"
CODE = "A1B2"
PRICING = 'pricing = { currency = "EUR", price_per_kwh = 39, start_fee = 50, tax_rate = "0.21", amount_authorized = 5000 }'


def config_text(data_dir: Path, *, provider: str = "none", stripe_base: str = "http://127.0.0.1:9",
                session_expiry_s: int = 900, start_timeout_s: int = 300, enabled: bool = True,
                per_hour: int = 20, token_ttl_s: int = 86400) -> str:
    return f"""
[site]
name = "public test site"
data_dir = "{data_dir.as_posix()}"

[ocpp]
listen = "127.0.0.1:0"
unknown_chargers = "reject"
local_list = "off"
call_timeout_s = 5
remote_start_timeout_s = 600

[api]
listen = "127.0.0.1:0"
api_keys = ["{API_KEY}"]

[public_charging]
enabled = {str(enabled).lower()}
session_expiry_s = {session_expiry_s}
start_timeout_s = {start_timeout_s}
token_ttl_s = {token_ttl_s}
max_sessions_per_charger_per_hour = {per_hour}
payment_provider = "{provider}"
stripe_api_base = "{stripe_base}"
stripe_secret_key = "{SECRET}"
stripe_publishable_key = "{PUBLISHABLE}"
stripe_timeout_s = 3

[[chargers]]
id = "{CHARGER}"
connectors = 2
name = "Bay 1"
public_code = "{CODE}"
{PRICING}

[[chargers]]
id = "CHARGER-002"
connectors = 1
"""


def make_config(tmp_path: Path, **options: Any):
    path = tmp_path / "site.toml"
    path.write_text(config_text(tmp_path / "data", **options), encoding="utf-8")
    return load_config(path)


class Harness:
    def __init__(self, site, stack: AsyncExitStack) -> None:
        self.site, self.stack = site, stack
        self.public: httpx.AsyncClient
        self.admin: httpx.AsyncClient

    async def open_clients(self) -> None:
        self.public = await self.stack.enter_async_context(api_client(self.site, key=None))
        self.admin = await self.stack.enter_async_context(api_client(self.site))

    async def jump(self, clock, seconds: float) -> None:
        """Advance the MockClock. hypercorn's idle-connection timers fire on a jump and a kept-alive
        connection then hangs, so the clients start on fresh connections afterwards."""
        clock.jump(seconds)
        await self.open_clients()

    async def create(self, connector: int = 1, **extra: Any) -> tuple[str, dict]:
        response = await self.public.post("/api/v1/public-charging/sessions",
                                          json={"code": CODE.lower(), "connector_id": connector, **extra})
        assert response.status_code == 201, response.text
        body = response.json()
        return body["session_token"], body

    async def session(self, token: str) -> dict:
        """The session's data as the operator sees it (keyed API: no rate limit while polling)."""
        row = await self.site.store.read(q.by_token_hash, hashlib.sha256(token.encode()).hexdigest())
        assert row is not None
        response = await self.admin.get(f"/api/v1/public-sessions/{row['id']}")
        assert response.status_code == 200, response.text
        return response.json()

    async def wait_released(self, token: str) -> dict:
        found: dict = {}

        async def check() -> bool:
            found.update(await self.session(token))
            return found["hold_released"]

        await eventually(check, what="hold released")
        return found

    async def wait_status(self, token: str, *statuses: str, timeout: float = 15) -> dict:
        found: dict = {}

        async def check() -> bool:
            found.update(await self.session(token))
            return found["status"] in statuses

        await eventually(check, timeout=timeout, what=f"status in {statuses} (last {found.get('status')})")
        return found


@asynccontextmanager
async def public_site(config) -> AsyncIterator[Harness]:
    async with running_site(config) as site, AsyncExitStack() as stack:
        harness = Harness(site, stack)
        await harness.open_clients()
        yield harness


@asynccontextmanager
async def charger(site, connectors: int = 2, boot: bool = True,
                  version: str = "1.6") -> AsyncIterator[SimulatedCharger]:
    """The simulated CHARGER (OCPP `version`: "1.6" or "2.0.1"), booted, its connectors Available."""
    async with SimulatedCharger.open(ocpp_url(site, CHARGER), connectors=connectors, version=version) as sim:
        if boot:
            await sim.boot()
            for n in range(1, connectors + 1):
                await sim.status(n, "Available")
        yield sim


def problem(response: httpx.Response, status: int, code: str) -> dict:
    """The error body of `response`, after checking its status and error code."""
    body = response.json()
    assert (response.status_code, body.get("error")) == (status, code), response.text
    return body


async def wait_connector(site, connector: int, status: str) -> None:
    await eventually(lambda: site.chargers.get(CHARGER).connector(connector).status == status,
                     what=f"connector {connector} {status}")


async def transaction_started(sim: SimulatedCharger, connector: int = 1, site=None) -> int:
    """Our transaction id of the charge the simulated charger starts next. A 2.0.1 station names its
    own transactions: give the `site`, whose books tie its name to ours (any version then)."""
    if site is not None:
        return await booked_id(site, CHARGER, await next_start(sim, connector, timeout=15))
    event = await sim.next_event("sent", action="StartTransaction", timeout=15)
    assert event["request"]["connectorId"] == connector
    return event["response"]["transactionId"]


def pause(seconds: float = 0.05):
    return trio.sleep(seconds)
