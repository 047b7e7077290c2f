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
    assert "dashboard: http://127.0.0.1:" in out and "sign in with the API key 'demo'" in out
    assert "card 0A1B2C3D4E tapped" in out
    assert "transaction 1 completed: 7.2 kWh" in out
    assert "POST remote-start -> 202 pending" in out
    assert "2 transactions on the books:" in out
    book = [line for line in out.splitlines() if " txn_" in line]
    assert len(book) == 2 and all(" completed " in line for line in book), out
    # load management: a base-load spike, and the chargers giving way
    assert "sharing: DEMO-1/1 10 A (fair share), DEMO-1/2 10 A (fair share), DEMO-2/1 10 A (fair share)" in out
    assert "base load jumps to 22 A per phase" in out
    give_way = next(line for line in out.splitlines() if "chargers give way:" in line)
    assert "DEMO-2/1 0 A (paused: not enough capacity)" in give_way and "of 40 A" in give_way, give_way
    assert "back up" in out and "evening charges stopped" in out
