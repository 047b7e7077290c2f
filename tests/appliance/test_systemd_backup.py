"""The nightly backup timer and its service are valid units that run `evedge backup` as the
service user with the controller's config."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SERVICE = PROJECT / "systemd" / "evedge-backup.service"
TIMER = PROJECT / "systemd" / "evedge-backup.timer"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_backup_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    evedge = Path(os.environ.get("VIRTUAL_ENV", PROJECT / ".venv")) / "bin" / "evedge"
    if not evedge.exists():
        evedge = PROJECT / ".venv" / "bin" / "evedge"
    (tmp_path / SERVICE.name).write_text(SERVICE.read_text().replace("/opt/evedge/venv/bin/evedge", str(evedge)))
    shutil.copy(TIMER, tmp_path / TIMER.name)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / TIMER.name),
                             str(tmp_path / SERVICE.name)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [line for line in (result.stdout + result.stderr).splitlines() if "evedge-backup" in line]


def test_backup_service_runs_the_backup_command_as_the_service_user() -> None:
    lines = SERVICE.read_text().splitlines()
    assert "User=evedge" in lines and "Type=oneshot" in lines
    command = next(line for line in lines if line.startswith("ExecStart=")).split()
    assert command[1:3] == ["backup", "/var/lib/evedge-backup"] and "/etc/evedge/evedge.toml" in command
    assert "Persistent=true" in TIMER.read_text().splitlines()
