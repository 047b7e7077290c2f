"""The driver page in headless Chromium (Debian `chromium`), driven by Playwright (tests/browser.py).

Skipped when chromium is not installed (CI: `chromium` is on .ci/run's apt-get line).
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from controller.config import load_config
from tests.browser import browser  # noqa: F401 (the fixture)
from tests.public_charging.helpers import CODE, charger, make_config, public_site, transaction_started, wait_connector


async def test_driver_page_start_watch_stop(tmp_path, browser):  # noqa: F811
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        page = await browser.page(f"http://127.0.0.1:{h.site.api_port}")
        await browser.run(page.goto, f"/charge/{CODE.lower()}")
        await browser.run(lambda: expect(page.locator("#title")).to_have_text("Bay 1"))
        assert await browser.run(page.locator("#price").text_content) == ""  # free charging: no prices
        assert await browser.run(page.locator("#connector option").count) == 2
        assert await browser.run(page.locator("#connector").input_value) == "1"  # the plugged one
        await browser.run(page.locator("#email").fill, "driver@example.com")
        await browser.run(page.locator("#start").click)
        await transaction_started(sim)
        await browser.run(lambda: expect(page.locator("#status")).to_have_text("charging"))
        await sim.meter(1, energyWh=2000)
        await browser.run(lambda: expect(page.locator("#energy")).to_have_text("2.000"))
        await browser.run(lambda: expect(page.locator("#cost")).to_be_hidden())  # free: no cost shown
        await browser.run(lambda: expect(page.locator("#cancel-session")).to_be_hidden())  # charging
        await browser.run(page.locator("#stop").click)
        await browser.run(lambda: expect(page.locator("#status")).to_have_text("captured"))
        listing = (await h.admin.get("/api/v1/public-sessions")).json()
        assert listing["sessions"][0]["status"] == "captured"
        assert listing["sessions"][0]["driver_email"] == "driver@example.com"


async def test_driver_page_defaults_to_a_free_connector_names_the_operator_and_cancels(tmp_path, browser):  # noqa: F811
    config = make_config(tmp_path)
    text = config.source.read_text().replace(
        "[public_charging]\n", '[public_charging]\noperator_name = "Stadtwerke"\noperator_contact = "+49 30 1234"\n', 1)
    config.source.write_text(text)
    async with public_site(load_config(config.source)) as h, charger(h.site) as sim:
        await sim.status(1, "Faulted")
        await sim.status(2, "Available")
        await wait_connector(h.site, 1, "Faulted")
        page = await browser.page(f"http://127.0.0.1:{h.site.api_port}")
        await browser.run(page.goto, f"/charge/{CODE.lower()}")
        operator = page.locator("#operator")
        await browser.run(lambda: expect(operator).to_contain_text(re.compile(r"Stadtwerke.*\+49 30 1234", re.S)))
        assert await browser.run(page.locator("#connector").input_value) == "2"  # not the Faulted one
        assert "Plug the cable" in await browser.run(page.locator("#plug-in").text_content)
        await browser.run(page.locator("#start").click)
        # paid (free), waiting for the car: the driver is told to plug in and may still cancel
        await browser.run(lambda: expect(page.locator("#status")).to_have_text("authorized"))
        await browser.run(lambda: expect(page.locator("#waiting")).to_be_visible())
        await browser.run(lambda: expect(page.locator("#cancel-session")).to_be_visible())
        await browser.run(page.locator("#cancel-session").click)
        await browser.run(lambda: expect(page.locator("#status")).to_have_text("failed"))
        await browser.run(lambda: expect(page.locator("#cancel-session")).to_be_hidden())
        listing = (await h.admin.get("/api/v1/public-sessions")).json()
        assert listing["sessions"][0]["status"] == "failed" and listing["sessions"][0]["connector_id"] == 2
