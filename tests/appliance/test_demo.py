"""`evedge demo` plays its scripted day end to end and leaves completed transactions."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_the_day_and_books_both_charges():
    result = subprocess.run(
        [sys.executable, "-m", "controller", "demo", "--pace", "0"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "card 0A1B2C3D4E tapped" in out
    assert "transaction 1 completed: 7.2 kWh" in out
    assert "POST remote-start -> 202 pending" in out
    assert "2 transactions on the books:" in out
    book = [line for line in out.splitlines() if " txn_" in line]
    assert len(book) == 2 and all(" completed " in line for line in book), out
