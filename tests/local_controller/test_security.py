"""The site towards its central system: security profile 1 (Basic auth with the upstream id) and
profile 2 (wss://, the central system's certificate checked against `ca_file`)."""

from __future__ import annotations

import base64

from tests.faults.test_ocpp_security import certificate  # noqa: F401 - the fixture
from tests.local_controller.support import central_system, local_config, upstream_link
from tests.support import CHARGER, eventually, raw_charger, running_site


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_profile_2_with_basic_auth_per_charger(tmp_path, certificate):  # noqa: F811
    async with central_system(tls=certificate) as cs:
        config = local_config(tmp_path, cs.port, scheme="wss",
                              ocpp=f'password = "site-wide"\nca_file = "{certificate / "cert.pem"}"',
                              chargers='upstream_id = "SITE7-CP-1"\nupstream_password = "its-own"\n')
        async with running_site(config) as site, raw_charger(site, CHARGER) as cp:
            await cp.boot()
            hello = await cs.next_event(event="connected", charger="SITE7-CP-1")
            assert hello["authorization"] == basic("SITE7-CP-1", "its-own")
            assert (await cs.next_call("BootNotification"))["chargePointVendor"] == "raw"


async def test_a_central_system_whose_certificate_does_not_check_out_is_not_spoken_to(tmp_path, certificate):  # noqa: F811
    async with central_system(tls=certificate) as cs:
        config = local_config(tmp_path, cs.port, scheme="wss", ocpp=f'ca_file = "{certificate / "other.pem"}"')
        async with running_site(config) as site, raw_charger(site, CHARGER) as cp:
            assert (await cp.boot())["status"] == "Accepted"  # served locally all the same
            link = await eventually(lambda: _failed(site), what="the link's error")
            assert "CERTIFICATE_VERIFY_FAILED" in link["lastError"] and not link["connected"]
            assert not cs.calls()


async def _failed(site):
    link = await upstream_link(site)
    return link if link["lastError"] else None
