"""Tap-to-RemoteStart, in the two halves that exist today.

End to end means: from the last byte of a card frame written into a pty to the
RemoteStartTransaction frame arriving on the charger's socket. The card reader driver
(`drivers/`) and the remote start (`Transactions.remote_start`) exist; the wiring between them
(a tap at a connector's reader starts a charge there) is not in the controller yet. Until it is,
this measures each half and reports their sum as an estimate:

  reader    last byte of an RDM6300 frame into a pty -> the driver's `on_tap` callback
            (the driver in this process, reading the pty slave as it would a USB adapter);
  start     POST /api/v1/chargers/{id}/remote-start on a running controller -> the
            RemoteStartTransaction frame on the charger's socket (includes HTTP, which the
            tap path will not have: an upper bound for the controller's share).
"""

from __future__ import annotations

import asyncio
import os
import time
import tty
from pathlib import Path

import orjson


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))]


def _summary(lat_ms: list[float]) -> dict:
    return {"taps": len(lat_ms), "p50_ms": round(_pct(lat_ms, 50), 2), "p99_ms": round(_pct(lat_ms, 99), 2),
            "max_ms": round(max(lat_ms), 2)}


def reader_half(taps: int) -> dict:
    import trio
    from pydantic import TypeAdapter

    from drivers.config import Rdm6300ReaderConfig
    from drivers.hardware import Hardware
    from drivers.rfid import rdm6300

    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    config = TypeAdapter(Rdm6300ReaderConfig).validate_python(
        {"id": "bench", "kind": "rdm6300", "port": path, "charger": "BENCH-TAP", "connector": 1})
    lat: list[float] = []

    async def main() -> None:
        seen = trio.Event()
        stamp = [0.0]

        async def on_tap(tap) -> None:
            lat.append((time.perf_counter() - stamp[0]) * 1000)
            seen.set()

        hardware = Hardware(readers=[config])
        async with trio.open_nursery() as nursery:
            await nursery.start(hardware.run, on_tap)
            await trio.sleep(0.5)  # the driver opens the port
            for i in range(taps):
                seen = trio.Event()
                frame = rdm6300.encode_frame((0x1000 + i).to_bytes(5, "big"))
                os.write(master, frame)  # all of it: the clock starts at its last byte
                stamp[0] = time.perf_counter()
                with trio.move_on_after(2):
                    await seen.wait()
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        os.close(master)
        os.close(slave)
    if len(lat) < taps:
        return {"error": f"only {len(lat)} of {taps} taps reached on_tap"}
    return _summary(lat)


def start_half(workdir: Path, taps: int) -> dict:
    import httpx
    from websockets.asyncio.client import connect

    from bench.run import API_KEY, Server

    server = Server("evedge", workdir).start()
    lat: list[float] = []

    async def main() -> None:
        async with connect(f"{server.url}/BENCH-TAP", subprotocols=["ocpp1.6"], ping_interval=None) as ws:
            async def call(uid, action, payload):
                await ws.send(orjson.dumps([2, uid, action, payload]).decode())
                return orjson.loads(await ws.recv())

            await call("1", "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Tap"})
            await call("2", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.api_port}",
                                         headers={"X-API-Key": API_KEY}) as http:
                for i in range(taps):
                    t0 = time.perf_counter()
                    post = asyncio.create_task(http.post("/api/v1/chargers/BENCH-TAP/remote-start",
                                                         json={"connectorId": 1, "idTag": f"CARD{i}"}))
                    frame = orjson.loads(await ws.recv())
                    lat.append((time.perf_counter() - t0) * 1000)
                    assert frame[2] == "RemoteStartTransaction", frame
                    await ws.send(orjson.dumps([3, frame[1], {"status": "Accepted"}]).decode())
                    (await post).raise_for_status()

    try:
        asyncio.run(main())
    finally:
        server.stop()
    return _summary(lat)


def run(workdir: Path, taps: int) -> dict:
    out: dict = {"status": "estimate", "why": "the tap-to-remote-start wiring is not in the controller yet; "
                                              "sum of the two measured halves"}
    try:
        out["reader"] = reader_half(taps)
    except Exception as exc:  # noqa: BLE001 - report, the rest of the bench goes on
        out["reader"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        out["start"] = start_half(workdir, taps)
    except Exception as exc:  # noqa: BLE001
        out["start"] = {"error": f"{type(exc).__name__}: {exc}"}
    r, s = out["reader"], out["start"]
    if "p99_ms" in r and "p99_ms" in s:
        out.update(taps=taps, p50_ms=round(r["p50_ms"] + s["p50_ms"], 2), p99_ms=round(r["p99_ms"] + s["p99_ms"], 2),
                   max_ms=round(r["max_ms"] + s["max_ms"], 2))
    return out


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), 50), indent=2))
