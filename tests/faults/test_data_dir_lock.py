"""Two controllers on one data directory: the second refuses to start, naming the first.

Both would otherwise serve chargers from the same books and deliver each webhook twice.
"""

from __future__ import annotations

import tomllib

from tests.faults.process import controller, refused_start, site_config


async def test_a_second_controller_on_the_same_data_directory_refuses(tmp_path) -> None:
    config = site_config(tmp_path)  # ports 0: the second one would get listeners of its own
    data_dir = tomllib.loads(config.read_text())["site"]["data_dir"]
    async with controller(config) as first:
        code, output = await refused_start(config)
        assert code == 1
        assert data_dir in output and f"pid {first.process.pid}" in output, output
        assert (await first.api("/healthz"))["status"] == "ok"  # the first one serves on
    async with controller(config):  # released when the holder exits (here: killed)
        pass
