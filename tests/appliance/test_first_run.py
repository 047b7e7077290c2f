"""A first run as an installer makes it, with real `evedge` processes: `init` writes a config that
runs, `check-config` and `run` warn about a known key and refuse what cannot work on this machine,
a port that cannot be bound names its config key, and the config file has one name everywhere."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import httpx
import pytest

from controller.config import DEFAULT_CONFIG
from controller.init_site import UNIT_STATE_DIRECTORY, data_dir_for
from tests.faults.process import controller as evedge_run

from .conftest import PROJECT, evedge, run_controller, write_config

KEY_LINE = re.compile(r'^api_keys = \["([^"]+)"\]$', re.M)


def _loopback(config: Path) -> None:
    """Listen on free loopback ports instead of the file's 9000 and 8080."""
    text = config.read_text()
    config.write_text(text.replace('"0.0.0.0:9000"', '"127.0.0.1:0"').replace('"0.0.0.0:8080"', '"127.0.0.1:0"'))


# -- evedge init ----------------------------------------------------------------------------------


async def test_init_writes_a_private_config_with_a_random_key_that_runs(tmp_path: Path) -> None:
    state = tmp_path / "state"  # what systemd's StateDirectory= hands the service
    config = tmp_path / "etc" / "evedge.toml"
    rc, out, err = await evedge("init", str(config), env={"STATE_DIRECTORY": str(state)})
    assert rc == 0, err
    assert str(config) in out and str(state) in out
    assert stat.S_IMODE(config.stat().st_mode) & 0o037 == 0  # no one but owner and group; group reads only
    text = config.read_text()
    key = KEY_LINE.search(text)[1]
    assert len(key) >= 32 and key != "change-me"
    assert f'data_dir = "{state}"' in text
    assert sum(line.startswith("#") for line in text.splitlines()) >= 10  # commented for the installer

    other = tmp_path / "other.toml"
    assert (await evedge("init", str(other)))[0] == 0
    assert KEY_LINE.search(other.read_text())[1] != key  # random each time
    assert 'data_dir = "var"' in other.read_text()  # no systemd: next to the file

    rc, _, err = await evedge("init", str(config))
    assert rc == 2 and "exists" in err and KEY_LINE.search(config.read_text())[1] == key  # never overwritten

    rc, out, err = await evedge("check-config", str(config))
    assert rc == 0 and "ok" in out and err == "", err  # nothing to warn about

    _loopback(config)
    async with run_controller(tmp_path, config) as ctl:
        async with httpx.AsyncClient(base_url=ctl.url, timeout=30) as client:
            assert (await client.get("/api/v1/chargers", headers={"X-API-Key": key})).status_code == 200
            assert (await client.get("/api/v1/chargers", headers={"X-API-Key": "change-me"})).status_code == 401
    assert (state / "evedge.sqlite3").exists()


def test_init_puts_the_data_where_the_unit_can_write() -> None:
    assert data_dir_for(Path(DEFAULT_CONFIG), {}) == UNIT_STATE_DIRECTORY
    assert data_dir_for(Path(DEFAULT_CONFIG), {"STATE_DIRECTORY": "/srv/a:/srv/b"}) == "/srv/a"
    assert data_dir_for(Path("site/evedge.toml"), {}) == "var"


def test_one_name_for_the_config_file_everywhere() -> None:
    unit = (PROJECT / "systemd" / "evedge.service").read_text()
    assert f"check-config {DEFAULT_CONFIG}" in unit and f"run --config {DEFAULT_CONFIG}" in unit
    assert f"StateDirectory={Path(UNIT_STATE_DIRECTORY).name}" in unit.splitlines()
    assert f"ConfigurationDirectory={Path(DEFAULT_CONFIG).parent.name}" in unit.splitlines()
    for doc in ("README.md", "docs/install.md"):
        text = (PROJECT / doc).read_text()
        assert DEFAULT_CONFIG in text, doc
        others = set(re.findall(r"/etc/evedge/[\w.-]+\.toml", text)) - {DEFAULT_CONFIG}
        assert not others, f"{doc} names the config file {others}"


# -- warnings and refusals ------------------------------------------------------------------------


async def test_check_config_and_run_warn_loudly_about_the_example_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, api_keys=("change-me",))
    rc, out, err = await evedge("check-config", str(config))
    assert rc == 0 and "ok" in out
    assert f"WARNING: {config}: api.api_keys[0]: 'change-me' is the example key" in err, err
    async with evedge_run(config) as ctl:
        warnings = [line for line in ctl.log().splitlines() if "level=warning" in line and "api.api_keys[0]" in line]
        assert warnings and "change-me" in warnings[0], ctl.log()

    config = write_config(tmp_path, api_keys=())  # no key at all locks every operator out: refused
    rc, _, err = await evedge("check-config", str(config))
    assert rc == 2 and f"{config}: api.api_keys: no operator key" in err, err


async def test_check_config_warns_about_a_port_the_service_user_cannot_bind(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('[api]\nlisten = "127.0.0.1:0"', '[api]\nlisten = "0.0.0.0:80"'))
    rc, out, err = await evedge("check-config", str(config))
    assert rc == 0 and "ok" in out
    assert f"WARNING: {config}: api.listen: port 80 is below 1024" in err, err


async def test_check_config_refuses_two_listeners_on_one_port(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('"127.0.0.1:0"', '"127.0.0.1:9000"'))
    rc, out, err = await evedge("check-config", str(config))
    assert rc == 2 and out == ""
    assert f"{config}: api.listen: port 9000 is also ocpp.listen's" in err, err


def _unwritable_directory(tmp_path: Path) -> Path | None:
    """A directory this user cannot write: a read-only one, or (root writes anywhere) a read-only
    mount if the machine has one."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        return locked
    return next((Path(p) for p in ("/proc/sys",) if Path(p).is_dir() and not os.access(p, os.W_OK)), None)


@pytest.mark.parametrize("case", ["file-in-the-way", "read-only"])
async def test_check_config_and_run_refuse_a_data_directory_they_cannot_write(tmp_path: Path, case: str) -> None:
    if case == "file-in-the-way":
        (tmp_path / "blocker").write_text("not a directory")
        data_dir, expected = tmp_path / "blocker" / "data", "is not a directory"
    else:
        locked = _unwritable_directory(tmp_path)
        if locked is None:
            pytest.skip("running as root on a machine without a read-only mount")
        data_dir, expected = locked / "evedge", "cannot create"
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('data_dir = "data"', f'data_dir = "{data_dir}"'))
    rc, out, err = await evedge("check-config", str(config))
    assert rc == 2 and out == ""
    assert f"{config}: site.data_dir: " in err and expected in err, err
    rc, out, err = await evedge("run", "--config", str(config))
    assert rc == 2 and "site.data_dir: " in out and expected in out and "Traceback" not in out + err


@pytest.mark.parametrize("key", ["ocpp.listen", "api.listen"])
async def test_a_port_in_use_names_the_key_and_address_and_exits_non_zero(tmp_path: Path, key: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        section = key.split(".")[0]
        config = write_config(tmp_path)
        config.write_text(config.read_text().replace(f'[{section}]\nlisten = "127.0.0.1:0"',
                                                     f'[{section}]\nlisten = "127.0.0.1:{port}"'))
        rc, out, err = await evedge("run", "--config", str(config))
    assert rc == 1, out + err
    assert f"{config}: {key}: cannot listen on 127.0.0.1:{port}: Address already in use" in out, out
    assert "Traceback" not in out + err
