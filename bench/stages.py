"""Where one message's CPU goes: the controller under load, sampled by py-spy, split by stage.

    python -m bench.stages [--mode closed|open] [--workload meter4] [--chargers 50] [--rate 1000]
                           [--duration 8] [--cpus 0] [--py-spy PATH]

Starts evedge as `make bench` does (bench.run.Server), under `py-spy record --format raw` (all
threads, samples of threads on the CPU only, 250 Hz), and drives it with bench.loadgen
over the run (the samples before Trio's loop runs, start-up, are left out, and so are those of
the chargers' connecting and booting: the handshake, BootNotification, the calls we make to a
charger that has just connected; with 500 chargers they were a third of the samples). Each
sample is given to the deepest stage found on its stack (py-spy often reads a task's coroutine
frames without the loop's under them: such a stack is placed by the same markers):

- receive: trio-websocket's reader task and `get_message` (socket read, WebSocket parsing, unmasking)
- decode, validate, encode: `frames.decode`, the dialect's schema check, `frames.encode_result`
- domain: the OCPP handler and the domain (`transactions`, `chargers`), not counting the store
- store hand-off: `Store.write` on the loop's side (queueing, waking)
- send: `RpcSession._send` (WebSocket framing, socket write)
- rpc: the session's own work around a call (`_read`, `_answer`: metrics, dispatch)
- scheduler: Trio's run loop and anything else on the loop's thread
- writer thread: SQL, commit and fsync (`evedge-store-writer`); other threads: the rest

The CPU per message is the server's CPU time over the window (/proc) divided by the messages
answered; each stage's µs are its share of the samples times that. Needs py-spy (`pip install
py-spy` into any venv; it attaches to the server's pid).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bench.run as br

# (stage, function name, file path fragment): the deepest match on a stack names its stage
MARKERS = [
    ("receive", "get_message", "trio_websocket"),
    ("receive", "_reader_task", "trio_websocket"),
    # py-spy often reads a task's coroutine frames without the ones under them: the transport's
    # own functions still tell which way the bytes go
    ("receive", "receive_some", "trio/_highlevel_socket.py"),
    ("receive", "receive_data", "wsproto/"),
    ("receive", "events", "wsproto/"),
    ("receive", "process", "wsproto/frame_protocol.py"),  # unmasking: only a charger's frames are masked
    ("receive", "_parse_more_gen", "wsproto/"),
    ("receive", "process_frame", "wsproto/"),
    ("receive", "process_buffer", "wsproto/"),
    ("receive", "send", "trio/_channel.py"),  # trio-websocket's reader handing a message over
    ("decode", "decode", "controller/csms/frames.py"),
    ("validate", "validate", "controller/csms/"),
    ("domain", "meter_values", "controller/csms/v16/handlers.py"),
    ("domain", "heartbeat", "controller/csms/v16/handlers.py"),
    ("domain", "status_notification", "controller/csms/v16/handlers.py"),
    ("domain", "dispatch", "controller/csms/"),
    ("domain", "on_meter_values", "controller/transactions.py"),
    ("store hand-off", "write", "controller/store/db.py"),
    ("store hand-off", "_submit", "controller/store/db.py"),
    ("store hand-off", "_wake", "controller/store/db.py"),
    ("encode", "encode_result", "controller/csms/frames.py"),
    ("send", "_send", "controller/csms/rpc.py"),
    ("send", "send", "wsproto/"),
    ("send", "send_all", "trio/_highlevel_socket.py"),
    ("send", "send_message", "trio_websocket"),
    ("send", "_send", "trio_websocket"),
]
# The work of a charger's connecting (handshake, boot, the calls we make to it then), not of its messages
CONNECTING = [("accept", "trio_websocket/_impl.py"), ("boot_notification", "controller/csms/"),
              ("check_open_charges", "controller/transactions.py"), ("connected", "controller/chargers.py"),
              ("disconnected", "controller/chargers.py"), ("call", "controller/csms/rpc.py"),
              ("_run", "controller/charger_jobs.py")]
ORDER = ["receive", "decode", "validate", "rpc", "domain", "store hand-off", "encode", "send", "scheduler",
         "writer thread", "other threads"]


def _frames(stack: str) -> list[tuple[str, str]]:
    """(function, file) from root to leaf of one py-spy raw stack (methods without their class)."""
    out = []
    for part in stack.split(";"):
        name, _, where = part.partition(" (")
        out.append((name.strip().rsplit(".", 1)[-1], where))
    return out


def classify(line: str) -> tuple[str, int]:
    """(stage, samples) of one line of py-spy's raw output."""
    stack, _, count = line.rstrip().rpartition(" ")
    frames = _frames(stack)
    if any(name == "_run_writer" and "store/db.py" in where for name, where in frames):
        return "writer thread", int(count)
    rooted = any(name in ("run", "unrolled_run") and "trio/_core/_run.py" in where for name, where in frames)
    if not rooted and any("threading.py" in where for _, where in frames):
        return "other threads", int(count)
    if not rooted and frames[0][1].startswith("<frozen runpy>"):
        return "start-up", int(count)  # imports and set-up before the loop runs: not counted
    # (a stack with neither root is a task's coroutine frames, read without the loop under them)
    if any("importlib" in where or name in ("load_config", "__init__") and "controller/site.py" in where
           for name, where in frames) or frames[-1][1].startswith("controller/cli.py"):
        return "start-up", int(count)  # lazy imports, building the site, gc.freeze() once it is up
    if any(name == fn and path in where for name, where in frames for fn, path in CONNECTING):
        return "connecting", int(count)  # the chargers' connecting and booting: not counted
    stage = "scheduler"
    for name, where in frames:
        for label, fn, path in MARKERS:
            if name == fn and path in where:
                stage = label
        if name in ("_read", "_answer", "_serve_calls") and "controller/csms/rpc.py" in where and stage == "scheduler":
            stage = "rpc"
    return stage, int(count)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the process's main thread (the Trio loop) and of all its other threads."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"loop": 0.0, "threads": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out["loop" if task.name == str(pid) else "threads"] += (int(fields[11]) + int(fields[12])) / tick
    return out


def _child(pid: int) -> int:
    """The process py-spy started (the server)."""
    for _ in range(100):
        for task in Path(f"/proc/{pid}/task").iterdir():
            children = (task / "children").read_text().split()
            if children:
                return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("py-spy started no server")


def run(args) -> dict:
    spy = args.py_spy or shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy not found: pip install py-spy (any venv), then --py-spy PATH")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        # py-spy starts the server (attaching to a running one needs more rights than a container has)
        wrap = [spy, "record", "--gil", "--format", "raw", "--rate", "250", "--nonblocking", "--output", str(raw), "--"]
        server = br.Server("evedge", Path(tmp), cpus=args.cpus, wrap=wrap).start()
        try:
            pid = _child(server.proc.pid)
            load = ["--mode", args.mode, "--workload", args.workload, "--chargers", str(args.chargers),
                    "--duration", str(args.duration)] + (["--rate", str(args.rate)] if args.mode == "open" else [])
            cpu0 = thread_cpu(pid)
            out = subprocess.run([br.PY, "-m", "bench.loadgen", "--url", server.url, "--server-pid", str(pid), *load],
                                 cwd=br.ROOT, capture_output=True, text=True, timeout=600, check=True).stdout
            cpu1 = thread_cpu(pid)
        finally:
            os.kill(pid, signal.SIGTERM)  # py-spy writes its file once the server has gone
            server.proc.wait(30)
            server.stop()
        result = json.loads(out.strip().splitlines()[-1])
        if args.raw:
            shutil.copy(raw, args.raw)
        samples: collections.Counter[str] = collections.Counter()
        for line in raw.read_text().splitlines():
            if line.strip():
                stage, n = classify(line)
                samples[stage] += n
    samples.pop("start-up", None)
    samples.pop("connecting", None)
    cpu_us = result["server_cpu_pct"] * 1e4 * result["duration_s"] / max(1, result["answered"])
    loop_s, threads_s = (cpu1[k] - cpu0[k] for k in ("loop", "threads"))
    loop_us = cpu_us * loop_s / max(1e-9, loop_s + threads_s)  # the loop thread's part of the window's CPU
    on_loop = sum(n for stage, n in samples.items() if stage not in ("writer thread", "other threads"))
    stages = {stage: {"share_of_loop": round(samples[stage] / on_loop, 3),
                      "us_per_msg": round(loop_us * samples[stage] / on_loop, 1)}
              for stage in ORDER if samples[stage] and stage not in ("writer thread", "other threads")}
    return {"mode": args.mode, "workload": args.workload, "chargers": args.chargers, "msgs_per_s": result["msgs_per_s"],
            "cpu_us_per_msg": round(cpu_us, 1), "loop_thread_us_per_msg": round(loop_us, 1),
            "other_threads_us_per_msg": round(cpu_us - loop_us, 1), "loop_samples": on_loop,
            "writer_thread_gil_samples": samples["writer thread"], "stages": stages}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="closed", choices=("closed", "open"))
    ap.add_argument("--workload", default="meter4")
    ap.add_argument("--chargers", type=int, default=50)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--cpus", default="", help="taskset CPU list for the server")
    ap.add_argument("--py-spy", default="", help="path of the py-spy executable")
    ap.add_argument("--raw", default="", help="keep py-spy's stacks in this file")
    args = ap.parse_args(argv)
    r = run(args)
    print(f"{r['mode']} {r['workload']} x{r['chargers']}: {r['msgs_per_s']:,.0f} msg/s, "
          f"{r['cpu_us_per_msg']} µs CPU per message ({r['loop_samples']} samples on the loop thread)")
    print("| stage | share of the loop thread | µs per message |\n|---|---:|---:|")
    for stage, x in r["stages"].items():
        print(f"| {stage} | {100 * x['share_of_loop']:.1f}% | {x['us_per_msg']:.1f} |")
    print(f"| **loop thread** | 100% | {r['loop_thread_us_per_msg']:.1f} |")
    print(f"| **writer thread (SQL, commit, fsync) and others** | | {r['other_threads_us_per_msg']:.1f} |")
    print(json.dumps(r), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
