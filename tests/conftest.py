"""Fixtures shared by every test directory (helpers live in tests/support.py).

- `site_config`: a Config for a test site in tmp_path (chargers CHARGER-001 with 2 connectors,
  CHARGER-002 with 1; unknown chargers pending; loopback listeners on port 0). Override options
  with `@pytest.mark.site(unknown_chargers="accept", call_timeout_s=1)` (see support.config_text).
- `site`: that config running in-process as a `Site` (its ports in `site.ocpp_port`, `site.api_port`).
- `api`: an httpx.AsyncClient on the site's API with the API key; every response is validated
  against the OpenAPI document.
- `booted_charger`: CHARGER-001 as the simulated 1.6 charger, connected to `site` and booted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from controller.simulators.charger_process import SimulatedCharger  # noqa: E402
from tests.support import CHARGER, api_client, make_config, ocpp_url, running_site  # noqa: E402
from tests.upstream.receiver import Receiver  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "site(**options): options for the `site_config` fixture (support.config_text)")


@pytest.fixture
def site_config(request: pytest.FixtureRequest, tmp_path: Path):
    marker = request.node.get_closest_marker("site")
    return make_config(tmp_path, **(marker.kwargs if marker else {}))


@pytest.fixture
async def site(site_config):
    async with running_site(site_config) as running:
        yield running


@pytest.fixture
async def api(site):
    async with api_client(site) as client:
        yield client


@pytest.fixture
async def booted_charger(site, nursery):
    """CHARGER-001 as the simulated 1.6 charger (2 connectors), connected to `site` and booted."""
    charger = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    assert (await charger.boot())["status"] == "Accepted"
    yield charger
    await charger.aclose()


@pytest.fixture
async def receiver(nursery: trio.Nursery) -> Receiver:
    """A real HTTP receiver for upstream notifications (tests/upstream/receiver.py)."""
    return await nursery.start(Receiver().run)
