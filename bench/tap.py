"""Tap-to-RemoteStart, end to end: from the last byte of a card frame written into a pty to the
RemoteStartTransaction frame arriving on the charger's socket.

The controller runs as its own process with an RDM6300 reader configured on the pty's slave (as
it would open a USB serial adapter) and assigned to connector 1 of a charger that this process
plays over a WebSocket. Each tap uses a new card; the charger rejects each remote start, so the
connector is free again for the next tap.
"""

from __future__ import annotations

import asyncio
import os
import time
import tty
from pathlib import Path

import orjson

CHARGER = "BENCH-TAP"


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))]


def run(workdir: Path, taps: int) -> dict:
    from websockets.asyncio.client import connect

    from bench.run import Server
    from drivers.rfid import rdm6300

    master, slave = os.openpty()
    tty.setraw(slave)
    reader = (f'[[chargers]]\nid = "{CHARGER}"\nconnectors = 1\n'
              f'[[readers]]\nid = "bench"\nkind = "rdm6300"\nport = "{os.ttyname(slave)}"\n'
              f'charger = "{CHARGER}"\nconnector = 1\n')
    server = Server("evedge", workdir, extra_config=reader).start()
    lat: list[float] = []

    async def main() -> None:
        async with connect(f"{server.url}/{CHARGER}", subprotocols=["ocpp1.6"], ping_interval=None) as ws:
            async def call(uid: str, action: str, payload: dict) -> None:
                await ws.send(orjson.dumps([2, uid, action, payload]).decode())
                await ws.recv()

            await call("1", "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Tap"})
            await call("2", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Preparing"})
            await asyncio.sleep(0.5)  # the controller opens the reader's port
            for i in range(taps):
                os.write(master, rdm6300.encode_frame((0x1000 + i).to_bytes(5, "big")))
                t0 = time.perf_counter()  # after the frame's last byte is in the pty
                frame = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                lat.append((time.perf_counter() - t0) * 1000)
                assert frame[2] == "RemoteStartTransaction", frame
                await ws.send(orjson.dumps([3, frame[1], {"status": "Rejected"}]).decode())
                await asyncio.sleep(0.02)  # the rejected start is booked; the connector is free again

    try:
        asyncio.run(main())
    finally:
        server.stop()
        os.close(master)
        os.close(slave)
    return {"taps": len(lat), "p50_ms": round(_pct(lat, 50), 2), "p99_ms": round(_pct(lat, 99), 2),
            "max_ms": round(max(lat), 2)}


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), 50), indent=2))
