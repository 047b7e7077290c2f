"""Nothing secret in the log, even at debug level with every OCPP frame logged.

A real `evedge run` subprocess (its stdout is the log journald would keep) with a password-protected
charger, upstream webhooks with a bearer token and a signing secret, and public charging through a
(fake) Stripe. The test uses the API with operator, read-only, wrong and missing keys, connects the
charger with the right and a wrong password, runs a paid session to capture, and reloads the config
with SIGHUP. Then no secret (nor its Basic-auth encoding) may appear anywhere in the log.
"""

from __future__ import annotations

import base64
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import HandshakeError, open_websocket_url

from controller.simulators.charger_process import SimulatedCharger
from tests.public_charging.fake_stripe import PUBLISHABLE, SECRET, FakeStripe
from tests.public_charging.helpers import CHARGER, CODE, PRICING, transaction_started
from tests.support import PROJECT_ROOT, eventually

OPERATOR_KEY = "op-4f9c2e7a1b"
READ_ONLY_KEY = "ro-8d3b6a0c5e"
WRONG_KEY = "guess-71e0a9d4c2"
UPSTREAM_TOKEN = "up-token-5a8e1f3b7d"
SIGNING_SECRET = "sign-2c7f9e4a6b"
CHARGER_PASSWORD = "charger-pass-9b1d4f7e"
WRONG_PASSWORD = "not-the-pass-3e8a6c2d"
READY = re.compile(r"ready: ocpp_port=(\d+) api_port=(\d+)")


def _config(tmp_path: Path, stripe_base: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f"""
[site]
name = "secrets"
data_dir = "{(tmp_path / 'data').as_posix()}"

[ocpp]
listen = "127.0.0.1:0"
unknown_chargers = "reject"
local_list = "off"
call_timeout_s = 5

[api]
listen = "127.0.0.1:0"
api_keys = ["{OPERATOR_KEY}"]
read_only_api_keys = ["{READ_ONLY_KEY}"]

[logging]
level = "debug"
frame_log = ["*"]

[upstream]
start_url = "http://127.0.0.1:9/start"
stop_url = "http://127.0.0.1:9/stop"
status_url = "http://127.0.0.1:9/status"
connection_url = "http://127.0.0.1:9/connection"
headers = {{ "Authorization" = "Bearer {UPSTREAM_TOKEN}" }}
signing_secret = "{SIGNING_SECRET}"
retry_initial_s = 0.05
retry_max_s = 0.5
timeout_s = 1

[public_charging]
enabled = true
payment_provider = "stripe"
stripe_api_base = "{stripe_base}"
stripe_secret_key = "{SECRET}"
stripe_publishable_key = "{PUBLISHABLE}"
stripe_timeout_s = 3

[[chargers]]
id = "{CHARGER}"
connectors = 2
name = "Bay 1"
password = "{CHARGER_PASSWORD}"
public_code = "{CODE}"
{PRICING}
""", encoding="utf-8")
    return path


@asynccontextmanager
async def _controller(config: Path, log: Path) -> AsyncIterator[tuple[trio.Process, int, int]]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(PROJECT_ROOT))
    with open(log, "wb") as out:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "controller", "run", "--config", str(config)],
            stdout=out, stderr=out, env=env, cwd=str(PROJECT_ROOT))
    try:
        with trio.fail_after(30):  # a bound against a hang, not a performance claim
            while (ready := READY.search(log.read_text(errors="replace"))) is None:
                assert process.poll() is None, log.read_text()
                await trio.sleep(0.05)
        yield process, int(ready[1]), int(ready[2])
        process.send_signal(signal.SIGTERM)
        with trio.fail_after(15):
            assert await process.wait() == 0, log.read_text()[-3000:]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _exercise(process: trio.Process, ocpp_port: int, api_port: int, stripe: FakeStripe, log: Path) -> dict:
    base = f"http://127.0.0.1:{api_port}"
    secrets: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=base, timeout=15) as http:
        op, ro = {"X-API-Key": OPERATOR_KEY}, {"X-API-Key": READ_ONLY_KEY}
        assert (await http.get("/api/v1/chargers", headers=op)).status_code == 200
        assert (await http.post("/api/v1/id-tags", json={"idTag": "CARD-1"}, headers=op)).status_code == 201
        assert (await http.get("/api/v1/id-tags", headers=ro)).status_code == 200
        assert (await http.post("/api/v1/id-tags", json={"idTag": "RO"}, headers=ro)).status_code == 403
        assert (await http.get("/api/v1/id-tags", headers={"X-API-Key": WRONG_KEY})).status_code == 401
        assert (await http.delete("/api/v1/id-tags/CARD-1", headers={"X-API-Key": WRONG_KEY})).status_code == 401
        assert (await http.get("/api/v1/transactions")).status_code == 401

        url = f"ws://127.0.0.1:{ocpp_port}/ocpp/{CHARGER}"
        wrong = base64.b64encode(f"{CHARGER}:{WRONG_PASSWORD}".encode())
        with pytest.raises(HandshakeError):
            async with open_websocket_url(url, subprotocols=["ocpp1.6"],
                                          extra_headers=[(b"Authorization", b"Basic " + wrong)]):
                pass
        async with SimulatedCharger.open(url, basic_auth=f"{CHARGER}:{CHARGER_PASSWORD}", connectors=2) as sim:
            await sim.boot()
            await sim.status(1, "Preparing")
            await eventually(lambda: _connector_status(http, op, "Preparing"), what="connector 1 Preparing")
            created = await http.post("/api/v1/public-charging/sessions", json={"code": CODE, "connector_id": 1})
            assert created.status_code == 201, created.text
            token = created.json()["session_token"]
            intent = stripe.last_intent()
            secrets |= {"session token": token, "stripe client secret": intent["client_secret"]}
            stripe.confirm(intent["id"])
            confirmed = await http.post(f"/api/v1/public-charging/sessions/{token}/confirm")
            assert confirmed.status_code == 200, confirmed.text
            await transaction_started(sim, 1)
            await sim.meter(1, energyWh=5_000)
            assert (await http.post(f"/api/v1/public-charging/sessions/{token}/stop")).status_code == 200

            async def captured() -> bool:
                page = await http.get("/api/v1/public-sessions", params={"status": "captured"}, headers=op)
                return page.json()["pagination"]["total"] == 1

            await eventually(captured, timeout=20, what="the session captured")
        assert stripe.captures, "the payment went through the fake Stripe"
    process.send_signal(signal.SIGHUP)
    await eventually(lambda: "reloaded" in log.read_text(errors="replace"), what="the reload logged")
    return secrets


async def _connector_status(http: httpx.AsyncClient, headers: dict, status: str) -> bool:
    charger = (await http.get(f"/api/v1/chargers/{CHARGER}", headers=headers)).json()
    return any(c["connectorId"] == 1 and c["status"] == status for c in charger["connectors"])


async def test_nothing_secret_in_a_debug_log(tmp_path: Path) -> None:
    log = tmp_path / "controller.log"
    async with trio.open_nursery() as nursery:
        stripe = await nursery.start(FakeStripe().run)
        async with _controller(_config(tmp_path, stripe.base), log) as (process, ocpp_port, api_port):
            found = await _exercise(process, ocpp_port, api_port, stripe, log)
        nursery.cancel_scope.cancel()
    text = log.read_text(errors="replace")
    # the log really is verbose: debug lines, every frame, the refusals, the payment's life
    for expected in ("level=debug", "logger=evedge.frames", "RemoteStartTransaction", "refused", "captured",
                     "reloaded", "stripe", "attempt"):
        assert expected in text, f"{expected!r} not in the log: the test did not exercise it"
    secrets = {
        "operator API key": OPERATOR_KEY,
        "read-only API key": READ_ONLY_KEY,
        "wrong X-API-Key value": WRONG_KEY,
        "stripe secret key": SECRET,
        "upstream bearer token": UPSTREAM_TOKEN,
        "upstream signing secret": SIGNING_SECRET,
        "charger password": CHARGER_PASSWORD,
        "wrong charger password": WRONG_PASSWORD,
        **found,
    }
    for password in (CHARGER_PASSWORD, WRONG_PASSWORD):
        secrets[f"Basic auth of {password}"] = base64.b64encode(f"{CHARGER}:{password}".encode()).decode()
    leaks = {name: line for name, secret in secrets.items() for line in text.splitlines() if secret in line}
    assert not leaks, "secrets in the log:\n" + "\n".join(f"{name}: {line[:300]}" for name, line in leaks.items())
