"""The driver page in headless Chromium (Debian `chromium`), driven over the DevTools protocol.

Skipped when chromium is not installed (CI: add `chromium` to .ci/run's apt-get line).
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import open_websocket_url

from tests.public_charging.helpers import CODE, charger, make_config, public_site, transaction_started, wait_connector
from controller.config import load_config
from tests.support import eventually

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


class Page:
    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def evaluate(self, expression: str):
        message_id = next(self.ids)
        await self.ws.send_message(json.dumps({"id": message_id, "method": "Runtime.evaluate", "params": {
            "expression": expression, "returnByValue": True, "awaitPromise": True}}))
        with trio.fail_after(10):
            while True:
                reply = json.loads(await self.ws.get_message())
                if reply.get("id") == message_id:
                    result = reply["result"]
                    assert "exceptionDetails" not in result, result
                    return result["result"].get("value")

    async def text(self, element_id: str) -> str:
        return await self.evaluate(f"(document.getElementById({element_id!r}) || {{}}).textContent || ''")

    async def wait_text(self, element_id: str, predicate, what: str) -> str:
        found = {}

        async def check() -> bool:
            found["text"] = await self.text(element_id)
            return predicate(found["text"])

        await eventually(check, timeout=20, what=f"{what} (#{element_id})")
        return found["text"]


async def open_page(nursery: trio.Nursery, url: str, profile: Path) -> str:
    """Launch chromium on `url`; return the page target's DevTools WebSocket URL."""
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--remote-debugging-port=0", "--remote-allow-origins=*", url]
    await nursery.start(lambda task_status: trio.run_process(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, task_status=task_status))
    port_file = profile / "DevToolsActivePort"
    await eventually(port_file.exists, timeout=20, what="chromium's DevTools port")
    await eventually(lambda: len(port_file.read_text().split()) >= 2, what="DevToolsActivePort content")
    port = int(port_file.read_text().split()[0])
    async with httpx.AsyncClient() as client:
        async def page_target():
            targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
            return next((t for t in targets if t["type"] == "page" and "/charge/" in t["url"]), None)

        target = await eventually(page_target, timeout=20, what="the page target")
    return target["webSocketDebuggerUrl"]


async def test_driver_page_start_watch_stop(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        async with trio.open_nursery() as nursery:
            ws_url = await open_page(nursery, f"http://127.0.0.1:{h.site.api_port}/charge/{CODE.lower()}",
                                     tmp_path / "chromium-profile")
            async with open_websocket_url(ws_url, max_message_size=16 * 1024 * 1024) as ws:
                page = Page(ws)
                await page.wait_text("title", lambda t: t == "Bay 1", "the charger's name")
                assert await page.text("price") == ""  # free charging (no payment provider): no prices
                assert await page.evaluate("document.getElementById('connector').options.length") == 2
                assert await page.evaluate("document.getElementById('connector').value") == "1"  # the plugged one
                await page.evaluate("document.getElementById('email').value = 'driver@example.com'")
                await page.evaluate("document.getElementById('start').click()")
                await transaction_started(sim)
                await page.wait_text("status", lambda t: t == "charging", "charging")
                await sim.meter(1, energyWh=2000)
                await page.wait_text("energy", lambda t: t == "2.000", "energy shown")
                assert await page.evaluate("document.getElementById('cost').hidden")  # free: no cost shown
                assert await page.evaluate("document.getElementById('cancel-session').hidden")  # charging
                await page.evaluate("document.getElementById('stop').click()")
                await page.wait_text("status", lambda t: t == "captured", "captured")
            nursery.cancel_scope.cancel()
        listing = (await h.admin.get("/api/v1/public-sessions")).json()
        assert listing["sessions"][0]["status"] == "captured"
        assert listing["sessions"][0]["driver_email"] == "driver@example.com"


async def test_driver_page_defaults_to_a_free_connector_names_the_operator_and_cancels(tmp_path):
    config = make_config(tmp_path)
    text = config.source.read_text().replace(
        "[public_charging]\n", '[public_charging]\noperator_name = "Stadtwerke"\noperator_contact = "+49 30 1234"\n', 1)
    config.source.write_text(text)
    async with public_site(load_config(config.source)) as h, charger(h.site) as sim:
        await sim.status(1, "Faulted")
        await sim.status(2, "Available")
        await wait_connector(h.site, 1, "Faulted")
        async with trio.open_nursery() as nursery:
            ws_url = await open_page(nursery, f"http://127.0.0.1:{h.site.api_port}/charge/{CODE.lower()}",
                                     tmp_path / "chromium-profile")
            async with open_websocket_url(ws_url, max_message_size=16 * 1024 * 1024) as ws:
                page = Page(ws)
                await page.wait_text("operator", lambda t: "Stadtwerke" in t and "+49 30 1234" in t, "the operator")
                assert await page.evaluate("document.getElementById('connector').value") == "2"  # not the Faulted one
                assert "Plug the cable" in await page.text("plug-in")
                await page.evaluate("document.getElementById('start').click()")
                # paid (free), waiting for the car: the driver is told to plug in and may still cancel
                await page.wait_text("status", lambda t: t == "authorized", "waiting for the car")
                assert not await page.evaluate("document.getElementById('waiting').hidden")
                assert not await page.evaluate("document.getElementById('cancel-session').hidden")
                await page.evaluate("document.getElementById('cancel-session').click()")
                await page.wait_text("status", lambda t: t == "failed", "cancelled")
                assert await page.evaluate("document.getElementById('cancel-session').hidden")
            nursery.cancel_scope.cancel()
        listing = (await h.admin.get("/api/v1/public-sessions")).json()
        assert listing["sessions"][0]["status"] == "failed" and listing["sessions"][0]["connector_id"] == 2
