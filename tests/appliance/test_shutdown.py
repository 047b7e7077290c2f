"""SIGTERM with chargers connected: they are told goodbye (1001) and the process exits 0 in time.
The same run checks the JSON log on stdout and the per-charger frame log."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import trio
from trio_websocket import ConnectionClosed

from .conftest import charger, run_controller, write_config


async def _closed_code(ch) -> int | None:
    try:
        while True:
            await ch.ws.get_message()
    except ConnectionClosed as exc:
        return exc.reason.code


async def test_sigterm_with_chargers_connected_exits_cleanly_within_5s(tmp_path: Path) -> None:
    config = write_config(tmp_path, logging='level = "info"\nformat = "json"\nframe_log = ["CP1"]')
    log_path = tmp_path / "stdout.log"
    with open(log_path, "wb") as out:
        async with run_controller(tmp_path, config, stdout=out) as ctl:
            codes: dict[str, int | None] = {}
            async with charger(ctl.ocpp_port, "CP1") as cp1, charger(ctl.ocpp_port, "CP2") as cp2:
                assert (await cp1.boot())[2]["status"] == "Accepted"
                assert (await cp2.boot())[2]["status"] == "Accepted"
                await cp1.call("Heartbeat", {})

                async def watch(ch) -> None:
                    codes[ch.id] = await _closed_code(ch)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(watch, cp1)
                    nursery.start_soon(watch, cp2)
                    await trio.sleep(0)
                    ctl.signal(signal.SIGTERM)
                    # the bound: a clean exit within 5 s of SIGTERM
                    assert await ctl.wait(timeout=5) == 0
            assert codes == {"CP1": 1001, "CP2": 1001}

    lines = log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line one JSON object
    assert all({"ts", "level", "logger", "msg"} <= r.keys() for r in records)
    frames = [r for r in records if r["logger"] == "evedge.frames"]
    assert {r["charger"] for r in frames} == {"CP1"}
    assert {r["dir"] for r in frames} == {"in", "out"}
    assert any('"Heartbeat"' in r["msg"] for r in frames)
    messages = [r["msg"] for r in records]
    assert any("received SIGTERM" in m for m in messages)
    assert messages[-1] == "stopped"
