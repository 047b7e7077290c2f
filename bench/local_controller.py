"""Local-controller mode: what forwarding adds to a charger's round trip, and how fast a backlog
queued while the central system was away drains once it is back.

  python -m bench.local_controller [--quick] [--out bench/results/local_controller.json]

- latency: open loop, MeterValues (4 values) from `--chargers` chargers at `--rate` msg/s, against
  evedge alone and against evedge forwarding every message to a local central system (the `ocpp`
  library's asyncio ChargePoint, `bench.baselines statusquo`), rounds interleaved; p50 / p99 of
  the charger's round trip (the forwarded message is queued on disk before the charger's answer).
- replay: evedge with its central system down takes a backlog (closed loop MeterValues for
  `--backlog-s` s from `--replay-chargers` chargers), then the central system starts on its port:
  messages delivered per second from the first one replayed until every queue is empty.

Prints the figures and writes the JSON file.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.loadgen import cpu_seconds
from bench.run import API_KEY, PY, ROOT, Server, loadgen


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def upstream_config(port: int) -> str:
    return f'[upstream.ocpp]\nurl = "ws://127.0.0.1:{port}/ocpp"\nreconnect_max_s = 1\n'


def central_system(port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([PY, "-m", "bench.baselines", "statusquo", "--port", str(port)], cwd=ROOT,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while "ready port=" not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"the central system did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.01)
    return proc


def queued(server: Server) -> tuple[int, int]:
    """(messages queued, links connected) over every charger."""
    answer = httpx.get(f"http://127.0.0.1:{server.api_port}/api/v1/upstream", headers={"X-API-Key": API_KEY},
                       timeout=30).json()["chargers"]
    return sum(link["queued"] for link in answer), sum(link["connected"] for link in answer)


def latency(workdir: Path, chargers: int, rate: float, duration: float, rounds: int) -> dict:
    port = free_port()
    cs = central_system(port, workdir / "cs-latency.log")
    results: dict[str, list[dict]] = {"direct": [], "forwarded": []}
    try:
        for r in range(rounds):
            for kind, extra in (("direct", ""), ("forwarded", upstream_config(port))):
                sub = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{kind}-{r}-"))
                server = Server("evedge", sub, extra_config=extra).start()
                try:
                    results[kind].append(loadgen(server, "--mode", "open", "--workload", "meter4", "--chargers",
                                                 str(chargers), "--rate", str(rate), "--duration", str(duration)))
                    if kind == "forwarded":
                        results[kind][-1]["left_queued"] = queued(server)[0]
                finally:
                    server.stop()
    finally:
        cs.terminate()
        cs.wait(10)
    best = {kind: min(runs, key=lambda run: run["p99_ms"]) for kind, runs in results.items()}
    return {
        "chargers": chargers, "rate": rate, "duration_s": duration, "rounds": rounds,
        "direct": {k: best["direct"][k] for k in ("p50_ms", "p99_ms", "answered", "errors")},
        "forwarded": {k: best["forwarded"][k] for k in ("p50_ms", "p99_ms", "answered", "errors", "left_queued")},
        "added_p50_ms": round(best["forwarded"]["p50_ms"] - best["direct"]["p50_ms"], 3),
        "added_p99_ms": round(best["forwarded"]["p99_ms"] - best["direct"]["p99_ms"], 3),
        "all_rounds": results,
    }


def replay(workdir: Path, chargers: int, backlog_s: float) -> dict:
    port = free_port()
    sub = Path(tempfile.mkdtemp(dir=workdir, prefix="replay-"))
    server = Server("evedge", sub, extra_config=upstream_config(port)).start()
    try:
        load = loadgen(server, "--mode", "closed", "--workload", "meter4", "--chargers", str(chargers),
                       "--duration", str(backlog_s))
        backlog, _ = queued(server)
        cs = central_system(port, workdir / "cs-replay.log")
        try:
            t_up = time.monotonic()
            cpu0 = (cpu_seconds(server.proc.pid), cpu_seconds(cs.pid))
            first = None
            left = backlog
            while left:
                left, _ = queued(server)
                if first is None and left < backlog:
                    first = time.monotonic()
                time.sleep(0.02)
            done = time.monotonic()
            cpu1 = (cpu_seconds(server.proc.pid), cpu_seconds(cs.pid))
        finally:
            cs.terminate()
            cs.wait(10)
    finally:
        server.stop()
    first = first or done
    return {
        "chargers": chargers, "backlog": backlog, "taken_msgs_per_s": load["msgs_per_s"],
        "reconnect_s": round(first - t_up, 3), "replay_s": round(done - first, 3),
        "replayed_msgs_per_s": round(backlog / max(done - first, 1e-6), 1),
        # CPU per replayed message from the central system's start to the empty queue, µs
        "evedge_cpu_us_per_msg": round((cpu1[0] - cpu0[0]) * 1e6 / max(backlog, 1), 1),
        "central_system_cpu_us_per_msg": round((cpu1[1] - cpu0[1]) * 1e6 / max(backlog, 1), 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--chargers", type=int, default=50)
    ap.add_argument("--rate", type=float, default=500)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--replay-chargers", default="1,10")
    ap.add_argument("--backlog-s", type=float, default=10)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "local_controller.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.duration, args.rounds, args.backlog_s = 5, 1, 3
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        result = {"latency": latency(workdir, args.chargers, args.rate, args.duration, args.rounds),
                  "replay": [replay(workdir, int(n), args.backlog_s) for n in args.replay_chargers.split(",")]}
    lat = result["latency"]
    print(f"MeterValues round trip, {lat['chargers']} chargers at {lat['rate']:g} msg/s:"
          f" direct p50/p99 {lat['direct']['p50_ms']}/{lat['direct']['p99_ms']} ms,"
          f" forwarded {lat['forwarded']['p50_ms']}/{lat['forwarded']['p99_ms']} ms,"
          f" added p99 {lat['added_p99_ms']} ms")
    for run in result["replay"]:
        print(f"replay, {run['chargers']} charger(s): {run['backlog']} queued, {run['replayed_msgs_per_s']:g} msg/s"
              f" ({run['replay_s']} s, after {run['reconnect_s']} s to reconnect)")
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
