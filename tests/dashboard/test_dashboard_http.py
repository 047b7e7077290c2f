"""The dashboard over plain HTTP: signing in and out, what sessions may do, CSRF and cross-site
requests, escaping, CSV export, and the live stream (a real site and real sockets; no browser)."""

from __future__ import annotations

import csv
import io

import httpx
import orjson
import pytest
import trio

from controller.changes import Changes
from tests.dashboard.helpers import READ_ONLY_KEY, make_config, signed_in
from tests.support import API_KEY, CHARGER, api_base, api_client, raw_charger, running_site


@pytest.fixture
async def site(tmp_path):
    async with running_site(make_config(tmp_path, unknown_chargers="accept")) as running:
        yield running


async def test_a_wrong_key_gets_a_clear_message_and_no_cookie(site):
    async with httpx.AsyncClient(base_url=api_base(site)) as client:
        page = await client.get("/")
        assert page.status_code == 303 and page.headers["location"].startswith("/dashboard/sign-in")
        response = await client.post("/dashboard/sign-in", data={"key": "not-a-key"})
        assert response.status_code == 401
        assert "That API key is not valid" in response.text
        assert "set-cookie" not in response.headers and not client.cookies


async def test_the_session_cookie_is_random_http_only_strict_and_ends_at_sign_out(site):
    async with signed_in(site) as one, signed_in(site) as two:
        cookie = one.client.cookies.jar
        (first,) = [c for c in cookie if c.name == "evedge_session"]
        (second,) = [c for c in two.client.cookies.jar if c.name == "evedge_session"]
        assert first.value != second.value and len(first.value) >= 40
        assert first.expires is not None
        assert first.has_nonstandard_attr("HttpOnly") and first.get_nonstandard_attr("SameSite") == "Strict"
        token = first.value

        out = await one.post("/dashboard/sign-out")
        assert out.status_code == 303
        async with httpx.AsyncClient(base_url=api_base(site), cookies={"evedge_session": token}) as stale:
            assert (await stale.get("/")).status_code == 303  # to the sign-in page
        assert (await two.client.get("/")).status_code == 200  # another session is not touched


async def test_the_api_keeps_its_key_header_and_a_session_cookie_does_not_open_it(site):
    async with signed_in(site) as session:
        assert (await session.client.get("/api/v1/chargers")).status_code == 401
    async with api_client(site) as api:
        assert (await api.get("/api/v1/chargers")).status_code == 200


async def test_state_changing_requests_need_the_csrf_token_and_our_own_origin(site):
    async with signed_in(site) as session:
        form = {"idTag": "CARD-1"}
        missing = await session.client.post("/dashboard/id-tags", data=form)
        assert missing.status_code == 403 and missing.json()["error"] == "CsrfTokenMissing"
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
            refused = await session.post("/dashboard/id-tags", data=form, headers=headers)
            assert refused.status_code == 403 and refused.json()["error"] == "CrossSiteRequest", headers
        # signing in from another site's page is refused too (login CSRF)
        login = await session.client.post("/dashboard/sign-in", data={"key": API_KEY},
                                          headers={"Origin": "http://evil.example"})
        assert login.status_code == 403
        assert site.authorization.get("CARD-1") is None
        ok = await session.post("/dashboard/id-tags", data=form, headers={"Origin": api_base(site)})
        assert ok.status_code == 200, ok.text
        assert site.authorization.get("CARD-1").status == "Accepted"


async def test_a_read_only_session_sees_and_is_refused_every_action(site):
    async with signed_in(site, READ_ONLY_KEY) as session:
        page = await session.client.get(f"/dashboard/chargers/{CHARGER}")
        assert page.status_code == 200 and "Start charge" not in page.text and "Reset charger" not in page.text
        for path, form in ((f"/dashboard/chargers/{CHARGER}/reset", {"type": "Soft"}),
                           ("/dashboard/id-tags", {"idTag": "CARD-2"})):
            refused = await session.post(path, data=form)
            assert refused.status_code == 403 and "read-only" in refused.json()["message"], path
        assert site.authorization.get("CARD-2") is None
        assert (await session.post("/dashboard/sign-out")).status_code == 303  # but it may sign out


async def test_bad_form_input_names_the_field(site):
    async with signed_in(site) as session:
        response = await session.post("/dashboard/id-tags", data={"idTag": "X" * 21})
        assert response.status_code == 422 and "idTag" in response.json()["message"]
        response = await session.post(f"/dashboard/chargers/{CHARGER}/remote-start", data={"idTag": "A"})
        assert response.status_code == 422 and "connectorId" in response.json()["message"]
        bad_csv = await session.post("/dashboard/id-tags/import",
                                     files={"file": ("tags.csv", b"idTag,status\nOK-1,Accepted\nBAD,Sometimes\n")})
        assert bad_csv.status_code == 422 and "line 3" in bad_csv.json()["message"]
        assert site.authorization.get("OK-1") is None  # nothing of a file with a bad line
        good = await session.post("/dashboard/id-tags/import",
                                  files={"file": ("tags.csv", b"idTag,status\nOK-1,Accepted\nOK-2,Blocked\n")})
        assert good.status_code == 200 and site.authorization.get("OK-2").status == "Blocked"
        assert (await session.client.get("/dashboard/transactions?from=yesterday")).status_code == 422


async def test_charger_supplied_text_is_escaped(site):
    evil = "<script>window.pwned=1"
    async with raw_charger(site, evil) as cp:
        boot = await cp.call("BootNotification", {"chargePointVendor": "<img src=x>", "chargePointModel": "</td><b>m"})
        assert boot[0] == 3, boot
        await cp.call("StatusNotification", {"connectorId": 1, "status": "Faulted", "errorCode": "OtherError",
                                             "info": "<script>alert(2)</script>"})
        async with signed_in(site) as session:
            page = (await session.client.get("/")).text
            assert evil not in page and "&lt;script&gt;window.pwned=1" in page
            assert "<script>alert(2)" not in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page  # the alert
            charger = await session.client.get(f"/dashboard/chargers/{evil}")
            assert charger.status_code == 200
            assert "<img src=x>" not in charger.text and "&lt;img src=x&gt;" in charger.text
            assert "<b>m" not in charger.text and "&lt;/td&gt;&lt;b&gt;m" in charger.text


async def _transactions(site, count: int) -> None:
    """`count` short charges on CHARGER's connector 1, tags T0.. (the charger starts them itself)."""
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        for n in range(count):
            reply = await cp.call("StartTransaction", {"connectorId": 1, "idTag": f"T{n}", "meterStart": 1000 * n,
                                                       "timestamp": f"2026-03-0{n + 1}T10:00:00Z"})
            await cp.call("StopTransaction", {"transactionId": reply[2]["transactionId"], "meterStop": 1000 * n + 1500,
                                              "timestamp": f"2026-03-0{n + 1}T11:00:00Z", "reason": "Local"})


async def test_csv_export_of_a_filtered_list_matches_the_api(site):
    """The page's export is the API's (GET /api/v1/transactions.csv) of the same filters."""
    await _transactions(site, 3)
    async with signed_in(site) as session, api_client(site) as api:
        exported = await session.client.get("/dashboard/transactions.csv", params={"chargeBoxId": CHARGER})
        assert exported.headers["content-type"].startswith("text/csv")
        assert exported.text == (await api.get("/api/v1/transactions.csv", params={"chargeBoxId": CHARGER})).text
        listed = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER})).json()["transactions"]
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [r["transactionId"] for r in rows] == [str(t["transactionId"]) for t in listed]
        one_day = await session.client.get("/dashboard/transactions.csv",
                                           params={"from": "2026-03-02", "to": "2026-03-02", "idTag": "t1"})
        (only,) = list(csv.DictReader(io.StringIO(one_day.text)))
        assert only["idTag"] == "T1" and only["energyKWh"] == "1.5"
        assert only["startTimeUtc"].startswith("2026-03-02T10:00:00")


async def test_the_stream_pushes_a_status_change_and_needs_a_session(site):
    async with httpx.AsyncClient(base_url=api_base(site)) as anonymous:
        assert (await anonymous.get("/dashboard/events")).status_code == 401
    async with signed_in(site) as session, raw_charger(site, CHARGER) as cp:
        await cp.boot()
        async with session.client.stream("GET", "/dashboard/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("retry:")
            await cp.status(1, "Preparing")
            with trio.fail_after(10):
                async for line in lines:
                    if line.startswith("data:") and "status" in line:
                        break
            assert orjson.loads(line[5:])[f"c/{CHARGER}/1/status"] == "Preparing"


async def test_circuit_currents_and_the_outbox_are_pushed_in_place(tmp_path):
    """Figures without an event of their own reach an open page too: a circuit's measured current
    when its meter's reading changes, and the outbox's pending count when an event cannot go out."""
    from controller.simulators.meter import MeterServer, SimulatedMeter

    meter = SimulatedMeter("sdm630", device_id=1, current_a=[4, 4, 4], phase_power_w=[920, 920, 920])
    with MeterServer(meter, "tcp") as gateway:
        extra = (f'[[buses]]\nid = "gw"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {gateway.port}\ntimeout_s = 0.5\n'
                 '[[meters]]\nid = "grid"\nbus = "gw"\nmodel = "sdm630"\npoll_s = 0.1\nrole = "site"\n'
                 '[[circuits]]\nid = "main"\nmax_current_a = 40\nmeter = "grid"\n'
                 '[upstream]\nconnection_url = "http://127.0.0.1:9/nobody"\nretry_initial_s = 60\n')
        async with running_site(make_config(tmp_path, extra=extra)) as site, signed_in(site) as session:
            page = (await session.client.get("/")).text
            assert 'data-live="k/main/measured"' in page and 'data-live="outbox/pending"' in page
            async with session.client.stream("GET", "/dashboard/events") as stream:
                seen: dict = {}
                lines = stream.aiter_lines()

                async def until(key: str, wanted) -> None:
                    with trio.fail_after(15):
                        while seen.get(key) != wanted:
                            line = await anext(lines)
                            if line.startswith("data:") and line[5:].strip().startswith("{"):
                                seen.update(orjson.loads(line[5:]))

                await until("k/main/measured", "4 / 4 / 4")
                meter.set(current_a=[9, 8, 7])
                await until("k/main/measured", "9 / 8 / 7")
                async with raw_charger(site, CHARGER) as cp:
                    await cp.boot()  # its connection event cannot be delivered: it waits
                    await until("outbox/pending", 1)


async def test_a_watcher_that_falls_behind_is_told_to_start_over_and_never_blocks_the_publisher():
    changes = Changes()
    with changes.subscribe(size=3) as slow:
        for n in range(10):  # never waits, whatever the watcher does
            changes.publish("reading", n=n)
        assert await slow.receive() is None  # lost: fetch a fresh picture
        changes.publish("reading", n=10)
        after = [(await slow.receive()).data["n"] for _ in range(3)]
        assert after == [8, 9, 10]  # what came after the last loss, in order
        assert not slow.ready()
        changes.close()
        with pytest.raises(trio.EndOfChannel):
            await slow.receive()
    assert changes.watchers == 0


async def test_every_page_shows_a_whole_site_circuit_meter_reader_frames_and_a_charge_curve(tmp_path):
    from controller import logs
    from controller.simulators.card_reader import Rdm6300Emulator
    from controller.simulators.meter import MeterServer, SimulatedMeter

    meter = SimulatedMeter("sdm630", device_id=1, energy_import_wh=5_000_000, power_w=2000)
    with MeterServer(meter, "tcp") as gateway, Rdm6300Emulator() as reader:
        extra = (f'[[buses]]\nid = "gw"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {gateway.port}\ntimeout_s = 0.5\n'
                 '[[meters]]\nid = "grid"\nbus = "gw"\nmodel = "sdm630"\npoll_s = 0.1\nrole = "site"\n'
                 f'[[readers]]\nid = "bay-1"\nkind = "rdm6300"\nport = "{reader.path}"\ncharger = "{CHARGER}"\n'
                 'connector = 1\n[[circuits]]\nid = "main"\nmax_current_a = 40\nmeter = "grid"\n')
        # no charger on the circuit: the raw charger here answers no SetChargingProfile
        config = make_config(tmp_path, extra=extra)
        logs.apply("warning", [CHARGER])
        try:
            async with running_site(config) as site, raw_charger(site, CHARGER) as cp, signed_in(site) as session:
                await cp.boot()
                start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "CURVE", "meterStart": 1000,
                                                           "timestamp": "2026-03-01T10:00:00Z"})
                transaction_id = start[2]["transactionId"]
                for minute, wh, w in ((10, 2000, 7000), (20, 3200, 7200), (30, 4300, 6800)):
                    await cp.call("MeterValues", {"connectorId": 1, "transactionId": transaction_id, "meterValue": [
                        {"timestamp": f"2026-03-01T10:{minute}:00Z", "sampledValue": [
                            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                            {"value": str(w / 1000), "measurand": "Power.Active.Import", "unit": "kW"}]}]})
                pages = {}
                for path in ("/", f"/dashboard/chargers/{CHARGER}", "/dashboard/transactions",
                             f"/dashboard/transactions/{transaction_id}", "/dashboard/id-tags", "/dashboard/hardware",
                             "/dashboard/notifications", "/dashboard/public-sessions", "/dashboard/about"):
                    response = await session.client.get(path)
                    assert response.status_code == 200, (path, response.text[:300])
                    pages[path] = response.text
        finally:
            logs.apply("warning", [])
    overview = pages["/"]
    assert ">main</td>" in overview and "grid" in overview and "bay-1" in overview
    assert 'data-offset="1000"' in overview  # the running charge's energy counts from its start
    assert '<polyline class="energy"' in pages[f"/dashboard/transactions/{transaction_id}"]
    assert '<polyline class="power"' in pages[f"/dashboard/transactions/{transaction_id}"]
    assert "MeterValues" in pages[f"/dashboard/chargers/{CHARGER}"]  # the last frames, from the frame log
    about = pages["/dashboard/about"]
    assert "test-key" not in about and "read-only-key" not in about and "••••••••" in about


async def test_a_pending_charger_is_approved_from_the_dashboard(tmp_path):
    async with running_site(make_config(tmp_path)) as site, raw_charger(site, "NEW-1") as cp:
        await cp.boot()
        async with signed_in(site) as session:
            assert "Approve NEW-1" in (await session.client.get("/")).text

            async def approve() -> None:
                response = await session.post("/dashboard/chargers/NEW-1/approve")
                assert response.status_code == 200 and response.json()["message"] == "Charger NEW-1 approved"

            async with trio.open_nursery() as nursery:
                nursery.start_soon(approve)
                trigger = await cp.receive()  # asked to boot again at once
                await cp.send([3, trigger[1], {"status": "Accepted"}])
            assert site.chargers.get("NEW-1").registration == "accepted"
            assert "Approve NEW-1" not in (await session.client.get("/")).text


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_the_charger_buttons_reach_a_charger_of_either_version(tmp_path, version):
    from controller.simulators.charger_process import SimulatedCharger
    from tests.support import ocpp_url

    async with running_site(make_config(tmp_path)) as site, signed_in(site) as session, \
            SimulatedCharger.open(ocpp_url(site, CHARGER), connectors=2, version=version) as sim:
        await sim.boot()
        base = f"/dashboard/chargers/{CHARGER}"
        for action, form, answer in (("unlock", {"connectorId": "1"}, "UnlockConnector: Unlocked"),
                                     ("reset", {"type": "Soft"}, "Reset: Accepted"),
                                     ("availability", {"connectorId": "0", "type": "Inoperative"},
                                      "ChangeAvailability: Accepted"),
                                     ("availability", {"connectorId": "2", "type": "Operative"},
                                      "ChangeAvailability: Accepted"),
                                     ("trigger", {"requestedMessage": "Heartbeat", "connectorId": "1"},
                                      "TriggerMessage: Accepted"),
                                     ("clear-cache", {}, "ClearCache: Accepted")):
            response = await session.post(f"{base}/{action}", data=form)
            assert response.status_code == 200 and response.json()["message"] == answer, (action, response.text)
        configuration = await session.post(f"{base}/configuration")
        if version == "2.0.1":  # a 2.0.1 station's settings are variables, not keys
            assert configuration.status_code == 422 and "GetVariables" in configuration.json()["message"]
            return
        keys = {k["key"]: k for k in configuration.json()["result"]["configurationKey"]}
        assert keys["HeartbeatInterval"]["value"] == "300" and keys["NumberOfConnectors"]["readonly"]
        changed = await session.post(f"{base}/configuration/change", data={"key": "HeartbeatInterval", "value": "60"})
        assert changed.json()["message"] == "ChangeConfiguration: Accepted"
        refused = await session.post(f"{base}/configuration/change", data={"key": "NumberOfConnectors", "value": "9"})
        assert refused.json()["message"] == "ChangeConfiguration: Rejected"


async def test_an_unknown_charger_or_transaction_is_a_page_saying_so(site):
    async with signed_in(site) as session:
        for path in ("/dashboard/chargers/NOBODY", "/dashboard/transactions/999"):
            response = await session.client.get(path)
            assert response.status_code == 404 and "There is nothing at this address" in response.text, path
