"""A config that would lock everyone out is refused by `check-config` and by a reload (SIGHUP).

An empty file is valid TOML with every default: no API key (every operator locked out) and
`unknown_chargers = "reject"` with no [[chargers]] (every charger refused after the next restart).
A reload refuses it and keeps the running config; check-config exits 2 naming the key.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import httpx
import pytest

from controller.cli import main
from tests.appliance.conftest import Controller, charger, run_controller, write_config

KEY = {"X-API-Key": "test-key"}


def site_file(tmp_path: Path) -> Path:
    """The appliance tests' site, unknown chargers pending (they are listed for approval)."""
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[ocpp]\n", '[ocpp]\nunknown_chargers = "pending"\n', 1))
    return path


def without_api_keys(text: str) -> str:
    return re.sub(r"api_keys = \[.*\]\n", "", text)


def without_chargers(text: str) -> str:
    text = text.replace('unknown_chargers = "pending"', 'unknown_chargers = "reject"')
    return text[:text.index("[[chargers]]")]


LOCKOUTS = [
    ("empty", lambda text: "", "api.api_keys"),
    ("no-api-keys", without_api_keys, "api.api_keys"),
    ("no-chargers-and-reject", without_chargers, "chargers"),
]


async def reload(ctl: Controller) -> None:
    ctl.signal(signal.SIGHUP)
    await ctl.notify.wait_for("RELOADING=1")
    await ctl.notify.wait_for("READY=1")


@pytest.mark.parametrize(("edit", "key"), [m[1:] for m in LOCKOUTS], ids=[m[0] for m in LOCKOUTS])
def test_check_config_refuses_a_lockout(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit, key: str) -> None:
    path = site_file(tmp_path)
    assert main(["check-config", str(path)]) == 0
    capsys.readouterr()
    path.write_text(edit(path.read_text()))
    assert main(["check-config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert f"{path}: {key}: " in err and not out, err


async def test_sighup_with_a_lockout_keeps_the_running_config(tmp_path: Path) -> None:
    path = site_file(tmp_path)
    good = path.read_text()
    async with run_controller(tmp_path, path) as ctl, httpx.AsyncClient(base_url=ctl.url) as api:
        for _, edit, _ in LOCKOUTS:
            path.write_text(edit(good))
            await reload(ctl)
            assert (await api.get("/api/v1/chargers", headers=KEY)).status_code == 200  # the key still works
            async with charger(ctl.ocpp_port, "NEW-1") as cp:  # unknown chargers still admitted
                assert (await cp.boot())[2]["status"] == "Pending"
        path.write_text(good.replace('unknown_chargers = "pending"', 'unknown_chargers = "accept"'))
        await reload(ctl)  # a good file is applied as before
        async with charger(ctl.ocpp_port, "NEW-2") as cp:
            assert (await cp.boot())[2]["status"] == "Accepted"
        ctl.signal(signal.SIGTERM)
        assert await ctl.wait(timeout=10) == 0
