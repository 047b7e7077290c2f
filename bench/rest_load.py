"""Charger latency while REST clients are busy: chargers must come first.

  python -m bench.rest_load [--clients 1000] [--chargers 10] [--duration 20] [--quick]
                            [--out bench/results/rest_load.json]

Starts evedge (bench.run.Server), then measures Heartbeat and MeterValues round trips of
`--chargers` chargers (each one call after the other, as a charger does), first alone, then while
`--clients` keep-alive REST clients (another process) loop on GET /api/v1/transactions. Prints
p50 / p99 / max per action and how the REST clients were answered (200, 503 Busy), and writes
the JSON. Target: Heartbeat p99 under 50 ms with 1,000 REST clients busy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
from trio_websocket import open_websocket_url

from bench.run import API_KEY, PY, ROOT, Server, _raise_nofile

REQUEST = (f"GET /api/v1/transactions?limit=20 HTTP/1.1\r\nHost: bench\r\nX-API-Key: {API_KEY}\r\n\r\n").encode()
TARGET_HEARTBEAT_P99_MS = 50.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": round(percentile(values, 0.5) * 1000, 2),
            "p99_ms": round(percentile(values, 0.99) * 1000, 2),
            "max_ms": round(max(values) * 1000, 2) if values else None}


# -- the REST clients (their own process: python -m bench.rest_load --rest PORT CLIENTS SECONDS) ----

async def _rest_client(port: int, until: float, counts: dict[str, int]) -> None:
    """One keep-alive client: a request, its whole answer, the next request; reconnects when closed."""
    while trio.current_time() < until:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
        except OSError:
            counts["connect_error"] = counts.get("connect_error", 0) + 1
            await trio.sleep(0.1)
            continue
        async with stream:
            buffer = b""
            while trio.current_time() < until:
                try:
                    await stream.send_all(REQUEST)
                    while b"\r\n\r\n" not in buffer:
                        chunk = await stream.receive_some(65536)
                        if not chunk:
                            raise trio.BrokenResourceError
                        buffer += chunk
                    head, _, buffer = buffer.partition(b"\r\n\r\n")
                    length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                       if line.lower().startswith(b"content-length:")), b"0"))
                    while len(buffer) < length:
                        chunk = await stream.receive_some(65536)
                        if not chunk:
                            raise trio.BrokenResourceError
                        buffer += chunk
                    buffer = buffer[length:]
                    status = head.split(b" ", 2)[1].decode()
                    counts[status] = counts.get(status, 0) + 1
                    if b"connection: close" in head.lower():
                        break
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    counts["closed"] = counts.get("closed", 0) + 1
                    break


async def _rest_main(port: int, clients: int, seconds: float) -> None:
    counts: dict[str, int] = {}
    until = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        for _ in range(clients):
            nursery.start_soon(_rest_client, port, until, counts)
    print(json.dumps(counts), flush=True)


# -- the chargers ------------------------------------------------------------------------------

async def _charger(url: str, index: int, until: float, times: dict[str, list[float]]) -> None:
    async with open_websocket_url(f"{url}/BENCH-REST-{index}", subprotocols=["ocpp1.6"]) as ws:
        n = 0

        async def call(action: str, payload: dict) -> None:
            nonlocal n
            n += 1
            start = time.perf_counter()
            await ws.send_message(json.dumps([2, str(n), action, payload]))
            await ws.get_message()
            times.setdefault(action, []).append(time.perf_counter() - start)

        await call("BootNotification", {"chargePointVendor": "bench", "chargePointModel": "rest"})
        times.pop("BootNotification")
        energy = 0
        while trio.current_time() < until:
            await call("Heartbeat", {})
            energy += 10
            await call("MeterValues", {"connectorId": 1, "meterValue": [{
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "sampledValue": [{"value": str(energy), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]})
            await trio.sleep(0.05)


async def measure(url: str, chargers: int, seconds: float) -> dict:
    times: dict[str, list[float]] = {}
    until = trio.current_time() + seconds
    async with trio.open_nursery() as nursery:
        for index in range(chargers):
            nursery.start_soon(_charger, url, index, until, times)
    return {action: summary(values) for action, values in times.items()}


def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server("evedge", Path(tmp)).start()
        try:
            alone = trio.run(measure, server.url, args.chargers, args.duration / 2)
            rest = subprocess.Popen([PY, "-m", "bench.rest_load", "--rest", str(server.api_port), str(args.clients),
                                     str(args.duration + 5)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                    preexec_fn=_raise_nofile)
            time.sleep(3)  # the clients connect and get busy
            busy = trio.run(measure, server.url, args.chargers, args.duration)
            out, _ = rest.communicate(timeout=args.duration + 120)
            answers = json.loads(out.strip().splitlines()[-1])
        finally:
            server.stop()
    heartbeat_p99 = busy.get("Heartbeat", {}).get("p99_ms", float("inf"))
    return {"clients": args.clients, "chargers": args.chargers, "duration_s": args.duration,
            "alone": alone, "rest_busy": busy, "rest_answers": answers,
            "target": {"heartbeat_p99_ms": TARGET_HEARTBEAT_P99_MS, "met": heartbeat_p99 < TARGET_HEARTBEAT_P99_MS}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--rest"]:
        trio.run(_rest_main, int(argv[1]), int(argv[2]), float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--chargers", type=int, default=10)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="200 clients, 5 chargers, 8 s")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "rest_load.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.chargers, args.duration = min(args.clients, 200), 5, 8.0
    result = run(args)
    for phase in ("alone", "rest_busy"):
        for action, figures in result[phase].items():
            print(f"{phase:10} {action:12} n={figures['n']:6} p50={figures['p50_ms']:8.2f} ms"
                  f" p99={figures['p99_ms']:8.2f} ms max={figures['max_ms']:8.2f} ms")
    print(f"REST answers: {result['rest_answers']}")
    print(f"Heartbeat p99 under {TARGET_HEARTBEAT_P99_MS:g} ms with {result['clients']} REST clients:"
          f" {'yes' if result['target']['met'] else 'NO'}")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
