"""The dashboard in a real headless Chromium (tests/browser.py): what an installer sees and does.

One browser for the module; each test a fresh context. Waits are Playwright's polling `expect`.
"""

from __future__ import annotations

import re
import socket

from playwright.sync_api import expect

from controller.simulators.card_reader import Rdm6300Emulator
from controller.simulators.charger_process import SimulatedCharger
from controller.simulators.meter import MeterServer, SimulatedMeter
from tests.browser import browser  # noqa: F401 (the fixture)
from tests.dashboard.helpers import READ_ONLY_KEY, make_config
from tests.support import API_KEY, CHARGER, api_base, ocpp_url, raw_charger, running_site

PAGES = ("/", f"/dashboard/chargers/{CHARGER}", "/dashboard/transactions", "/dashboard/id-tags",
         "/dashboard/hardware", "/dashboard/notifications", "/dashboard/public-sessions", "/dashboard/about")


UNNAMED_CONTROLS = """[...document.querySelectorAll('button, input, select, a')]
    .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                 && !e.textContent.trim()).map(e => e.outerHTML)"""


def live(page, key: str):
    """The element showing the live figure `key` (controller/dashboard/live.py)."""
    return page.locator(f'[data-live="{key}"]').first


async def sign_in(browser, page, key: str = API_KEY, start: str = "/") -> None:  # noqa: F811
    def steps() -> None:
        page.goto(start)
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        expect(page.get_by_role("status", name="Live updates")).to_have_text("live")
        page.evaluate("window.notReloaded = true")  # gone if the page ever reloads

    await browser.run(steps)


async def not_reloaded(browser, page) -> bool:  # noqa: F811
    return await browser.run(page.evaluate, "window.notReloaded === true")


async def test_sign_in_with_a_wrong_key_then_a_right_one_and_sign_out(tmp_path, browser):  # noqa: F811
    async with running_site(make_config(tmp_path)) as site:
        page = await browser.page(api_base(site))

        def wrong_key() -> list:
            page.goto("/")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            page.get_by_label("API key").fill("not-a-key")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_contain_text("That API key is not valid")
            return page.context.cookies()

        assert await browser.run(wrong_key) == []
        await sign_in(browser, page)
        (cookie,) = await browser.run(page.context.cookies)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
        assert await browser.run(page.evaluate, "document.cookie") == ""  # no script can read it

        def sign_out() -> list:
            expect(page.get_by_role("heading", name="Site", exact=True)).to_be_visible()
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            page.goto("/dashboard/about")
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            return page.context.cookies()

        assert await browser.run(sign_out) == []


async def test_a_read_only_key_sees_everything_and_no_action(tmp_path, browser):  # noqa: F811
    async with running_site(make_config(tmp_path)) as site, raw_charger(site, CHARGER) as cp:
        await cp.boot()
        page = await browser.page(api_base(site))
        await sign_in(browser, page, READ_ONLY_KEY, start=f"/dashboard/chargers/{CHARGER}")

        def nothing_to_press() -> None:
            expect(page.get_by_role("heading", name=f"Charger {CHARGER}")).to_be_visible()
            expect(page.get_by_text("read-only", exact=True)).to_be_visible()
            for name in ("Start charge", "Unlock", "Reset charger", "Change availability", "Trigger",
                         "Clear cache", "Read configuration"):
                expect(page.get_by_role("button", name=name)).to_have_count(0)
            page.goto("/dashboard/id-tags")
            expect(page.get_by_role("button", name="Save id tag")).to_have_count(0)
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()

        await browser.run(nothing_to_press)


async def test_a_charger_plugged_in_and_a_charge_started_from_the_page_appear_live(tmp_path, browser):  # noqa: F811
    async with running_site(make_config(tmp_path)) as site, \
            SimulatedCharger.open(ocpp_url(site, CHARGER), connectors=2) as sim:
        await sim.boot()
        await sim.status(1, "Available")
        page = await browser.page(api_base(site))
        await sign_in(browser, page, start=f"/dashboard/chargers/{CHARGER}")
        await browser.run(lambda: expect(live(page, f"c/{CHARGER}/1/status")).to_have_text("Available"))

        await sim.status(1, "Preparing")  # a car plugged in
        await browser.run(lambda: expect(live(page, f"c/{CHARGER}/1/status")).to_have_text("Preparing"))

        def start_charge() -> None:
            page.get_by_label("Connector", exact=True).first.select_option("1")
            page.get_by_label("Id tag").fill("CARD-1")
            page.get_by_role("button", name="Start charge").click()
            expect(page.get_by_role("status").filter(has_text="Start accepted")).to_be_visible()

        await browser.run(start_charge)
        event = await sim.next_event("sent", action="StartTransaction", timeout=15)
        transaction_id = event["response"]["transactionId"]
        await browser.run(lambda: expect(page.get_by_role("link", name=str(transaction_id))).to_be_visible())
        await browser.run(lambda: expect(live(page, f"c/{CHARGER}/1/status")).to_have_text("Charging"))

        meter_start = (await site.transactions.get(transaction_id))["meter_start"]
        await sim.meter(1, energyWh=meter_start + 2345)
        await browser.run(lambda: expect(live(page, f"c/{CHARGER}/1/energy")).to_have_text("2.345 kWh"))
        assert await not_reloaded(browser, page)

        def change_a_configuration_key() -> None:
            page.get_by_role("button", name="Read configuration").click()
            expect(page.get_by_role("cell", name="NumberOfConnectors", exact=True)).to_be_visible()
            page.get_by_label("New value of HeartbeatInterval").fill("120")
            page.get_by_role("button", name="Change HeartbeatInterval").click()
            expect(page.get_by_role("status").filter(has_text="ChangeConfiguration: Accepted")).to_be_visible()

        await browser.run(change_a_configuration_key)


async def test_meter_readings_change_and_a_tap_fills_the_id_tag_form_without_a_reload(tmp_path, browser):  # noqa: F811
    meter = SimulatedMeter("sdm630", device_id=1, energy_import_wh=12_345_000, power_w=1500)
    with MeterServer(meter, "tcp") as gateway, Rdm6300Emulator() as reader:
        hardware = (f'[[buses]]\nid = "gw"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {gateway.port}\ntimeout_s = 0.5\n'
                    '[[meters]]\nid = "grid"\nbus = "gw"\nmodel = "sdm630"\npoll_s = 0.1\n'
                    f'[[readers]]\nid = "bay-1"\nkind = "rdm6300"\nport = "{reader.path}"\ncharger = "{CHARGER}"\n'
                    "connector = 1\n")
        async with running_site(make_config(tmp_path, extra=hardware)) as site:
            page = await browser.page(api_base(site))
            await sign_in(browser, page, start="/dashboard/hardware")
            await browser.run(lambda: expect(live(page, "m/grid/power")).to_have_text("1.50 kW"))
            meter.set(power_w=4200)
            await browser.run(lambda: expect(live(page, "m/grid/power")).to_have_text("4.20 kW"))

            def wait_for_a_card() -> None:
                page.goto("/dashboard/id-tags")
                expect(page.get_by_role("status", name="Live updates")).to_have_text("live")
                page.get_by_label("Reader to tap").select_option("bay-1")
                page.get_by_role("button", name="Tap a card to add it").click()
                expect(page.get_by_text("Waiting for a card on bay-1")).to_be_visible()
                page.evaluate("window.notReloaded = true")

            await browser.run(wait_for_a_card)
            reader.present(bytes.fromhex("62E3086CED"), repeats=1)

            def save_the_card() -> None:
                expect(page.get_by_label("Id tag", exact=True)).to_have_value("62E3086CED")
                page.get_by_role("button", name="Save id tag").click()
                expect(page.get_by_role("cell", name="62E3086CED", exact=True)).to_be_visible()

            await browser.run(save_the_card)
            assert await not_reloaded(browser, page)
            assert site.authorization.get("62E3086CED").status == "Accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_open_page_survives_a_controller_restart(tmp_path, browser):  # noqa: F811
    config = make_config(tmp_path, api_listen=f"127.0.0.1:{free_port()}")
    async with running_site(config) as site:
        page = await browser.page(api_base(site))
        await sign_in(browser, page)
    await browser.run(lambda: expect(page.get_by_role("status", name="Live updates")).to_have_text("reconnecting…"))
    async with running_site(config) as site, raw_charger(site, CHARGER) as cp:
        await browser.run(lambda: expect(page.get_by_role("status", name="Live updates")).to_have_text("live"))
        await cp.boot()
        await cp.status(1, "Preparing")
        await browser.run(lambda: expect(live(page, f"c/{CHARGER}/1/status")).to_have_text("Preparing"))
        assert await not_reloaded(browser, page)


async def test_charger_text_is_shown_as_text_and_no_page_scrolls_sideways_on_a_phone(tmp_path, browser):  # noqa: F811
    evil = "<script>window.pwned=1"
    async with running_site(make_config(tmp_path, unknown_chargers="accept")) as site, \
            raw_charger(site, evil) as cp:
        await cp.call("BootNotification", {"chargePointVendor": "<img src=x>", "chargePointModel": "M"})
        await cp.call("StatusNotification", {"connectorId": 1, "status": "Faulted", "errorCode": "OtherError",
                                             "info": "<b>hot</b>"})
        page = await browser.page(api_base(site), phone=True)
        await sign_in(browser, page)

        def shown_as_text() -> None:
            expect(page.get_by_role("link", name=evil)).to_be_visible()
            expect(page.get_by_text("(<b>hot</b>)")).to_be_visible()
            page.get_by_role("link", name=evil).click()
            expect(page.get_by_text("<img src=x>")).to_be_visible()
            assert page.evaluate("window.pwned") is None

        await browser.run(shown_as_text)

        def widths_and_unnamed_controls() -> tuple[dict[str, int], dict[str, list[str]]]:
            widths, unnamed = {}, {}
            for path in PAGES:
                page.goto(path)
                widths[path] = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                unnamed[path] = page.evaluate(UNNAMED_CONTROLS)
            return widths, unnamed

        widths, unnamed = await browser.run(widths_and_unnamed_controls)
        assert widths == {path: 0 for path in PAGES}
        assert unnamed == {path: [] for path in PAGES}  # every control has an accessible name
        assert re.search(r"evedge \d", await browser.run(page.locator("main").inner_text))


async def test_a_form_on_another_site_cannot_post_to_the_dashboard(tmp_path, browser):  # noqa: F811
    async with running_site(make_config(tmp_path)) as site:
        page = await browser.page(api_base(site))
        await sign_in(browser, page)
        target = f"{api_base(site)}/dashboard/id-tags"

        def post_from_elsewhere() -> int:
            # another site's page (here one with no origin at all) posting a form to ours
            elsewhere = page.context.new_page()
            elsewhere.set_content(f'<form method="post" action="{target}"><input name="idTag" value="EVIL">'
                                  '<button>Send</button></form>')
            with elsewhere.expect_response(target) as answer:
                elsewhere.get_by_role("button", name="Send").click()
            return answer.value.status

        assert await browser.run(post_from_elsewhere) == 403
        assert site.authorization.get("EVIL") is None
