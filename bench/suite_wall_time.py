"""Benchmark: wall time of the whole server suite against one target, per family.

    python bench/suite_wall_time.py [--target websockets] [--repeat 3]

Runs ``wsconform run`` in-process (the same engine the pytest plugin uses), once per repetition, and
prints the wall time per family and in total (median over repetitions). The figure for the README is
the total; the Autobahn|Testsuite figure beside it comes from ``scripts/autobahn-oracle`` on the same
machine and the same cases (categories 1-7, 9, 10).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]


def one_run(
    target: str, families: list[str], autobahn: bool, jobs: int | None
) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        argv = [
            "--cases",
            str(ROOT / "cases"),
            "--targets-dir",
            str(ROOT / "targets"),
            "run",
            "--target",
            target,
            "--results",
            str(results),
            "--no-report",
            "-q",
        ]
        for fam in families:
            argv += ["--family", fam]
        if autobahn:
            argv.append("--autobahn")
        if jobs is not None:
            argv += ["--jobs", str(jobs)]
        start = time.perf_counter()
        main(argv)
        total = time.perf_counter() - start
        per_family: dict[str, float] = defaultdict(float)
        for r in json.loads(results.read_text())["results"]:
            per_family[r["family"]] += r["duration_ms"] / 1000
    return total, dict(per_family)


def main_bench() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", default="websockets")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--family", action="append", default=[])
    ap.add_argument("--autobahn", action="store_true", help="only the 301 Autobahn-equivalent cases")
    ap.add_argument("--jobs", type=int, help="wsconform run --jobs (default: its own default, the CPU count)")
    args = ap.parse_args()
    totals: list[float] = []
    families: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.repeat):
        total, per_family = one_run(args.target, args.family, args.autobahn, args.jobs)
        totals.append(total)
        for fam, secs in per_family.items():
            families[fam].append(secs)
    print(f"target {args.target}, {args.repeat} run(s), jobs {args.jobs or 'default'}")
    for fam in sorted(families):
        print(f"  {fam:<16} {statistics.median(families[fam]):7.2f} s")
    median = statistics.median(totals)
    print(f"  {'total wall time':<16} {median:7.2f} s (min {min(totals):.2f}, max {max(totals):.2f})")


if __name__ == "__main__":
    main_bench()
