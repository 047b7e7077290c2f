"""The benchmark: evedge against the Python status quo and the transport's ceiling, in one run.

  python -m bench.run [--quick] [--duration S] [--out bench/results/latest.json] [--only NAME,...]

OCPP 1.6J scenarios go to "load" in the JSON; the OCPP 2.0.1 closed-loop scenarios (evedge
against the `ocpp` library's asyncio v201 ChargePoint, `statusquo201`, and the echo) to
"load_ocpp201", their ratios under "ratios" as "OCPP 2.0.1 closed ...".

Every server runs as its own process (fresh database for evedge), the load generator
(bench/loadgen.py) in another; the server's CPU and memory come from /proc. Prints a table
and writes the JSON file. Absolute figures depend on the machine and on what else runs on it:
compare rows of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
API_KEY = "bench"
TARGETS = ("evedge", "statusquo", "echo")
# OCPP 2.0.1 runs the same three roles; its status quo is the ocpp library's v201 ChargePoint.
STATUSQUO = {"1.6": "statusquo", "2.0.1": "statusquo201"}
WORKLOADS_201 = ("meter4", "meter12", "status")
# evedge as it was before the compiled validators: every payload through jsonschema (for before/after).
BEFORE = "evedge-jsonschema"
SITE_OCPP = 'local_list = "off"\n'
"""[ocpp] settings of the site scenario, which measures a site that runs, not one that just booted:
the simulated chargers answer the controller's calls only with their next message (every ~10 s
at a site's rate), so the local-list sync that each boot starts would stretch over the whole
window, one commit of its own every few readings, and be measured instead of the readings."""


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Server:
    """One server under test, as a subprocess."""

    def __init__(self, kind: str, workdir: Path, data_dir: Path | None = None, extra_config: str = "",
                 cpus: str = "", wrap: list[str] | None = None, ocpp_config: str = "") -> None:
        self.kind = kind
        self.ocpp_config = ocpp_config  # more keys of the [ocpp] table
        self.wrap = wrap or []  # a command the server runs under (a profiler: bench/stages.py)
        self.cpus = cpus  # taskset CPU list: "0" runs the server (all its threads) on one core
        self.extra_config = extra_config
        self.workdir = workdir
        self.log_path = workdir / f"{kind}.log"
        self.data_dir = data_dir or (workdir / "data")
        self.ocpp_port = self.api_port = None
        self.startup_s = None

    def start(self, timeout: float = 30.0) -> "Server":
        if self.kind.startswith("evedge"):
            config = self.workdir / "evedge.toml"
            config.write_text(
                f'[site]\nname = "bench"\ndata_dir = "{self.data_dir}"\n'
                '[ocpp]\nlisten = "127.0.0.1:0"\nunknown_chargers = "accept"\naccept_unknown_id_tags = true\n'
                # every simulated charger dials from 127.0.0.1
                'max_connections_per_address = 100000\n' + self.ocpp_config +
                f'[api]\nlisten = "127.0.0.1:0"\napi_keys = ["{API_KEY}"]\n'
                '[logging]\nlevel = "info"\n' + self.extra_config
            )
            cmd = [PY, "-m", "controller", "run", "--config", str(config)]
            if self.kind == BEFORE:
                cmd = [PY, "-c", "import sys; import controller.csms.schemas as s; s.compile_check = lambda schema, label: None; "
                       "from controller.cli import main; sys.exit(main(sys.argv[1:]))", "run", "--config", str(config)]
        else:
            cmd = [PY, "-m", "bench.baselines", self.kind]
        if self.cpus:
            cmd = ["taskset", "-c", self.cpus, *cmd]
        cmd = [*self.wrap, *cmd]
        self._log = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     preexec_fn=_raise_nofile)
        try:
            return self._wait_ready(t0, timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, t0: float, timeout: float) -> "Server":
        while time.perf_counter() - t0 < timeout:
            text = self.log_path.read_text(errors="replace")
            if self.kind.startswith("evedge") and " ready: ocpp_port=" in text:
                line = next(l for l in text.splitlines() if " ready: ocpp_port=" in l)
                self.startup_s = time.perf_counter() - t0
                self.ocpp_port = int(re.search(r"ocpp_port=(\d+)", line).group(1))
                self.api_port = int(re.search(r"api_port=(\d+)", line).group(1))
                return self
            if not self.kind.startswith("evedge") and "ready port=" in text:
                self.startup_s = time.perf_counter() - t0
                self.ocpp_port = int(text.split("ready port=")[1].split()[0])
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.003)
        raise RuntimeError(f"{self.kind} did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}")

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def loadgen(server: Server, *args: str, timeout: float = 600) -> dict:
    cmd = [PY, "-m", "bench.loadgen", "--url", server.url, "--server-pid", str(server.proc.pid), *args]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def stored_counts(data_dir: Path) -> dict:
    path = data_dir / "evedge.sqlite3"
    if not path.exists():
        return {"error": f"no database at {path}"}
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the server has stopped: everything into the file
        readings = conn.execute("SELECT count(*) FROM meter_values").fetchone()[0]
        size = path.stat().st_size
        return {"meter_values": readings,
                "transactions": conn.execute("SELECT count(*) FROM transactions").fetchone()[0],
                "db_bytes": size, "db_bytes_per_reading": round(size / readings) if readings else None}
    finally:
        conn.close()


def run_load(kind: str, workdir: Path, *args: str, cpus: str = "") -> dict:
    sub = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{kind}-"))
    site = "site" in args and args[args.index("site") - 1] == "--workload"
    server = Server(kind, sub, cpus=cpus, ocpp_config=SITE_OCPP if site else "").start()
    try:
        result = loadgen(server, *args)
    finally:
        server.stop()
    result["target"] = kind
    result["startup_s"] = round(server.startup_s, 3)
    if kind.startswith("evedge"):
        result["stored"] = stored_counts(server.data_dir)
    if cpus:
        result["server_cpus"] = cpus
    if result["answered"]:
        result["server_cpu_us_per_msg"] = round(result["server_cpu_pct"] * 1e4 * result["duration_s"]
                                                / result["answered"], 1)
        if result.get("server_write_bytes") is not None:
            result["write_bytes_per_msg"] = round(result["server_write_bytes"] / result["answered"])
        if result.get("server_fsyncs") is not None:
            result["fsyncs_per_msg"] = round(result["server_fsyncs"] / result["answered"], 3)
    shutil.rmtree(sub, ignore_errors=True)
    return result


def interleaved(rounds: int, kinds: list[str], workdir: Path, *args: str, cpus: str = "") -> list[dict]:
    """Run one scenario against each target, `rounds` times round-robin (so a burst of load from
    elsewhere on the machine hits every target alike), and keep per target the round with the
    highest throughput (closed loop) or the lowest p99 (open loop): the least disturbed one.
    Every round's figures stay in the JSON."""
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for kind in kinds:
            runs[kind].append(run_load(kind, workdir, *args, cpus=cpus))
    out = []
    for kind in kinds:
        rs = runs[kind]
        best = dict(max(rs, key=lambda r: r["msgs_per_s"] if r["mode"] == "closed" else -r["p99_ms"]))
        if rounds > 1:
            best["rounds_msgs_per_s"] = [r["msgs_per_s"] for r in rs]
            best["rounds_p99_ms"] = [r["p99_ms"] for r in rs]
            best["rounds_server_cpu_us_per_msg"] = [r.get("server_cpu_us_per_msg") for r in rs]
            best["median_msgs_per_s"] = round(statistics.median(r["msgs_per_s"] for r in rs), 1)
        out.append(best)
    return out


def seed_transactions(data_dir: Path, n: int) -> None:
    """n completed transactions on the books, written straight into a migrated database."""
    sys.path.insert(0, str(ROOT))
    from controller.store import space
    from controller.store.schema import migrate

    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(data_dir / "evedge.sqlite3", isolation_level=None)
    space.prepare(conn)  # the file as the controller makes it (else its start-up would rewrite it once)
    migrate(conn)
    rows = []
    for i in range(1, n + 1):
        day = 1 + (i // 5000) % 28
        start = f"2026-01-{day:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:00.000Z"
        stop = f"2026-01-{day:02d}T{(i // 60) % 24:02d}:{i % 60:02d}:59.000Z"
        rows.append((f"CP-{i % 40:03d}", 1 + i % 2, f"TAG{i % 500}", "completed", "local", "Accepted",
                     1000 * i, 1000 * i + 7400, 1000 * i + 7400, start, stop, "Local", f"key-{i}", start, stop))
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO transactions (charger_id, connector_id, id_tag, status, mode, id_tag_status, meter_start,"
        " meter_stop, meter_last, start_time, stop_time, stop_reason, start_key, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    conn.close()


def run_rest(workdir: Path, n_rows: int, requests: int) -> dict:
    import httpx

    sub = Path(tempfile.mkdtemp(dir=workdir, prefix="rest-"))
    seed_transactions(sub / "data", n_rows)
    server = Server("evedge", sub).start()
    try:
        out = {"rows": n_rows, "startup_s": round(server.startup_s, 3)}
        with httpx.Client(base_url=f"http://127.0.0.1:{server.api_port}", headers={"X-API-Key": API_KEY}) as http:
            for name, path in (("list", "/api/v1/transactions"),
                               ("list_completed_offset_5000", "/api/v1/transactions?status=completed&offset=5000")):
                http.get(path).raise_for_status()  # warm up
                lat = []
                for _ in range(requests):
                    t0 = time.perf_counter()
                    r = http.get(path)
                    lat.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                lat.sort()
                out[name] = {"path": path, "requests": requests, "p50_ms": round(_pct(lat, 50), 2),
                             "p99_ms": round(_pct(lat, 99), 2), "max_ms": round(lat[-1], 2),
                             "items": len(r.json()["transactions"]), "total": r.json()["pagination"]["total"]}
        return out
    finally:
        server.stop()
        shutil.rmtree(sub, ignore_errors=True)


def run_startup(workdir: Path, times: int) -> dict:
    figures = []
    for _ in range(times):
        sub = Path(tempfile.mkdtemp(dir=workdir, prefix="start-"))
        server = Server("evedge", sub).start()
        figures.append(server.startup_s)
        server.stop()
        shutil.rmtree(sub, ignore_errors=True)
    return {"runs": times, "median_s": round(statistics.median(figures), 3), "max_s": round(max(figures), 3)}


def run_tap(workdir: Path, taps: int) -> dict:
    """Tap-to-RemoteStart, end to end (bench/tap.py)."""
    from bench import tap

    sub = Path(tempfile.mkdtemp(dir=workdir, prefix="tap-"))
    return tap.run(sub, taps)


def run_loadmgmt(workdir: Path, rounds: int, hours: float) -> dict:
    """Load management (bench/loadmgmt.py): reaction time with 50 chargers, a noisy simulated hour."""
    from bench import loadmgmt

    sub = Path(tempfile.mkdtemp(dir=workdir, prefix="loadmgmt-"))
    return loadmgmt.run(sub, rounds, hours)


def _pct(sorted_values: list[float], q: float) -> float:
    k = min(len(sorted_values) - 1, max(0, int(round(q / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def _fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(results: dict) -> str:
    lines = ["| scenario | target | msgs/s | p50 ms | p99 ms | max ms | server CPU % | CPU µs/msg | peak RSS MB "
             "| loadgen CPU % | bytes written/msg | fsyncs/msg | errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results["load"] + results.get("load_ocpp201", []) + results.get("site", []):
        scenario = f"{r['mode']} {r['workload']} x{r['chargers']}"
        if r.get("ocpp", "1.6") != "1.6":
            scenario = f"OCPP {r['ocpp']} {scenario}"
        if r["mode"] == "open":
            scenario += f" @{r['rate_target']:g}/s"
        if r.get("server_cpus"):
            scenario += f" (server on CPU {r['server_cpus']})"
        errs = r["errors"] + r["call_errors"]
        lines.append(f"| {scenario} | {r['target']} | {_fmt(r['msgs_per_s'], 0)} | {_fmt(r['p50_ms'], 2)} | "
                     f"{_fmt(r['p99_ms'], 2)} | {_fmt(r['max_ms'], 1)} | {_fmt(r['server_cpu_pct'])} | "
                     f"{_fmt(r.get('server_cpu_us_per_msg'), 0)} | {_fmt(r['server_peak_rss_mb'])} | {_fmt(r['loadgen_cpu_pct'])} | "
                     f"{_fmt(r.get('write_bytes_per_msg'))} | {_fmt(r.get('fsyncs_per_msg'), 2)} | {errs} |")
    out = ["\n".join(lines), ""]
    extra = ["| figure | value |", "|---|---|"]
    for r in results.get("idle", []):
        extra.append(f"| RSS with {r['connected']} idle chargers ({r['target']}) | {_fmt(r['server_rss_mb'])} MB "
                     f"(peak {_fmt(r['server_peak_rss_mb'])} MB) |")
    rest = results.get("rest")
    if rest:
        for key in ("list", "list_completed_offset_5000"):
            if key in rest:
                x = rest[key]
                extra.append(f"| REST GET {x['path']} at {rest['rows']:,} rows | p50 {x['p50_ms']} ms, "
                             f"p99 {x['p99_ms']} ms, max {x['max_ms']} ms |")
    st = results.get("startup")
    if st:
        extra.append(f"| process start to accepting connections | median {st['median_s']} s, max {st['max_s']} s "
                     f"({st['runs']} runs, empty database) |")
    if rest:
        extra.append(f"| process start to accepting connections, {rest['rows']:,} transactions | {rest['startup_s']} s |")
    tap = results.get("tap")
    if tap:
        extra.append(f"| tap-to-RemoteStart, pty byte to charger socket ({tap['taps']} taps) | p50 {tap['p50_ms']} ms, "
                     f"p99 {tap['p99_ms']} ms, max {tap['max_ms']} ms |")
    lm = results.get("loadmgmt")
    if lm:
        r, h = lm["reaction"], lm["noisy_hour"]
        extra.append(f"| load management: meter reading over the limit -> last reducing SetChargingProfile on the "
                     f"wire, {r['chargers']} chargers ({r['rounds']} rounds) | p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                     f"max {r['max_ms']} ms |")
        extra.append(f"| load management: a noisy base load, {h['chargers']} chargers on a {h['fuse_a']} A fuse "
                     f"(simulated hour) | over the fuse {h['over_fuse_s_per_hour']} s/h "
                     f"({h['over_fuse_during_motor_starts_s_per_hour']} s/h of it during 1-3 s motor starts), over "
                     f"the fuse minus the margin {h['over_fuse_minus_margin_s_per_hour']} s/h, peak {h['peak_a']} A |")
    for r in results["load"] + results.get("site", []):
        per_reading = (r.get("stored") or {}).get("db_bytes_per_reading")
        if per_reading and r["mode"] in ("closed", "open") and r["workload"] in ("meter4", "site"):
            extra.append(f"| database file per stored reading, {r['mode']} {r['workload']} x{r['chargers']}"
                         f"{' (one core)' if r.get('server_cpus') else ''} | {per_reading:,} bytes "
                         f"({r['stored']['meter_values']:,} readings) |")
    ratios = results.get("ratios")
    if ratios:
        for k, v in ratios.items():
            extra.append(f"| {k} | {v} |")
    out.append("\n".join(extra))
    return "\n".join(out)


def ratios(load: list[dict], version: str = "1.6") -> dict:
    out = {}
    by = {(r["mode"], r["workload"], r["target"]): r for r in load}
    prefix = "" if version == "1.6" else f"OCPP {version} "
    for wl in ("meter4", "meter12", "transaction", "heartbeat", "status"):
        e, s, x = (by.get(("closed", wl, t)) for t in ("evedge", STATUSQUO[version], "echo"))
        if e and s and x:
            out[f"{prefix}closed {wl}: evedge / status quo, evedge / echo"] = (
                f"{e['msgs_per_s'] / s['msgs_per_s']:.2f}x, {e['msgs_per_s'] / x['msgs_per_s']:.2f}x")
            if version != "1.6" and "rounds_msgs_per_s" in e:  # the same, round by round (a noisy machine)
                per_round = [(a / b, a / c) for a, b, c in zip(e["rounds_msgs_per_s"], s["rounds_msgs_per_s"],
                                                               x["rounds_msgs_per_s"]) if b and c]
                if per_round:
                    out[f"{prefix}closed {wl}: median over rounds of evedge / status quo, evedge / echo"] = (
                        f"{statistics.median(r[0] for r in per_round):.2f}x, "
                        f"{statistics.median(r[1] for r in per_round):.2f}x")
                cpu = [(b / a, c / a) for a, b, c in zip(e["rounds_server_cpu_us_per_msg"],
                                                         s["rounds_server_cpu_us_per_msg"],
                                                         x["rounds_server_cpu_us_per_msg"]) if a and b and c]
                if cpu:
                    out[f"{prefix}closed {wl}: server CPU per message, status quo / evedge, echo / evedge "
                        "(median over rounds)"] = (f"{statistics.median(r[0] for r in cpu):.2f}x, "
                                                   f"{statistics.median(r[1] for r in cpu):.2f}x")
        b = by.get(("closed", wl, BEFORE))
        if e and b:
            out[f"closed {wl}: evedge / {BEFORE}"] = f"{e['msgs_per_s'] / b['msgs_per_s']:.2f}x"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a ~30 s run: fewer scenarios, shorter windows")
    ap.add_argument("--duration", type=float, help="seconds per load window (default 4, quick 3)")
    ap.add_argument("--chargers", type=int, default=50, help="closed loop chargers")
    ap.add_argument("--open-chargers", type=int, default=500)
    ap.add_argument("--open-rate", type=float, default=1000.0)
    ap.add_argument("--idle-chargers", type=int, default=1000)
    ap.add_argument("--site-chargers", type=int, default=200,
                    help="site scenario: chargers, each a MeterValues every 10 s and a Heartbeat every 300 s")
    ap.add_argument("--procs", type=int, default=1, help="load generator processes")
    ap.add_argument("--rounds", type=int, help="runs per load scenario, best kept (default 2, quick 1)")
    ap.add_argument("--with-before", action="store_true",
                    help=f"also run {BEFORE} (validation through jsonschema only) on the MeterValues workloads")
    ap.add_argument("--only", default="", help="comma list of: closed,closed201,open,site,idle,rest,startup,tap,loadmgmt")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--workloads", default="", help="closed loop workloads (default: all, quick: meter4)")
    ap.add_argument("--workloads-201", default="",
                    help="OCPP 2.0.1 closed loop workloads (default: meter4,meter12,status; quick: meter4)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = ap.parse_args(argv)
    duration = args.duration or (3.0 if args.quick else 4.0)
    rounds = args.rounds or (1 if args.quick else 2)
    only = set(filter(None, args.only.split(","))) or {"closed", "closed201", "open", "site", "idle", "rest",
                                                        "startup", "tap", "loadmgmt"}
    targets = args.targets.split(",")
    workloads = args.workloads.split(",") if args.workloads else (
        ["meter4"] if args.quick else ["meter4", "meter12", "transaction", "heartbeat", "status"])
    workloads_201 = args.workloads_201.split(",") if args.workloads_201 else (
        ["meter4"] if args.quick else list(WORKLOADS_201))
    # the 2.0.1 targets: the same roles, with the 2.0.1 status quo in place of the 1.6 one
    targets_201 = [{"statusquo": "statusquo201"}.get(t, t) for t in targets if t != BEFORE]
    _raise_nofile()
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "loadavg_at_start": os.getloadavg()},
        "settings": {"duration_s": duration, "quick": args.quick, "loadgen_procs": args.procs, "rounds": rounds},
        "load": [], "load_ocpp201": [], "idle": [], "site": [],
    }
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="evedge-bench-") as tmp:
        workdir = Path(tmp)
        common = ["--duration", str(duration), "--procs", str(args.procs)]
        if "closed" in only:
            for wl in workloads:
                kinds = targets + ([BEFORE] if args.with_before and wl.startswith("meter") else [])
                for r in interleaved(rounds, kinds, workdir, "--mode", "closed", "--workload", wl,
                                     "--chargers", str(args.chargers), *common):
                    results["load"].append(r)
                    print(f"  closed {wl:11s} {r['target']:17s} {r['msgs_per_s']:9,.0f} msg/s  p99 {r['p99_ms']} ms"
                          f"  cpu {r['server_cpu_pct']}%  errors {r['errors'] + r['call_errors']} {r['first_error']}",
                          file=sys.stderr, flush=True)
        if "closed201" in only:
            for wl in workloads_201:
                for r in interleaved(rounds, targets_201, workdir, "--ocpp", "2.0.1", "--mode", "closed",
                                     "--workload", wl, "--chargers", str(args.chargers), *common):
                    results["load_ocpp201"].append(r)
                    print(f"  2.0.1 closed {wl:7s} {r['target']:17s} {r['msgs_per_s']:9,.0f} msg/s  p99 {r['p99_ms']} ms"
                          f"  cpu {r['server_cpu_pct']}%  errors {r['errors'] + r['call_errors']} {r['first_error']}",
                          file=sys.stderr, flush=True)
        if "open" in only:
            for r in interleaved(rounds, targets, workdir, "--mode", "open", "--workload", "mix", "--chargers",
                                 str(args.open_chargers), "--rate", str(args.open_rate), *common):
                results["load"].append(r)
                print(f"  open   mix x{args.open_chargers} {r['target']:9s} {r['msgs_per_s']:9,.0f} msg/s  "
                      f"p99 {r['p99_ms']} ms", file=sys.stderr, flush=True)
        if "site" in only:
            # What a Pi pays: the server pinned to one core (its store thread cannot hide on a second
            # one), at a real site's rate, and the closed loop on that one core.
            site = [t for t in targets if t in ("evedge", "echo")]
            rate = round(args.site_chargers / 10 * 31 / 30, 2)  # 30 MeterValues and 1 Heartbeat per 310 s
            for r in interleaved(rounds, site, workdir, "--mode", "open", "--workload", "site", "--chargers",
                                 str(args.site_chargers), "--rate", str(rate), "--duration", str(5 * duration),
                                 cpus="0"):
                results["site"].append(r)
                print(f"  site x{args.site_chargers} {r['target']:9s} cpu {r.get('server_cpu_us_per_msg')} us/msg "
                      f"written {r.get('write_bytes_per_msg')} B/msg fsyncs {r.get('fsyncs_per_msg')}/msg",
                      file=sys.stderr, flush=True)
            for r in interleaved(rounds, site, workdir, "--mode", "closed", "--workload", "meter4", "--chargers",
                                 str(args.chargers), *common, cpus="0"):
                results["site"].append(r)
                print(f"  closed meter4 one core {r['target']:9s} {r['msgs_per_s']:9,.0f} msg/s "
                      f"cpu {r.get('server_cpu_us_per_msg')} us/msg", file=sys.stderr, flush=True)
        if "idle" in only:
            for target in ("evedge", "statusquo"):
                if target in targets:
                    r = run_load(target, workdir, "--mode", "idle", "--chargers", str(args.idle_chargers),
                                 "--duration", "2")
                    results["idle"].append(r)
                    print(f"  idle x{r['connected']} {target}: {r['server_rss_mb']} MB", file=sys.stderr, flush=True)
        if "rest" in only:
            results["rest"] = run_rest(workdir, 100_000, 100 if args.quick else 400)
            print(f"  rest {results['rest']}", file=sys.stderr, flush=True)
        if "startup" in only:
            results["startup"] = run_startup(workdir, 2 if args.quick else 5)
            print(f"  startup {results['startup']}", file=sys.stderr, flush=True)
        if "tap" in only:
            results["tap"] = run_tap(workdir, 20 if args.quick else 100)
        if "loadmgmt" in only:
            results["loadmgmt"] = run_loadmgmt(workdir, 5 if args.quick else 30, 0.25 if args.quick else 1.0)
            print(f"  loadmgmt {results['loadmgmt']}", file=sys.stderr, flush=True)
    results["ratios"] = {**ratios(results["load"]), **ratios(results["load_ocpp201"], "2.0.1")}
    results["bench_runtime_s"] = round(time.perf_counter() - t_start, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\n(written to {out}; bench took {results['bench_runtime_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
