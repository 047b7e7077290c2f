"""SIGHUP: the live parts of the config and the id-tag list change without a restart."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx

from controller.config import load_config
from controller.reload import merge

from .conftest import run_controller, write_config


def test_merge_applies_live_keys_and_names_the_rest(tmp_path: Path) -> None:
    old = load_config(write_config(tmp_path))
    changed = write_config(tmp_path, api_keys=("new",), logging='level = "debug"\nframe_log = ["CP1"]',
                           chargers=("CP1",))
    changed.write_text(changed.read_text()
                       .replace("heartbeat_interval_s = 300", "heartbeat_interval_s = 60")
                       .replace('[ocpp]\nlisten = "127.0.0.1:0"', '[ocpp]\nlisten = "127.0.0.1:9999"'))
    merged, restart = merge(old, load_config(changed))
    assert merged.api.api_keys == ["new"]
    assert merged.logging.level == "debug" and merged.logging.frame_log == ["CP1"]
    assert merged.ocpp.heartbeat_interval_s == 60
    assert merged.ocpp.listen == "127.0.0.1:0"  # kept: needs a restart
    assert [c.id for c in merged.chargers] == ["CP1", "CP2"]
    assert sorted(restart) == ["chargers", "ocpp.listen"]


async def test_sighup_reloads_api_keys_and_the_id_tag_list(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    async with run_controller(tmp_path, config) as ctl, httpx.AsyncClient(base_url=ctl.url) as client:
        assert (await client.get("/api/v1/id-tags", headers={"X-API-Key": "test-key"})).status_code == 200
        # an id tag written to the database by another program (a restore, an sqlite3 shell)
        with sqlite3.connect(tmp_path / "data" / "evedge.sqlite3") as db:
            db.execute("INSERT INTO id_tags (id_tag, status, updated_at) VALUES ('CARD-9', 'Accepted', 'x')")
        write_config(tmp_path, api_keys=("rotated-key",))
        ctl.signal(signal.SIGHUP)
        await ctl.notify.wait_for("RELOADING=1")
        await ctl.notify.wait_for("READY=1")
        assert (await client.get("/api/v1/id-tags", headers={"X-API-Key": "test-key"})).status_code == 401
        tag = await client.get("/api/v1/id-tags/CARD-9", headers={"X-API-Key": "rotated-key"})
        assert tag.status_code == 200 and tag.json()["status"] == "Accepted"
        # an invalid file is refused whole: still running with the rotated key
        config.write_text(config.read_text().replace("[logging]", "[logging]\nlevel = \"loud\""))
        ctl.signal(signal.SIGHUP)
        await ctl.notify.wait_for("READY=1")
        assert (await client.get("/api/v1/id-tags", headers={"X-API-Key": "rotated-key"})).status_code == 200
        ctl.signal(signal.SIGTERM)
        assert await ctl.wait(timeout=5) == 0
