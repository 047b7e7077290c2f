"""sd_notify over real datagram sockets, the watchdog's timing (MockClock), the unit file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
import trio
from trio.testing import MockClock

from controller import systemd

from tests.support import drain_datagrams

from .conftest import PROJECT, run_controller

UNIT = PROJECT / "systemd" / "evedge.service"


def test_notify_reaches_a_path_socket(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "n.sock"))
        assert systemd.notify("READY=1\nSTATUS=x", {"NOTIFY_SOCKET": str(tmp_path / "n.sock")})
        assert sock.recv(4096) == b"READY=1\nSTATUS=x"


def test_notify_reaches_an_abstract_socket() -> None:
    name = f"evedge-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert systemd.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_watchdog_pings_need_no_new_descriptor(tmp_path: Path) -> None:
    """A process out of descriptors (a flood of LAN connections) still feeds the watchdog: every
    ping goes out on the one socket made by the first notification."""
    import resource

    env = {"NOTIFY_SOCKET": str(tmp_path / "n.sock")}
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(env["NOTIFY_SOCKET"])
        assert systemd.notify("READY=1", env)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowest_free = os.dup(0)
        os.close(lowest_free)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no descriptor left to open
        try:
            with pytest.raises(OSError):
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).close()
            assert all(systemd.notify("WATCHDOG=1", env) for _ in range(5))
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        assert _drain_blocking(sock, 6) == ["READY=1"] + ["WATCHDOG=1"] * 5


def _drain_blocking(sock: socket.socket, count: int) -> list[str]:
    return [sock.recv(4096).decode() for _ in range(count)]


def test_notify_is_a_no_op_outside_systemd(tmp_path: Path) -> None:
    assert systemd.notify("READY=1", {}) is False
    # a socket nobody listens on: logged, never raised
    assert systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "10000000"}
    assert systemd.watchdog_interval(env) == 5.0
    assert systemd.watchdog_interval({**env, "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert systemd.watchdog_interval({**env, "WATCHDOG_PID": "1"}) is None  # someone else's
    assert systemd.watchdog_interval({"WATCHDOG_USEC": "10000000"}) is None
    assert systemd.watchdog_interval({"NOTIFY_SOCKET": "@x"}) is None


async def test_watchdog_pings_every_half_period_from_the_loop(tmp_path: Path, autojump_clock: MockClock) -> None:
    path = str(tmp_path / "wd.sock")
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000"}  # 20 s: a ping every 10 s
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(systemd.watchdog, None, env)
            await trio.sleep(95)  # virtual time: pings at 0, 10, ..., 90
            nursery.cancel_scope.cancel()
        assert drain_datagrams(sock) == ["WATCHDOG=1"] * 10


async def test_watchdog_without_systemd_returns_at_once() -> None:
    await systemd.watchdog(None, {})


async def test_controller_reports_ready_watchdog_reload_and_stopping(tmp_path: Path, config_file: Path) -> None:
    env = {"WATCHDOG_USEC": "400000"}  # pings every 0.2 s
    async with run_controller(tmp_path, config_file, env) as ctl:
        assert ctl.messages[-1].startswith("READY=1\n")
        # both listeners accept by the time READY=1 arrives
        async with httpx.AsyncClient(base_url=ctl.url) as client:
            assert (await client.get("/healthz")).status_code == 200
        await ctl.notify.wait_for("WATCHDOG=1")
        await ctl.notify.wait_for("WATCHDOG=1")
        ctl.signal(signal.SIGHUP)
        reloading, _ = await ctl.notify.wait_for("RELOADING=1")
        assert "MONOTONIC_USEC=" in reloading
        await ctl.notify.wait_for("READY=1")
        ctl.signal(signal.SIGTERM)
        await ctl.notify.wait_for("STOPPING=1")
        assert await ctl.wait(timeout=5) == 0


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify wants ExecStart's binary to exist: point a copy at this venv's evedge
    evedge = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin" / "evedge"
    if not evedge.exists():
        evedge = PROJECT / ".venv" / "bin" / "evedge"
    unit = tmp_path / "evedge.service"
    unit.write_text(UNIT.read_text().replace("/opt/evedge/venv/bin/evedge", str(evedge)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "evedge.service" in line or "unit" in line.lower()]
    assert result.returncode == 0, result.stdout + result.stderr
    assert not problems, "\n".join(problems)


def test_unit_file_has_the_appliance_settings() -> None:
    text = UNIT.read_text()
    for line in ["Type=notify", "Restart=on-failure", "StateDirectory=evedge", "ConfigurationDirectory=evedge",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
                 "SupplementaryGroups=dialout", "ExecReload=/bin/kill -HUP $MAINPID"]:
        assert line in text.splitlines(), line
    assert any(line.startswith("WatchdogSec=") for line in text.splitlines())
