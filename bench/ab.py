"""A/B of two source trees on the same machine in the same minutes: is a change faster or slower?

Each round runs tree A and tree B one after the other (the order alternates every round), each as
`make bench` runs evedge (`bench.run.run_load`: `python -m controller run` on a fresh database,
driven by `bench.loadgen`), so a burst of load from elsewhere hits both alike. Printed per
workload: the median of each tree's figures and the median of the per-round ratios B / A.

    python -m bench.ab TREE_A TREE_B [--workload meter4 --workload status] [--rounds 8]
                       [--chargers 50] [--duration 4] [--mode closed] [--ocpp 2.0.1] [--rate 20.67] [--cpus 0]

A tree is a checkout (`git worktree add /tmp/base COMMIT`); both are run with this checkout's venv.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import bench.run as br


def ab(trees: list[Path], workload: str, rounds: int, *args: str, cpus: str = "") -> dict:
    runs: dict[Path, list[dict]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            for tree in trees if i % 2 == 0 else trees[::-1]:
                br.ROOT, os.environ["PYTHONPATH"] = tree, str(tree)  # the server runs from, and imports, this tree
                runs[tree].append(br.run_load("evedge", Path(tmp), "--workload", workload, *args, cpus=cpus))
    a, b = runs[trees[0]], runs[trees[1]]

    def median(rs: list[dict], key: str) -> float:
        return round(statistics.median(r[key] for r in rs), 1)

    def ratio(key: str) -> float:
        return round(statistics.median(y[key] / x[key] for x, y in zip(a, b)), 3)

    keys = ["msgs_per_s", "server_cpu_us_per_msg"] + [
        k for k in ("p99_ms", "write_bytes_per_msg", "fsyncs_per_msg") if a[0].get(k) and b[0].get(k)]
    return {"workload": workload, "rounds": rounds,
            **{f"A {k}": median(a, k) for k in keys}, **{f"B {k}": median(b, k) for k in keys},
            **{f"B/A {k}": ratio(k) for k in keys}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree_a", type=Path)
    ap.add_argument("tree_b", type=Path)
    ap.add_argument("--workload", action="append")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--chargers", default="50")
    ap.add_argument("--duration", default="4")
    ap.add_argument("--mode", default="closed")
    ap.add_argument("--rate", help="open loop: aggregate messages/s")
    ap.add_argument("--cpus", default="", help="taskset CPU list for the server, e.g. 0 (one core)")
    ap.add_argument("--ocpp", default="1.6", choices=("1.6", "2.0.1"), help="the simulated chargers' OCPP version")
    args = ap.parse_args(argv)
    trees = [args.tree_a.resolve(), args.tree_b.resolve()]
    for workload in args.workload or ["meter4"]:
        version = ["--ocpp", args.ocpp] if args.ocpp != "1.6" else []
        rate = ["--rate", args.rate] if args.rate else []
        result = ab(trees, workload, args.rounds, "--mode", args.mode, "--chargers", args.chargers,
                    "--duration", args.duration, *version, *rate, cpus=args.cpus)
        print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
