"""`[upstream] authorize_url`: the upstream decides on cards when it answers in time; otherwise
the local list and its earlier answers (until their expiry) decide. A real HTTP receiver plays
the upstream; a raw OCPP 1.6 charger presents the cards."""

from __future__ import annotations

import orjson

from controller.authorization import IdTag
from controller.config import load_config
from controller.simulators.card_reader import Rdm6300Emulator

CARD = bytes.fromhex("62E3086CED")  # an EM4100 card; the reader reads it as this hex id tag
from tests.support import CHARGER, api_client, config_text, eventually, make_config, raw_charger, running_site, unique
from tests.upstream.receiver import HANG, Reply

START = {"connectorId": 2, "meterStart": 0, "timestamp": "2026-01-01T10:00:00.000Z"}


def answer(accepted: bool, expires_at: str | None = None, delay: float = 0.0) -> Reply:
    body = {"accepted": accepted, **({"expires_at": expires_at} if expires_at else {})}
    return Reply(200, body=orjson.dumps(body), delay=delay)


def site_with_webhook(tmp_path, receiver):
    return make_config(tmp_path, extra=f"""
[upstream]
authorize_url = "{receiver.url('/authorize')}"
authorize_timeout_s = 0.5
""")


async def authorize(cp, tag: str) -> str:
    reply = await cp.call("Authorize", {"idTag": tag})
    return reply[2]["idTagInfo"]["status"]


async def test_the_upstream_decides_when_it_answers_in_time_and_its_refusal_blocks_at_once(tmp_path, receiver):
    stranger, listed = unique(), unique()
    async with running_site(site_with_webhook(tmp_path, receiver)) as site, raw_charger(site, CHARGER) as cp:
        async with api_client(site) as api:
            assert (await api.post("/api/v1/id-tags", json={"idTag": listed, "status": "Accepted"})).status_code == 201
        await cp.boot()
        receiver.plan(answer(True, "2099-01-01T00:00:00Z"))
        assert await authorize(cp, stranger) == "Accepted"  # not on the list: the upstream said yes
        asked = receiver.requests[-1]
        assert asked.path == "/authorize"
        assert asked.json == {"type": "authorize", "chargebox": CHARGER, "connector": 0, "id": stranger}

        receiver.plan(answer(False))
        start = await cp.call("StartTransaction", {**START, "idTag": unique()})  # a start with an unknown tag
        assert start[2]["idTagInfo"]["status"] == "Blocked"
        assert receiver.requests[-1].json["connector"] == 2

        receiver.plan(answer(False))
        assert await authorize(cp, listed) == "Blocked"  # on the list, but the upstream says no
        receiver.default = HANG  # the upstream is gone: its refusal still holds
        assert await authorize(cp, listed) == "Blocked"
        assert await authorize(cp, stranger) == "Accepted"  # its acceptance too, until 2099


async def test_a_late_or_missing_answer_leaves_the_decision_to_the_site(tmp_path, receiver):
    stranger, listed, expired = unique(), unique(), unique()
    async with running_site(site_with_webhook(tmp_path, receiver)) as site, raw_charger(site, CHARGER) as cp:
        async with api_client(site) as api:
            assert (await api.post("/api/v1/id-tags", json={"idTag": listed, "status": "Accepted"})).status_code == 201
        await cp.boot()
        receiver.plan(answer(True, delay=3))  # late: too late to count
        assert await authorize(cp, stranger) == "Invalid"  # unknown here, and no earlier answer
        receiver.default = HANG  # never answers
        assert await authorize(cp, listed) == "Accepted"  # the local list decides
        receiver.plan(answer(True, "2020-01-01T00:00:00Z"))  # an answer already expired
        assert await authorize(cp, expired) == "Invalid"
        assert receiver.requests[-1].json["id"] == expired  # asked, and its answer taken for what it says


async def test_a_tap_on_a_card_reader_asks_the_upstream(tmp_path, receiver):
    with Rdm6300Emulator() as rdm:
        path = tmp_path / "site.toml"
        path.write_text(config_text(tmp_path / "data", extra=f"""
[[readers]]
id = "bay-1"
kind = "rdm6300"
port = "{rdm.path}"
charger = "{CHARGER}"
connector = 1

[upstream]
authorize_url = "{receiver.url('/authorize')}"
authorize_timeout_s = 0.5
"""), encoding="utf-8")
        async with running_site(load_config(path)) as site:
            await site.authorization.put(IdTag(CARD.hex().upper(), "Accepted"))  # on the local list
            await eventually(lambda: site.hardware.readers["bay-1"].state.connected, what="reader open")
            receiver.plan(answer(False))
            rdm.present(CARD, repeats=1)
            result = await eventually(lambda: site.tap_to_charge.results.get("bay-1"), what="the tap's outcome")
            assert (result["result"], result["idTagStatus"]) == ("Rejected", "Blocked")
            assert receiver.requests[-1].json == {"type": "authorize", "chargebox": CHARGER, "connector": 1,
                                                  "id": CARD.hex().upper()}
            async with api_client(site) as api:
                reader = (await api.get("/api/v1/readers/bay-1")).json()
            assert reader["lastTapResult"]["result"] == "Rejected"
