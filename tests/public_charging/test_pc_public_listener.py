"""[public_charging] listen: a listener for drivers' phones that serves the driver page and the
driver's API and nothing else, over HTTPS with its own certificate; rate limits that count the
driver behind a trusted reverse proxy, never an address a client wrote itself."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from controller.config import ConfigError, load_config
from controller.public_charging.api import client_address, networks
from tests.public_charging.helpers import CODE, config_text, public_site
from tests.support import API_KEY

SESSIONS = "/api/v1/public-charging/sessions"


def _config(tmp_path: Path, extra: str):
    text = config_text(tmp_path / "data").replace("[public_charging]\n", "[public_charging]\n" + extra, 1)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_client_address_believes_forwarded_for_only_from_trusted_proxies():
    proxies = networks(("127.0.0.1", "10.0.0.0/8"))
    assert client_address("203.0.113.9", "198.51.100.1", proxies) == "203.0.113.9"  # not a proxy: ignored
    assert client_address("127.0.0.1", None, proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", "198.51.100.1", proxies) == "198.51.100.1"
    # a client's own forged entry sits left of what the proxies appended: never reached
    assert client_address("127.0.0.1", "1.2.3.4, 198.51.100.1, 10.0.0.5", proxies) == "198.51.100.1"
    assert client_address("127.0.0.1", "1.2.3.4, not-an-ip", proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", "2001:db8::1", proxies) == "2001:db8::1"
    assert ipaddress.ip_address(client_address("10.1.2.3", "10.0.0.7", proxies)) in proxies[1]  # proxies only


async def test_public_listener_serves_only_the_driver_side(tmp_path):
    config = _config(tmp_path, 'listen = "127.0.0.1:0"\ntrusted_proxies = ["127.0.0.1"]\n'
                               'operator_name = "Stadtwerke Beispiel"\noperator_contact = "+49 30 1234567"\n')
    async with public_site(config) as h:
        site = h.site
        assert site.public_port and site.public_port not in (site.api_port, site.ocpp_port)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{site.public_port}",
                                     headers={"X-API-Key": API_KEY}) as public:
            page = await public.get(f"/charge/{CODE.lower()}")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            info = (await public.get(f"/api/v1/public-charging/chargers/{CODE}")).json()["data"]
            assert info["operator"] == {"name": "Stadtwerke Beispiel", "contact": "+49 30 1234567"}
            # the operator's API is not there at all, whatever the key
            for path in ("/api/v1/chargers", "/api/v1/transactions", "/api/v1/public-sessions", "/healthz",
                         "/metrics", "/api/v1/openapi.json"):
                response = await public.get(path)
                assert response.status_code == 404 and response.json()["error"] == "NotFound", path

            # behind the trusted proxy each driver has their own limit (3 new sessions a minute)
            async def create(driver: str) -> int:
                return (await public.post(SESSIONS, json={}, headers={"X-Forwarded-For": driver})).status_code

            assert [await create("198.51.100.1") for _ in range(4)] == [422, 422, 422, 429]
            assert await create("198.51.100.2") == 422
            # one limit for both listeners: the LAN API's driver endpoint counts the same driver
            lan = await h.public.post(SESSIONS, json={}, headers={"X-Forwarded-For": "198.51.100.1"})
            assert lan.status_code == 429


async def test_untrusted_forwarded_for_is_ignored(tmp_path):
    config = _config(tmp_path, 'listen = "127.0.0.1:0"\n')  # no trusted proxies
    async with public_site(config) as h, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.site.public_port}") as public:
        codes = [(await public.post(SESSIONS, json={}, headers={"X-Forwarded-For": f"198.51.100.{n}"})).status_code
                 for n in range(4)]
        assert codes == [422, 422, 422, 429]  # one client, however it names itself


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem"), "-days", "2",
                    "-subj", "/CN=evedge-test", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return directory


async def test_public_listener_speaks_https_with_its_certificate(tmp_path, certificate):
    shutil.copytree(certificate, tmp_path / "tls")
    config = _config(tmp_path, 'listen = "127.0.0.1:0"\ntls_cert = "tls/cert.pem"\ntls_key = "tls/key.pem"\n')
    async with public_site(config) as h:
        trust = ssl.create_default_context(cafile=str(certificate / "cert.pem"))
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{h.site.public_port}", verify=trust) as public:
            assert (await public.get(f"/charge/{CODE.lower()}")).status_code == 200
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{h.site.public_port}") as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"/charge/{CODE.lower()}")


def test_public_listener_config_mistakes_name_the_key(tmp_path):
    for extra, key in (('listen = "127.0.0.1:8080"\n', "public_charging.listen"),  # [api]'s port
                       ('tls_cert = "c.pem"\n', "public_charging.tls_key"),
                       ('listen = "127.0.0.1:0"\ntrusted_proxies = ["proxy.lan"]\n', "public_charging.trusted_proxies[0]")):
        text = config_text(tmp_path / "data").replace('listen = "127.0.0.1:0"\napi_keys', 'listen = "127.0.0.1:8080"\napi_keys')
        path = tmp_path / "site.toml"
        path.write_text(text.replace("[public_charging]\n", "[public_charging]\n" + extra, 1), encoding="utf-8")
        with pytest.raises(ConfigError) as error:
            load_config(path)
        assert f"{key}:" in str(error.value), str(error.value)


async def test_check_config_names_an_unusable_public_certificate(tmp_path, certificate):
    from tests.appliance.conftest import evedge

    shutil.copytree(certificate, tmp_path / "tls")
    (tmp_path / "tls" / "broken.pem").write_text("not a certificate\n")
    config = _config(tmp_path, 'listen = "127.0.0.1:0"\ntls_cert = "tls/broken.pem"\ntls_key = "tls/key.pem"\n')
    rc, _, err = await evedge("check-config", str(config.source))
    assert rc == 2 and "public_charging.tls_cert:" in err and "broken.pem" in err, err
