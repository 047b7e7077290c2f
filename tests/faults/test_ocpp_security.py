"""OCPP security profiles 1 (HTTP Basic) and 2 (TLS + Basic) and the listener's limits.

Real peers throughout: the subprocess simulator (the `ocpp` library over `websockets`) dials like
a charger configured for the profile; raw trio-websocket clients and bare TCP streams send what a
well-behaved charger never would. The certificate is a throwaway one made by the `openssl` CLI.
"""

from __future__ import annotations

import base64
import io
import logging
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from controller import cli
from controller.config import ConfigError, load_config
from controller.passwords import hash_password, password_matches
from controller.simulators.charger_process import SimulatedCharger, SimulatorError
from controller.site import Site
from tests.support import RawCharger, eventually, running_site

PW_CHARGER, PASSWORD = "CP-PW", "s3cret-Authorization-Key"
HASH_CHARGER, HASH_PASSWORD = "CP-HASH", "another-key-0123456789"
HEX_CHARGER, HEX_KEY = "CP-HEX", "00ff10203a3b3c3d3e3f404142434445"  # hexBinary AuthorizationKey
OPEN_CHARGER = "CP-OPEN"  # no password configured
SECRETS = (PASSWORD, HASH_PASSWORD, HEX_KEY)


def basic(user: str, password: str | bytes) -> tuple[bytes, bytes]:
    raw = password if isinstance(password, bytes) else password.encode()
    return b"Authorization", b"Basic " + base64.b64encode(user.encode() + b":" + raw)


# -- a site with security settings ---------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with cert.pem/key.pem (self-signed, SAN 127.0.0.1) and other.pem (another CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    directory = tmp_path_factory.mktemp("tls")
    for cert, key in (("cert.pem", "key.pem"), ("other.pem", "other-key.pem")):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(directory / key), "-out", str(directory / cert), "-days", "2", "-subj", "/CN=evedge-test",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-addext", "keyUsage=critical,digitalSignature,keyCertSign", "-addext", "extendedKeyUsage=serverAuth"],
            check=True, capture_output=True)
    return directory


def write_config(tmp_path: Path, *, ocpp: str = "", unknown: str = "reject", tls_dir: Path | None = None) -> Path:
    """site.toml with four chargers: plain password, hashed password, hex key, none."""
    tls = ""
    if tls_dir is not None:  # relative paths: resolved against the config file's directory
        shutil.copytree(tls_dir, tmp_path / "tls", dirs_exist_ok=True)
        tls = 'tls_cert = "tls/cert.pem"\ntls_key = "tls/key.pem"\n'
    path = tmp_path / "site.toml"
    path.write_text(f"""
[site]
data_dir = "{(tmp_path / 'data').as_posix()}"
[ocpp]
listen = "127.0.0.1:0"
unknown_chargers = "{unknown}"
local_list = "off"
{tls}{ocpp}
[api]
listen = "127.0.0.1:0"
[[chargers]]
id = "{PW_CHARGER}"
password = "{PASSWORD}"
[[chargers]]
id = "{HASH_CHARGER}"
password_hash = "{hash_password(HASH_PASSWORD)}"
[[chargers]]
id = "{HEX_CHARGER}"
password = "{HEX_KEY}"
[[chargers]]
id = "{OPEN_CHARGER}"
""", encoding="utf-8")
    return path


@asynccontextmanager
async def secure_site(tmp_path: Path, **options) -> AsyncIterator[Site]:
    async with running_site(load_config(write_config(tmp_path, **options))) as site:
        yield site


def url(site: Site, charger_id: str, scheme: str = "ws") -> str:
    return f"{scheme}://127.0.0.1:{site.ocpp_port}/ocpp/{charger_id}"


def client_tls(certificate: Path, ca: str = "cert.pem") -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificate / ca))


async def handshake_status(target: str, headers: list[tuple[bytes, bytes]], tls: ssl.SSLContext | None = None
                           ) -> tuple[int, dict[bytes, bytes]]:
    """Status and headers of a handshake that the server must refuse."""
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(target, tls, subprotocols=["ocpp1.6"], extra_headers=headers):
            pass
    return info.value.status_code, {k.lower(): v for k, v in info.value.headers}


@asynccontextmanager
async def raw(target: str, headers: Sequence[tuple[bytes, bytes]] = (), tls: ssl.SSLContext | None = None
              ) -> AsyncIterator[RawCharger]:
    async with open_websocket_url(target, tls, subprotocols=["ocpp1.6"], extra_headers=list(headers)) as ws:
        yield RawCharger(ws)


# -- profile 1: HTTP Basic -----------------------------------------------------------------------


async def test_profile_1_simulated_charger_needs_its_password(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    async with secure_site(tmp_path) as site, trio.open_nursery() as nursery:
        sim = await SimulatedCharger.start(nursery, url(site, PW_CHARGER), basic_auth=f"{PW_CHARGER}:{PASSWORD}")
        assert (await sim.boot())["status"] == "Accepted"
        # the same process dialling again with wrong credentials, as a misconfigured charger would
        for credentials in (f"{PW_CHARGER}:{PASSWORD}x", f"{HASH_CHARGER}:{PASSWORD}", ""):
            with pytest.raises(SimulatorError) as info:
                await sim.cmd("reconnect", basic_auth=credentials)
            assert info.value.status == 401, credentials
        await sim.cmd("reconnect", basic_auth=f"{PW_CHARGER}:{PASSWORD}")
        assert (await sim.heartbeat())["currentTime"]
        # a hashed password works the same way
        await sim.cmd("reconnect", url=url(site, HASH_CHARGER), basic_auth=f"{HASH_CHARGER}:{HASH_PASSWORD}")
        assert (await sim.boot())["status"] == "Accepted"
        await sim.aclose()
    assert "refused charger='CP-PW'" in caplog.text and "wrong password" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text
        assert base64.b64encode(f"{PW_CHARGER}:{secret}".encode()).decode() not in caplog.text


@pytest.mark.parametrize("headers", [
    pytest.param([], id="no header"),
    pytest.param([basic(PW_CHARGER, "wrong-password-123456")], id="wrong password"),
    pytest.param([basic(PW_CHARGER, PASSWORD[:-1])], id="prefix of the password"),
    pytest.param([basic(HASH_CHARGER, PASSWORD)], id="username is another charger"),
    pytest.param([basic(PW_CHARGER.lower(), PASSWORD)], id="username differs in case"),
    pytest.param([(b"Authorization", b"Bearer " + base64.b64encode(f"{PW_CHARGER}:{PASSWORD}".encode()))],
                 id="not Basic"),
    pytest.param([(b"Authorization", b"Basic not*base64")], id="not base64"),
    pytest.param([(b"Authorization", b"Basic " + base64.b64encode(PASSWORD.encode()))], id="no colon"),
])
async def test_profile_1_refusals_are_401_with_a_challenge(tmp_path, headers, caplog):
    caplog.set_level(logging.DEBUG)
    async with secure_site(tmp_path) as site:
        status, answer = await handshake_status(url(site, PW_CHARGER), headers)
        assert status == 401 and answer[b"www-authenticate"] == b'Basic realm="evedge"'
        assert site.chargers.get(PW_CHARGER).link is None
        # the real credentials still work on the same listener
        async with raw(url(site, PW_CHARGER), [basic(PW_CHARGER, PASSWORD)]) as cp:
            assert (await cp.boot())["status"] == "Accepted"
    for secret in SECRETS:
        assert secret not in caplog.text


async def test_hex_key_may_come_as_text_or_as_raw_bytes(tmp_path):
    async with secure_site(tmp_path) as site:
        for password in (HEX_KEY, bytes.fromhex(HEX_KEY)):
            async with raw(url(site, HEX_CHARGER), [basic(HEX_CHARGER, password)]) as cp:
                assert (await cp.boot())["status"] == "Accepted"
        assert (await handshake_status(url(site, HEX_CHARGER), [basic(HEX_CHARGER, bytes.fromhex(HEX_KEY)[:-1])]))[0] == 401
    # the same for a stored hash of a hex key
    stored = hash_password(HEX_KEY)
    assert password_matches(bytes.fromhex(HEX_KEY), password_hash=stored)
    assert password_matches(HEX_KEY.encode(), password_hash=stored)
    assert not password_matches(bytes.fromhex(HEX_KEY)[1:], password_hash=stored)


async def test_require_password_refuses_chargers_without_one(tmp_path):
    async with secure_site(tmp_path, ocpp="require_password = true", unknown="accept") as site:
        for charger in (OPEN_CHARGER, "STRANGER"):
            assert (await handshake_status(url(site, charger), [basic(charger, PASSWORD)]))[0] == 401
            assert site.chargers.get(charger) is None or site.chargers.get(charger).link is None
        async with raw(url(site, PW_CHARGER), [basic(PW_CHARGER, PASSWORD)]) as cp:
            assert (await cp.boot())["status"] == "Accepted"


async def test_without_require_password_a_charger_with_none_needs_no_auth(tmp_path):
    async with secure_site(tmp_path) as site:
        async with raw(url(site, OPEN_CHARGER)) as cp:
            assert (await cp.boot())["status"] == "Accepted"
        assert (await handshake_status(url(site, PW_CHARGER), []))[0] == 401


async def test_hash_password_command_prints_a_salted_hash(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["hash-password"]) == 0
    stored = capsys.readouterr().out.strip()
    assert stored.startswith("sha256$") and PASSWORD not in stored
    assert password_matches(PASSWORD.encode(), password_hash=stored)
    assert not password_matches(PASSWORD.encode() + b"x", password_hash=stored)
    assert hash_password(PASSWORD) != hash_password(PASSWORD)  # salted
    monkeypatch.setattr(sys, "stdin", io.StringIO("too-short\n"))
    assert cli.main(["hash-password"]) == 2


def test_a_malformed_password_hash_names_the_key(tmp_path):
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('password_hash = "sha256$', 'password_hash = "md5$'))
    with pytest.raises(ConfigError, match=r"chargers\[1\]\.password_hash: .*evedge hash-password"):
        load_config(path)


# -- profile 2: TLS + Basic ----------------------------------------------------------------------


async def test_profile_2_simulated_charger_over_wss_with_basic_auth(tmp_path, certificate):
    async with secure_site(tmp_path, tls_dir=certificate) as site, trio.open_nursery() as nursery:
        first = await SimulatedCharger.start(nursery, url(site, PW_CHARGER, "wss"), basic_auth=f"{PW_CHARGER}:{PASSWORD}",
                                             ca_file=certificate / "cert.pem")
        assert (await first.boot())["status"] == "Accepted"
        # wrong password over TLS: the TLS handshake succeeds, the WebSocket one is refused
        with pytest.raises(SimulatorError) as info:
            await first.cmd("reconnect", basic_auth=f"{PW_CHARGER}:wrong-password-123456")
        assert info.value.status == 401
        await first.cmd("reconnect", basic_auth=f"{PW_CHARGER}:{PASSWORD}")
        # the charger comes back over a new connection (a network drop): the new one replaces
        # the old cleanly, and the old one is told so with a normal close
        second = await SimulatedCharger.start(nursery, url(site, PW_CHARGER, "wss"), basic_auth=f"{PW_CHARGER}:{PASSWORD}",
                                              ca_file=certificate / "cert.pem")
        closed = await first.next_event("closed", by="server", timeout=20)
        assert (closed["code"], closed["by"], closed["reason"]) == (1000, "server", "replaced by a new connection")
        assert (await second.boot())["status"] == "Accepted"
        assert site.chargers.get(PW_CHARGER).link is not None
        await eventually(lambda: dict(site.ocpp.limiter.open) == {"127.0.0.1": 1}, timeout=20,
                         what="one open connection counted")
        # a charger that does not trust the certificate does not get in
        with pytest.raises(SimulatorError, match="CERTIFICATE_VERIFY_FAILED"):
            await SimulatedCharger.start(nursery, url(site, HASH_CHARGER, "wss"),
                                         basic_auth=f"{HASH_CHARGER}:{HASH_PASSWORD}", ca_file=certificate / "other.pem")
        assert (await second.heartbeat())["currentTime"]
        await first.aclose()
        await second.aclose()


async def test_profile_2_listener_speaks_only_tls(tmp_path, certificate):
    async with secure_site(tmp_path, tls_dir=certificate) as site:
        tls = client_tls(certificate)
        assert (await handshake_status(url(site, PW_CHARGER, "wss"), [basic(PW_CHARGER, "nope-nope-nope-nope")], tls))[0] == 401
        async with raw(url(site, PW_CHARGER, "wss"), [basic(PW_CHARGER, PASSWORD)], tls) as cp:
            assert (await cp.boot())["status"] == "Accepted"
            assert cp.ws.remote.is_ssl


@pytest.mark.parametrize("breakage, key", [
    ("missing cert", "tls_cert"), ("missing key", "tls_key"), ("cert is not PEM", "tls_cert"),
    ("key does not match", "tls_cert, ocpp.tls_key"),
])
def test_unusable_certificate_is_a_config_error_naming_key_and_file(tmp_path, certificate, capsys, breakage, key):
    path = write_config(tmp_path, tls_dir=certificate)
    tls = tmp_path / "tls"
    if breakage == "missing cert":
        (tls / "cert.pem").unlink()
    elif breakage == "missing key":
        (tls / "key.pem").unlink()
    elif breakage == "cert is not PEM":
        (tls / "cert.pem").write_text("hello")
    else:
        shutil.copy(tls / "other-key.pem", tls / "key.pem")
    config = load_config(path)  # the file itself is valid TOML and schema
    with pytest.raises(ConfigError) as info:
        Site(config)
    message = str(info.value)
    assert message.startswith(f"{path}: ocpp.{key}: ") and str(tls) in message
    assert cli.main(["check-config", str(path)]) == 2
    assert f"ocpp.{key}" in capsys.readouterr().err


# -- limits --------------------------------------------------------------------------------------


async def test_oversize_frame_closes_with_1009(tmp_path):
    async with secure_site(tmp_path, ocpp="max_frame_bytes = 4096") as site:
        async with raw(url(site, OPEN_CHARGER)) as cp:
            data = "x" * 4000  # the frame stays under 4096 characters
            reply = await cp.call("DataTransfer", {"vendorId": "v", "data": data})
            assert reply[0] in (3, 4)
            await cp.send([2, "big", "DataTransfer", {"vendorId": "v", "data": data + "x" * 200}])
            with pytest.raises(ConnectionClosed) as info:
                await cp.receive()
            assert info.value.reason.code == 1009


UPGRADE = (b"GET /ocpp/CP-OPEN HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n")


@pytest.fixture
def clock() -> trio.testing.MockClock:
    # Jump only once every task has idled 50 ms of real time: SQLite work runs in threads.
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
async def test_stalled_handshake_is_dropped_without_affecting_others(tmp_path, certificate, clock, tls):
    async with secure_site(tmp_path, ocpp="handshake_timeout_s = 5", tls_dir=certificate if tls else None) as site:
        context = client_tls(certificate) if tls else None
        scheme = "wss" if tls else "ws"
        async with raw(url(site, OPEN_CHARGER, scheme), tls=context) as charger:
            await charger.boot()
            start = trio.current_time()
            # TLS: a record header promising a ClientHello that never comes, and a plain-text
            # upgrade (ws:// to the wss:// port); plain: half a request line; both: nothing at all
            sends = [b"", b"\x16\x03\x01\x02\x00", UPGRADE] if tls else [b"", UPGRADE[:20]]
            streams = [await trio.open_tcp_stream("127.0.0.1", site.ocpp_port) for _ in sends]
            for stream, data in zip(streams, sends):
                await stream.send_all(data)
            for stream in streams:
                received = b""
                with trio.fail_after(60):
                    try:
                        while chunk := await stream.receive_some():
                            received += chunk
                    except trio.BrokenResourceError:
                        pass  # a reset is as good as a close
                assert b"101" not in received and b"HTTP" not in received
                await stream.aclose()
            assert 5 <= trio.current_time() - start < 10  # mock time: the configured timeout, not the default
            assert (await charger.call("Heartbeat", {}))[0] == 3


async def test_connections_per_address_are_limited(tmp_path, caplog):
    async with secure_site(tmp_path, ocpp="max_connections_per_address = 2", unknown="accept") as site:
        async with raw(url(site, "CP-A")) as a, raw(url(site, "CP-B")) as b:
            await a.boot()
            await b.boot()
            status, answer = await handshake_status(url(site, "CP-C"), [])
            assert status == 503 and b"retry-after" in answer
            assert "max_connections_per_address" in caplog.text
            # a charger already connected from this address may still replace its own connection
            async with raw(url(site, "CP-A")) as again:
                assert (await again.call("Heartbeat", {}))[0] == 3
                with pytest.raises(ConnectionClosed):
                    await a.receive()
                assert (await handshake_status(url(site, "CP-C"), []))[0] == 503
        # every slot comes back when the connections close
        await eventually(lambda: not site.ocpp.limiter.open, timeout=20, what="all slots released")
        async with raw(url(site, "CP-C")) as c, raw(url(site, "CP-D")) as d:
            assert (await c.call("Heartbeat", {}))[0] == 3 and (await d.call("Heartbeat", {}))[0] == 3
