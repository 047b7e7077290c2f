"""The load-management benchmark's simulated hour runs (a few simulated minutes here), so `make
bench` cannot rot unnoticed; its figures belong in docs/performance.md, not in a test."""

from __future__ import annotations

import logging

from bench import loadmgmt


def test_noisy_hour_simulation_runs(tmp_path, caplog):
    caplog.set_level(logging.ERROR)
    result = loadmgmt.noisy_hour(tmp_path, hours=0.05)
    assert result["chargers"] == 6 and result["hours"] == 0.05
    assert 0 <= result["over_fuse_s_per_hour"] <= result["over_fuse_minus_margin_s_per_hour"]
    assert result["peak_a"] > 0
