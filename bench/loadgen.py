"""Load generator: N simulated OCPP 1.6J or 2.0.1 chargers in one or more processes (asyncio + websockets).

`--ocpp 1.6` (the default): 1.6J chargers (subprotocol "ocpp1.6"). `--ocpp 2.0.1`: charging
stations that offer "ocpp2.0.1" (no compression, as for 1.6), boot with 2.0.1's
BootNotification and StatusNotification (evseId/connectorId/connectorStatus); their meter
workloads run inside a transaction opened with TransactionEvent Started and report each meter
value as TransactionEvent Updated carrying the same sampled values as the 1.6 workload (numbers
with `unitOfMeasure`). Every frame kind of the chosen workload is checked against the version's
schemas (the `ocpp` library's) before any connection is made.

Modes:
  closed  each charger sends its next CALL as soon as the previous one is answered;
  open    a fixed aggregate rate spread over the chargers; latency is measured from the
          *scheduled* send time, so a slow server cannot hide its queueing (no coordinated
          omission);
  idle    connect, boot, report "HOLDING" on stderr and sit idle until killed or --duration.

Prints one JSON object on stdout: answered messages, rate, latency percentiles (ms), errors.
Run `python -m bench.loadgen --help`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from array import array

import orjson
from websockets.asyncio.client import connect

TS = "2026-02-06T12:00:00.000Z"
WORKLOADS = ("heartbeat", "status", "meter4", "meter12", "transaction", "mix", "site")
VERSIONS = ("1.6", "2.0.1")
SUBPROTOCOLS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}


def _sv(value, measurand, unit, phase=None):
    sv = {"value": value, "context": "Sample.Periodic", "format": "Raw", "measurand": measurand,
          "location": "Outlet", "unit": unit}
    if phase:
        sv["phase"] = phase
    return sv


def sampled_values(n: int, energy: int) -> list[dict]:
    """4 or 12 sampled values, as a typical AC charger reports them."""
    base = [_sv(str(energy), "Energy.Active.Import.Register", "Wh"), _sv("7360.0", "Power.Active.Import", "W"),
            _sv("32.0", "Current.Import", "A", "L1"), _sv("230.1", "Voltage", "V", "L1-N")]
    if n <= 4:
        return base[:n]
    more = [_sv("31.9", "Current.Import", "A", "L2"), _sv("32.1", "Current.Import", "A", "L3"),
            _sv("229.8", "Voltage", "V", "L2-N"), _sv("230.4", "Voltage", "V", "L3-N"),
            _sv("2453.3", "Power.Active.Import", "W", "L1"), _sv("2451.0", "Power.Active.Import", "W", "L2"),
            _sv("2455.7", "Power.Active.Import", "W", "L3"), _sv("64", "SoC", "Percent", None)]
    return (base + more)[:n]


def _sv201(value, measurand, unit, phase=None, context="Sample.Periodic"):
    sv = {"value": value, "context": context, "measurand": measurand, "location": "Outlet",
          "unitOfMeasure": {"unit": unit}}
    if phase:
        sv["phase"] = phase
    return sv


def sampled_values_201(n: int, energy: int) -> list[dict]:
    """The same 4 or 12 readings as `sampled_values`, in 2.0.1's words: numbers, `unitOfMeasure`."""
    base = [_sv201(energy, "Energy.Active.Import.Register", "Wh"), _sv201(7360.0, "Power.Active.Import", "W"),
            _sv201(32.0, "Current.Import", "A", "L1"), _sv201(230.1, "Voltage", "V", "L1-N")]
    if n <= 4:
        return base[:n]
    more = [_sv201(31.9, "Current.Import", "A", "L2"), _sv201(32.1, "Current.Import", "A", "L3"),
            _sv201(229.8, "Voltage", "V", "L2-N"), _sv201(230.4, "Voltage", "V", "L3-N"),
            _sv201(2453.3, "Power.Active.Import", "W", "L1"), _sv201(2451.0, "Power.Active.Import", "W", "L2"),
            _sv201(2455.7, "Power.Active.Import", "W", "L3"), _sv201(64, "SoC", "Percent", None)]
    return (base + more)[:n]


class Charger:
    """One simulated charger: builds its frames, tracks its transaction."""

    def __init__(self, index: int, workload: str) -> None:
        self.id = f"BENCH-{index:05d}"
        self.index = index
        self.workload = workload
        self.seq = 0
        self.energy = 1000
        self.transaction_id = None
        self.step = index  # where in a multi-step cycle this charger is

    ANSWERS = {"GetLocalListVersion": {"listVersion": 0}, "GetConfiguration": {"configurationKey": []}}
    """Answers to the central system's calls that carry more than a status (the local-list check
    that follows every boot); every other call is accepted."""

    def answer(self, call: list) -> bytes:
        return orjson.dumps([3, call[1], self.ANSWERS.get(call[2], {"status": "Accepted"})])

    def uid(self) -> str:
        self.seq += 1
        return str(self.seq)

    def frame(self, action: str, payload: dict) -> tuple[str, str, bytes]:
        uid = self.uid()
        return uid, action, orjson.dumps([2, uid, action, payload])

    def boot(self):
        return self.frame("BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "LoadGen",
                                               "chargePointSerialNumber": self.id, "firmwareVersion": "1.0"})

    def status(self, status: str = "Available"):
        return self.frame("StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": status,
                                                 "timestamp": TS})

    def start(self):
        self.energy += 10
        return self.frame("StartTransaction", {"connectorId": 1, "idTag": f"TAG{self.index}",
                                               "meterStart": self.energy, "timestamp": TS})

    def stop(self):
        return self.frame("StopTransaction", {"transactionId": self.transaction_id or 1, "idTag": f"TAG{self.index}",
                                              "meterStop": self.energy, "timestamp": TS, "reason": "Local"})

    def meter(self, n: int):
        self.energy += 7
        payload = {"connectorId": 1, "meterValue": [{"timestamp": TS, "sampledValue": sampled_values(n, self.energy)}]}
        if self.transaction_id is not None:
            payload["transactionId"] = self.transaction_id
        return self.frame("MeterValues", payload)

    def heartbeat(self):
        return self.frame("Heartbeat", {})

    def setup_frames(self):
        """Frames sent before measurement starts."""
        yield self.boot()
        yield self.status("Available")
        if self.workload in ("meter4", "meter12", "mix", "site"):
            yield self.status("Charging")
            yield self.start()

    _MIX = ("meter4", "meter4", "heartbeat", "meter4", "status", "meter4", "meter12", "meter4",
            "heartbeat", "status", "meter4", "meter4", "meter4", "heartbeat", "status", "meter12",
            "meter4", "meter4", "heartbeat", "status")  # 50% meter4, 10% meter12, 20% heartbeat, 20% status

    # a charging site: MeterValues(4) every 10 s, a Heartbeat every 300 s (1 in 31 frames)
    _SITE = ("meter4",) * 30 + ("heartbeat",)

    def next_frame(self):
        w = self.workload
        if w in ("mix", "site"):
            cycle = self._MIX if w == "mix" else self._SITE
            w = cycle[self.step % len(cycle)]
            self.step += 1
        if w == "meter4":
            return self.meter(4)
        if w == "meter12":
            return self.meter(12)
        if w == "heartbeat":
            return self.heartbeat()
        if w == "status":
            self.step += 1
            return self.status(("Available", "Preparing", "Charging", "SuspendedEV")[self.step % 4])
        if w == "transaction":  # Start, 4 x MeterValues(4), Stop
            phase = self.step % 6
            self.step += 1
            if phase == 0:
                return self.start()
            if phase == 5:
                frame = self.stop()
                return frame
            return self.meter(4)
        raise ValueError(w)

    def on_answer(self, action: str, answer: list) -> None:
        if action == "StartTransaction":
            payload = answer[2] if len(answer) > 2 and isinstance(answer[2], dict) else {}
            self.transaction_id = payload.get("transactionId", 1)
        elif action == "StopTransaction":
            self.transaction_id = None


# The 1.6 workload's connector statuses in 2.0.1's words (a car plugged in, charging or not: Occupied).
STATUS_201 = {"Preparing": "Occupied", "Charging": "Occupied", "SuspendedEV": "Occupied", "SuspendedEVSE": "Occupied",
              "Finishing": "Occupied"}


class Charger201(Charger):
    """One simulated OCPP 2.0.1 charging station (EVSE 1, connector 1), the same workloads in
    2.0.1's messages: the station names its transactions and numbers its TransactionEvents."""

    TOKEN_TYPE = "ISO14443"
    ANSWERS = {"GetLocalListVersion": {"versionNumber": 0}}

    def __init__(self, index: int, workload: str) -> None:
        super().__init__(index, workload)
        self.seq_no = 0  # of the station's next TransactionEvent
        self.transactions = 0

    def boot(self):
        return self.frame("BootNotification", {"reason": "PowerUp", "chargingStation": {
            "vendorName": "Bench", "model": "LoadGen", "serialNumber": self.id, "firmwareVersion": "1.0"}})

    def status(self, status: str = "Available"):
        status = STATUS_201.get(status, status)
        return self.frame("StatusNotification", {"timestamp": TS, "connectorStatus": status, "evseId": 1,
                                                 "connectorId": 1})

    def _event(self, event_type: str, trigger: str, info: dict, meter_value: list | None = None, **extra):
        payload = {"eventType": event_type, "timestamp": TS, "triggerReason": trigger, "seqNo": self.seq_no,
                   "transactionInfo": info, **extra}
        if meter_value:
            payload["meterValue"] = meter_value
        self.seq_no += 1
        return self.frame("TransactionEvent", payload)

    def _token(self) -> dict:
        return {"idToken": f"TAG{self.index}", "type": self.TOKEN_TYPE}

    def start(self):
        self.energy += 10
        self.transactions += 1
        self.transaction_id = f"{self.id}-{self.transactions}"
        return self._event("Started", "Authorized", {"transactionId": self.transaction_id, "chargingState": "Charging"},
                           [{"timestamp": TS, "sampledValue": [
                               _sv201(self.energy, "Energy.Active.Import.Register", "Wh", context="Transaction.Begin")]}],
                           evse={"id": 1, "connectorId": 1}, idToken=self._token())

    def stop(self):
        transaction_id, self.transaction_id = self.transaction_id or f"{self.id}-0", None
        return self._event("Ended", "StopAuthorized", {"transactionId": transaction_id, "stoppedReason": "Local"},
                           [{"timestamp": TS, "sampledValue": [
                               _sv201(self.energy, "Energy.Active.Import.Register", "Wh", context="Transaction.End")]}],
                           idToken=self._token())

    def meter(self, n: int):
        self.energy += 7
        meter_value = [{"timestamp": TS, "sampledValue": sampled_values_201(n, self.energy)}]
        if self.transaction_id is None:
            return self.frame("MeterValues", {"evseId": 1, "meterValue": meter_value})
        return self._event("Updated", "MeterValuePeriodic", {"transactionId": self.transaction_id}, meter_value)

    def on_answer(self, action: str, answer: list) -> None:
        pass  # the station names its transactions: nothing to learn from the answers


CHARGERS = {"1.6": Charger, "2.0.1": Charger201}


def check_frames(version: str, workload: str, cycles: int = 2) -> int:
    """Validate every frame a charger of this workload sends (set-up and two cycles of its traffic)
    against the version's schemas, as the `ocpp` library ships them; raise ValueError on the first
    invalid one. Returns the number of frames checked."""
    from ocpp.messages import get_validator

    charger = CHARGERS[version](0, workload)
    frames = list(charger.setup_frames())
    for _ in range(cycles * 20):  # the mix cycle is 20 frames long, the transaction cycle 6
        frames.append(charger.next_frame())
    for _, action, data in frames:
        payload = orjson.loads(data)[3]
        try:
            get_validator(2, action, version).validate(payload)
        except Exception as exc:  # noqa: BLE001 - name the frame
            raise ValueError(f"OCPP {version} {action} frame is not valid: {exc}\n{payload}") from None
    return len(frames)


class Stats:
    def __init__(self) -> None:
        self.lat_us = array("I")
        self.answered = 0
        self.errors = 0
        self.call_errors = 0
        self.first_error = ""


async def _roundtrip(ws, charger: Charger, frame, stats: Stats | None, t0: float | None = None) -> None:
    uid, action, data = frame
    sent = time.perf_counter() if t0 is None else t0
    await ws.send(data, text=True)
    while True:
        msg = orjson.loads(await ws.recv(decode=False))
        if msg[1] == uid:  # our answer (or, from the echo server, our own frame)
            break
        if msg[0] == 2:
            await ws.send(charger.answer(msg), text=True)
    done = time.perf_counter()
    if msg[0] == 4:
        if stats is not None:
            stats.call_errors += 1
            stats.first_error = stats.first_error or f"{action}: {msg[2]} {msg[3]}"
    charger.on_answer(action, msg)
    if stats is not None:
        stats.answered += 1
        stats.lat_us.append(min(int((done - sent) * 1e6), 0xFFFFFFFF))


async def _answer_calls(ws, charger: Charger) -> None:
    """An idle charger still answers the central system's calls, at once, as a real one does."""
    while True:
        msg = orjson.loads(await ws.recv(decode=False))
        if msg[0] == 2:
            await ws.send(charger.answer(msg), text=True)


async def _charger_task(url, charger, args, stats: Stats, ready: asyncio.Event, go: list, connected: list,
                        sem: asyncio.Semaphore):
    try:
        await sem.acquire()
        try:
            ws = await connect(f"{url}/{charger.id}", subprotocols=[SUBPROTOCOLS[args.ocpp]], compression=None,
                               max_size=None, ping_interval=None, open_timeout=60)
            for frame in charger.setup_frames():
                await _roundtrip(ws, charger, frame, None)
        finally:
            sem.release()
        async with ws:
            connected[0] += 1
            if connected[0] == args.n_local:
                ready.set()
            while not go:
                await asyncio.sleep(0.005)
            start, end = go[0], go[1]
            if args.mode == "idle":
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_answer_calls(ws, charger), max(0.0, end - time.monotonic()))
                return
            if args.mode == "closed":
                while time.monotonic() < end:
                    await _roundtrip(ws, charger, charger.next_frame(), stats)
                return
            # open loop: this charger's share of the aggregate rate, phases staggered
            period = args.chargers / args.rate
            slot = start + (charger.index * (1.0 / args.rate)) % period
            loop_to_perf = time.perf_counter() - time.monotonic()
            while slot < end:
                delay = slot - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await _roundtrip(ws, charger, charger.next_frame(), stats, t0=slot + loop_to_perf)
                slot += period
    except Exception as exc:  # noqa: BLE001 - report, don't crash the other chargers
        stats.errors += 1
        stats.first_error = stats.first_error or f"{type(exc).__name__}: {exc}"
        if connected[0] < args.n_local and not ready.is_set():
            connected[0] += 1
            if connected[0] == args.n_local:
                ready.set()


async def _worker_main(args, indices, conn) -> None:
    stats = Stats()
    ready = asyncio.Event()
    go: list = []
    connected = [0]
    args.n_local = len(indices)
    chargers = [CHARGERS[args.ocpp](i, args.workload) for i in indices]
    sem = asyncio.Semaphore(args.connect_concurrency)

    tasks = [asyncio.create_task(_charger_task(args.url, ch, args, stats, ready, go, connected, sem))
             for ch in chargers]
    if not chargers:
        ready.set()
    await ready.wait()
    # `connected` counts every charger that is done trying (the barrier); report the ones that made it
    conn.send(("ready", connected[0] - stats.errors, stats.errors))
    start, end = conn.recv()  # the common measurement window (CLOCK_MONOTONIC is system-wide)
    go.extend([start, end])
    await asyncio.gather(*tasks)
    conn.send(("done", stats.answered, stats.errors, stats.call_errors, stats.first_error, stats.lat_us.tobytes()))


def _worker(args, indices, conn) -> None:
    _raise_nofile()
    asyncio.run(_worker_main(args, indices, conn))


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def io_counters(pid: int) -> dict:
    """The process's write_bytes (what it sent to the storage layer) and write calls, from /proc."""
    out = {}
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = int(value)
    except (OSError, ValueError):
        pass
    return out


class SyncCounter:
    """fsync + fdatasync calls of a process over a window, counted by the kernel's tracepoints
    (`perf stat`, all the process's threads); None where perf cannot attach."""

    EVENTS = "syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync"

    def __init__(self, pid: int) -> None:
        self.proc = None
        if pid and shutil.which("perf"):
            self.proc = subprocess.Popen(["perf", "stat", "-x", ",", "-e", self.EVENTS, "-p", str(pid)],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None
        counts = [int(line.split(",")[0]) for line in err.splitlines()
                  if "sys_enter_f" in line and line.split(",")[0].isdigit()]
        return sum(counts) if len(counts) == 2 else None


def memory_mb(pid: int) -> dict:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    out[line[:5]] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def percentile(sorted_values, q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def run(args) -> dict:
    check_frames(args.ocpp, args.workload)
    procs, pipes = [], []
    n_procs = max(1, min(args.procs, args.chargers))
    for p in range(n_procs):
        parent, child = mp.Pipe()
        indices = list(range(p, args.chargers, n_procs))
        proc = mp.Process(target=_worker, args=(args, indices, child), daemon=True)
        proc.start()
        procs.append(proc)
        pipes.append(parent)
    t_connect = time.monotonic()
    connected = conn_errors = 0
    for pipe in pipes:
        _, c, e = pipe.recv()
        connected += c
        conn_errors += e
    connect_s = time.monotonic() - t_connect
    start = time.monotonic() + 0.2
    duration = args.duration
    if args.mode == "idle":
        print(f"HOLDING {connected}", file=sys.stderr, flush=True)
    for pipe in pipes:
        pipe.send((start, start + duration))
    pids = [p.pid for p in procs]
    syncs = SyncCounter(args.server_pid)  # attaches before the window opens
    time.sleep(max(0.0, start - time.monotonic()))
    srv0, gen0, io0 = cpu_seconds(args.server_pid), sum(cpu_seconds(p) for p in pids), io_counters(args.server_pid)
    time.sleep(max(0.0, start + duration - time.monotonic()))
    srv1, gen1, io1 = cpu_seconds(args.server_pid), sum(cpu_seconds(p) for p in pids), io_counters(args.server_pid)
    fsyncs = syncs.stop()
    mem = memory_mb(args.server_pid)
    answered = errors = call_errors = 0
    first_error = ""
    lat = array("I")
    for pipe in pipes:
        _, a, e, ce, fe, raw = pipe.recv()
        answered += a
        errors += e
        call_errors += ce
        first_error = first_error or fe
        chunk = array("I")
        chunk.frombytes(raw)
        lat.extend(chunk)
    for proc in procs:
        proc.join(5)
    lat_ms = sorted(v / 1000 for v in lat)
    return {
        "ocpp": args.ocpp, "mode": args.mode, "workload": args.workload, "chargers": args.chargers,
        "connected": connected,
        "rate_target": args.rate if args.mode == "open" else None, "duration_s": duration,
        "connect_s": round(connect_s, 3), "answered": answered, "msgs_per_s": round(answered / duration, 1),
        "p50_ms": round(percentile(lat_ms, 50), 3), "p99_ms": round(percentile(lat_ms, 99), 3),
        "max_ms": round(lat_ms[-1], 3) if lat_ms else None, "errors": errors + conn_errors,
        "call_errors": call_errors, "first_error": first_error,
        "server_cpu_pct": round(100 * (srv1 - srv0) / duration, 1),
        "loadgen_cpu_pct": round(100 * (gen1 - gen0) / duration, 1),
        "server_rss_mb": mem.get("VmRSS"), "server_peak_rss_mb": mem.get("VmHWM"),
        # over the window: bytes the server sent to storage (page-cache pages dirtied) and its fsyncs
        "server_write_bytes": io1.get("write_bytes", 0) - io0.get("write_bytes", 0) if io0 and io1 else None,
        "server_fsyncs": fsyncs,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="ws://host:port/ocpp (the charger id is appended)")
    ap.add_argument("--mode", choices=("closed", "open", "idle"), default="closed")
    ap.add_argument("--workload", choices=WORKLOADS, default="meter4")
    ap.add_argument("--ocpp", choices=VERSIONS, default="1.6",
                    help="the chargers' OCPP version (2.0.1: TransactionEvent Updated for the meter workloads)")
    ap.add_argument("--chargers", type=int, default=50)
    ap.add_argument("--rate", type=float, default=1000.0, help="open loop: aggregate messages/s")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--procs", type=int, default=1, help="load generator processes")
    ap.add_argument("--server-pid", type=int, default=0, help="measure this process's CPU and memory")
    ap.add_argument("--connect-concurrency", type=int, default=100)
    args = ap.parse_args(argv)
    result = run(args)
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
