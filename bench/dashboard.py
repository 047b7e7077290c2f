"""The dashboard's live path, measured: from a charger's StatusNotification to the change arriving
on an open page's event stream, and the chargers' OCPP round trip with 100 open pages versus none.

evedge runs as its own process (bench/run.py Server). A charger played here over a WebSocket
alternates its connector between Preparing and Available; for each StatusNotification this
process times its answer (the OCPP round trip) and the `set` message carrying the new status on
its own signed-in event stream (/dashboard/events), the moment a page would show it. Then
Heartbeat round trips. Both phases run on the same server: first with no other page open, then
with `--pages` more, held by a second process that, like a real page, fetches its page again on
every `refresh` message.

    .venv/bin/python -m bench.dashboard                  # 200 changes, 200 heartbeats, 0 and 100 pages
    .venv/bin/python -m bench.dashboard --changes 500 --pages 100
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

CHARGER = "BENCH-DASH"
KEY = "bench"  # bench/run.py Server's API key
ROOT = Path(__file__).resolve().parents[1]
SPACING_S = 0.25  # between status changes: more than a page's message interval (dashboard/live.py), as on a site


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(q / 100 * (len(values) - 1)))))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(_pct(values, 50), 2), "p99_ms": round(_pct(values, 99), 2),
            "max_ms": round(max(values), 2)}


async def sign_in(base: str) -> str:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/dashboard/sign-in", data={"key": KEY})
        assert response.status_code == 303, response.text
        return response.cookies["evedge_session"]


async def hold_pages(base: str, cookie: str, pages: int) -> None:
    """`pages` open event streams, each fetching `/` again on a refresh (what a browser does)."""
    limits = httpx.Limits(max_connections=pages * 2 + 10)
    async with httpx.AsyncClient(base_url=base, cookies={"evedge_session": cookie}, timeout=None,
                                 limits=limits) as client:
        opened = 0

        async def page() -> None:
            nonlocal opened
            async with client.stream("GET", "/dashboard/events") as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("retry:"):
                        opened += 1
                        if opened == pages:
                            print("ready", flush=True)
                    elif line == "event: refresh":
                        await client.get("/")

        await asyncio.gather(*(page() for _ in range(pages)))


async def measure(server, cookie: str, changes: int, heartbeats: int) -> dict:
    from websockets.asyncio.client import connect

    base = f"http://127.0.0.1:{server.api_port}"
    seen: asyncio.Queue[tuple[float, dict]] = asyncio.Queue()
    key = f"c/{CHARGER}/1/status"

    async with httpx.AsyncClient(base_url=base, cookies={"evedge_session": cookie}, timeout=None) as client, \
            client.stream("GET", "/dashboard/events") as stream:
        async def read() -> None:
            async for line in stream.aiter_lines():
                if line.startswith("data:") and key in line:
                    await seen.put((time.perf_counter(), orjson.loads(line[5:])))

        reader = asyncio.create_task(read())
        async with connect(f"{server.url}/{CHARGER}", subprotocols=["ocpp1.6"], ping_interval=None) as ws:
            ids = iter(range(1, 10**9))

            async def call(action: str, payload: dict) -> float:
                t0 = time.perf_counter()
                await ws.send(orjson.dumps([2, str(next(ids)), action, payload]).decode())
                await ws.recv()
                return (time.perf_counter() - t0) * 1000

            await call("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Dash"})
            to_page, status_rtt, heartbeat_rtt = [], [], []
            for i in range(changes):
                status = "Preparing" if i % 2 == 0 else "Available"
                t0 = time.perf_counter()
                status_rtt.append(await call("StatusNotification",
                                             {"connectorId": 1, "errorCode": "NoError", "status": status}))
                while True:
                    at, values = await asyncio.wait_for(seen.get(), 5)
                    if values.get(key) == status:
                        break
                to_page.append((at - t0) * 1000)
                await asyncio.sleep(SPACING_S)
            for _ in range(heartbeats):
                heartbeat_rtt.append(await call("Heartbeat", {}))
        reader.cancel()
    return {"status_to_page": summary(to_page), "status_round_trip": summary(status_rtt),
            "heartbeat_round_trip": summary(heartbeat_rtt)}


def run(workdir: Path, changes: int, heartbeats: int, pages: int) -> dict:
    from bench.run import Server

    server = Server("evedge", workdir, extra_config=f'[[chargers]]\nid = "{CHARGER}"\nconnectors = 1\n').start()
    results = {}
    holder = None
    try:
        base = f"http://127.0.0.1:{server.api_port}"
        cookie = asyncio.run(sign_in(base))
        results["pages_0"] = asyncio.run(measure(server, cookie, changes, heartbeats))
        holder = subprocess.Popen([sys.executable, "-m", "bench.dashboard", "--hold", str(pages), "--base", base,
                                   "--cookie", cookie], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        results[f"pages_{pages}"] = asyncio.run(measure(server, cookie, changes, heartbeats))
    finally:
        if holder is not None:
            holder.terminate()
            holder.wait(10)
        server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--heartbeats", type=int, default=200)
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)  # the page-holding process
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--cookie", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hold:
        asyncio.run(hold_pages(args.base, args.cookie, args.hold))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(run(Path(tmp), args.changes, args.heartbeats, args.pages), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
