"""The driver page in headless Chromium (Debian `chromium`), driven by Playwright (tests/browser.py).

Skipped when chromium is not installed (CI: `chromium` is on .ci/run's apt-get line).
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser import browser  # noqa: F401 (the fixture)
from tests.public_charging.helpers import CODE, charger, make_config, public_site, transaction_started, wait_connector


async def test_driver_page_start_watch_stop(tmp_path, browser):  # noqa: F811
    async with public_site(make_config(tmp_path)) as h, charger(h.site) as sim:
        await sim.status(1, "Preparing")
        await wait_connector(h.site, 1, "Preparing")
        page = await browser.page(f"http://127.0.0.1:{h.site.api_port}")
        await browser.run(page.goto, f"/charge/{CODE.lower()}")
        await browser.run(lambda: expect(page.locator("#price")).to_contain_text(re.compile(r"0\.39.*per kWh")))
        assert await browser.run(page.locator("#title").text_content) == "Bay 1"
        assert await browser.run(page.locator("#connector option").count) == 2
        await browser.run(page.locator("#email").fill, "driver@example.com")
        await browser.run(page.locator("#start").click)
        await transaction_started(sim)
        await browser.run(lambda: expect(page.locator("#status")).to_have_text("charging"))
        await sim.meter(1, energyWh=2000)
        await browser.run(lambda: expect(page.locator("#energy")).to_have_text("2.000"))
        assert "1.28" in await browser.run(page.locator("#cost").text_content)  # 50 + 2 kWh x 39
        await browser.run(page.locator("#stop").click)
        await browser.run(lambda: expect(page.locator("#status")).to_have_text("captured"))
        listing = (await h.admin.get("/api/v1/public-sessions")).json()
        assert listing["sessions"][0]["status"] == "captured"
        assert listing["sessions"][0]["driver_email"] == "driver@example.com"
