"""drivers/ is a leaf: importing it loads nothing of the controller, the OCPP stack or the
test-only schema validator, so it can be used (and tested) on its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
CHECK = "import sys, drivers; assert not any(m.split('.')[0] in ('controller','ocpp','jsonschema') for m in sys.modules)"


def test_importing_drivers_loads_no_controller_module() -> None:
    # A fresh interpreter: this test process has long imported the controller.
    result = subprocess.run([sys.executable, "-c", CHECK], cwd=PROJECT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
