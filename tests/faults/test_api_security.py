"""REST security on a live server: operator and read-only keys, CORS, the body size limit.

Rate limits of the public (driver) endpoints are proven on a live server in
tests/public_charging/test_pc_api.py (test_rate_limits_per_endpoint, test_create_errors,
test_per_charger_cap); they are not repeated here.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import httpx
import pytest
import trio

from controller import reload
from controller.api import auth
from controller.api.app import MAX_BODY_BYTES
from controller.config import load_config
from tests.support import API_KEY, CHARGER, api_base, api_client, config_text, running_site

READ_ONLY = "read-only-key-0123"
ORIGIN = "https://ops.example.com"


def _write(tmp_path: Path, *, api_keys: tuple[str, ...] = (API_KEY,), read_only: tuple[str, ...] = (READ_ONLY,),
           origins: tuple[str, ...] = ()) -> Path:
    def toml_list(items: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{i}"' for i in items) + "]"

    text = config_text(tmp_path / "data").replace(
        f'api_keys = ["{API_KEY}"]',
        f"api_keys = {toml_list(api_keys)}\nread_only_api_keys = {toml_list(read_only)}\n"
        f"cors_allow_origins = {toml_list(origins)}")
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code and isinstance(body["message"], str), body
    return body


# -- keys ----------------------------------------------------------------------------------------


async def test_read_only_key_reads_and_cannot_write(tmp_path: Path) -> None:
    async with running_site(load_config(_write(tmp_path))) as site, \
            api_client(site) as operator, api_client(site, key=READ_ONLY) as reader:
        # (api_client checks every answer against the OpenAPI document: the 403s are documented)
        assert (await operator.post("/api/v1/id-tags", json={"idTag": "OP"})).status_code == 201
        assert (await reader.get("/api/v1/id-tags")).json()["idTags"][0]["idTag"] == "OP"
        assert (await reader.get(f"/api/v1/chargers/{CHARGER}")).status_code == 200
        async with api_client(site, key=READ_ONLY, validate=False) as plain:  # HEAD is not in the document
            assert (await plain.head("/api/v1/transactions")).status_code == 200
        writes = [
            ("POST", "/api/v1/id-tags", {"idTag": "RO"}),
            ("PUT", "/api/v1/id-tags/OP", {"status": "Blocked"}),
            ("PATCH", "/api/v1/id-tags/OP", {"status": "Blocked"}),
            ("DELETE", "/api/v1/id-tags/OP", None),
            ("POST", f"/api/v1/chargers/{CHARGER}/remote-start", {"connectorId": 1, "idTag": "RO"}),
            ("POST", f"/api/v1/chargers/{CHARGER}/operations/Reset", {"type": "Soft"}),
            ("POST", f"/api/v1/chargers/{CHARGER}/approve", None),
            ("POST", "/api/v1/transactions/1/stop", None),
            ("POST", "/api/v1/notifications/1/retry", None),
            ("POST", "/api/v1/public-sessions/1/resolve", {"status": "refunded"}),
        ]
        for method, path, body in writes:
            body = _error(await reader.request(method, path, json=body), 403, "Forbidden")
            assert "read-only" in body["message"]
        # nothing changed
        assert [t["idTag"] for t in (await operator.get("/api/v1/id-tags")).json()["idTags"]] == ["OP"]
        assert (await operator.get("/api/v1/id-tags/OP")).json()["status"] == "Accepted"
        # a wrong key is still a 401, whatever the method; public endpoints need no key
        async with api_client(site, key=READ_ONLY + "x") as wrong:
            _error(await wrong.get("/api/v1/id-tags"), 401, "Unauthorized")
            _error(await wrong.delete("/api/v1/id-tags/OP"), 401, "Unauthorized")
            assert (await wrong.get("/healthz")).status_code == 200


async def test_keys_change_with_a_reload(tmp_path: Path) -> None:
    """Keys are read per request: a SIGHUP reload swaps them without a restart."""
    path = _write(tmp_path)
    async with running_site(load_config(path)) as site, \
            api_client(site, key=READ_ONLY) as old_reader, api_client(site, key="new-operator") as new_operator:
        assert (await old_reader.get("/api/v1/id-tags")).status_code == 200
        _error(await new_operator.get("/api/v1/id-tags"), 401, "Unauthorized")
        # the old read-only key becomes an operator key; the new one is added; origins open up
        _write(tmp_path, api_keys=("new-operator", READ_ONLY), read_only=(), origins=(ORIGIN,))
        assert await reload.reload(site, path)
        assert (await new_operator.post("/api/v1/id-tags", json={"idTag": "NEW"})).status_code == 201
        assert (await old_reader.delete("/api/v1/id-tags/NEW")).status_code == 204
        async with api_client(site) as old_operator:
            _error(await old_operator.get("/api/v1/id-tags"), 401, "Unauthorized")
        answer = await new_operator.get("/api/v1/id-tags", headers={"Origin": ORIGIN})
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_every_key_is_compared_whatever_matches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Constant time: compare_digest runs against every configured key, match or not, first or last."""
    api = load_config(_write(tmp_path, api_keys=("op-1", "op-2", "op-3"), read_only=("ro-1", "ro-2"))).api
    calls: list[int] = []
    compare = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return compare(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    for given, role in (("op-1", "operator"), ("op-3", "operator"), ("ro-2", "read-only"), ("nope", None),
                        ("op-1" * 100, None)):
        calls.clear()
        assert auth.role_of(api, given) == role
        assert len(calls) == 5, given
    assert auth.role_of(api, "") is None


# -- CORS ----------------------------------------------------------------------------------------

PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "x-api-key, content-type"}


def _cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


async def test_cors_is_closed_by_default(tmp_path: Path) -> None:
    async with running_site(load_config(_write(tmp_path))) as site, \
            httpx.AsyncClient(base_url=api_base(site)) as client:
        answer = await client.get("/api/v1/chargers", headers={"Origin": ORIGIN, "X-API-Key": API_KEY})
        assert answer.status_code == 200 and _cors_headers(answer) == {}
        for path in ("/api/v1/id-tags", "/api/v1/public-charging/sessions", "/healthz"):
            preflight = await client.options(path, headers=PREFLIGHT)
            _error(preflight, 403, "Forbidden")
            assert _cors_headers(preflight) == {}


async def test_cors_grants_only_the_listed_origin(tmp_path: Path) -> None:
    async with running_site(load_config(_write(tmp_path, origins=(ORIGIN,)))) as site, \
            httpx.AsyncClient(base_url=api_base(site)) as client:
        preflight = await client.options("/api/v1/id-tags", headers=PREFLIGHT)
        assert preflight.status_code == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
        assert "x-api-key" in preflight.headers["Access-Control-Allow-Headers"].lower()
        other = await client.options("/api/v1/id-tags", headers={**PREFLIGHT, "Origin": "https://evil.example"})
        _error(other, 403, "Forbidden")
        assert _cors_headers(other) == {}
        # the real request: the listed origin may read the answer (an error too), others may not
        ok = await client.post("/api/v1/id-tags", json={"idTag": "C"}, headers={"Origin": ORIGIN, "X-API-Key": API_KEY})
        assert ok.status_code == 201 and ok.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Origin" in ok.headers["Vary"]
        refused = await client.get("/api/v1/id-tags", headers={"Origin": ORIGIN})
        assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == ORIGIN
        foreign = await client.get("/api/v1/id-tags", headers={"Origin": "https://evil.example", "X-API-Key": API_KEY})
        assert foreign.status_code == 200 and "Access-Control-Allow-Origin" not in foreign.headers


# -- body size -----------------------------------------------------------------------------------


async def test_bodies_over_64_kib_are_413(tmp_path: Path) -> None:
    async with running_site(load_config(_write(tmp_path))) as site, api_client(site) as api:
        padding = "x" * MAX_BODY_BYTES
        big = f'{{"idTag": "BIG", "pad": "{padding}"}}'.encode()
        assert len(big) > MAX_BODY_BYTES
        for path in ("/api/v1/id-tags", f"/api/v1/chargers/{CHARGER}/approve", "/api/v1/public-charging/sessions"):
            _error(await api.post(path, content=big, headers={"Content-Type": "application/json"}),
                   413, "PayloadTooLarge")

        async def chunks():  # no Content-Length: the limit holds while reading
            for _ in range(3):
                yield b" " * (MAX_BODY_BYTES // 2)
            yield b'{"idTag": "CHUNKED"}'

        _error(await api.post("/api/v1/id-tags", content=chunks(), headers={"Content-Type": "application/json"}),
               413, "PayloadTooLarge")
        # just under the limit is read and judged on its content
        fits = b'{"idTag": "FITS"}' + b" " * (MAX_BODY_BYTES - 17)
        assert len(fits) == MAX_BODY_BYTES
        created = await api.post("/api/v1/id-tags", content=fits, headers={"Content-Type": "application/json"})
        assert created.status_code == 201, created.text
        tags = [t["idTag"] for t in (await api.get("/api/v1/id-tags")).json()["idTags"]]
        assert tags == ["FITS"]


async def test_an_answer_before_the_body_keeps_the_connection_usable(tmp_path: Path) -> None:
    """A 401 (or 404, 429) decided before the request body has arrived must not leave the kept-alive
    connection stuck: the next request on it is answered. (schemathesis found this one: requests
    sends the head and the body separately.)"""
    async with running_site(load_config(_write(tmp_path))) as site:
        stream = await trio.open_tcp_stream("127.0.0.1", site.api_port)
        body = b'{"idTag": "LATE"}'
        head = (f"POST /api/v1/id-tags HTTP/1.1\r\nHost: x\r\nX-API-Key: wrong\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        async with stream:
            await stream.send_all(head)
            await trio.sleep(0.1)  # the server has the head (and could answer) before the body comes
            await stream.send_all(body)
            first = await _read_response(stream)
            assert first.startswith(b"HTTP/1.1 401"), first
            await stream.send_all(f"GET /api/v1/id-tags HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n\r\n".encode())
            second = await _read_response(stream)
            assert second.startswith(b"HTTP/1.1 200"), second


async def _read_response(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = await stream.receive_some()
            assert chunk, data
            data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0



async def test_malformed_bodies_and_ids_are_4xx_naming_what_is_wrong(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, ids beyond SQLite's 64 bits, digits that are not ASCII: each a
    JSON 4xx, never a 500 (schemathesis found all three as 500s)."""
    async with running_site(load_config(_write(tmp_path))) as site, api_client(site) as api:
        body = _error(await api.post("/api/v1/id-tags", content=b'{"idTag": "\xff\xfe"}',
                                     headers={"Content-Type": "application/json"}), 400, "BadRequest")
        assert "JSON" in body["message"], body
        for path in ("/api/v1/transactions/235264836812576456704", "/api/v1/transactions/%C2%B2",
                     "/api/v1/transactions?offset=235264836812576456704"):
            _error(await api.get(path), 422, "InvalidRequest")
        assert (await api.get("/api/v1/transactions/9223372036854775807")).status_code == 404
