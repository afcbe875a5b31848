"""Benchmark: render a report of 10 targets × 700 cases (7000 detail pages) from synthetic results.

    python bench/report_render.py [--targets 10] [--cases 700] [--keep DIR]

Writes a results file and one small trace file per result (handshake, ~10 frames, a log line, the case
source) into a temporary folder, then times ``harness.report.render.render`` and reports the size of
index.html. Budget: under 10 s and index.html under 5 MB; the exit status is 1 when either is missed.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from harness.report.model import load_many
from harness.report.render import render
from harness.results import SCHEMA

FAMILIES = ["framing", "ping-pong", "reserved-bits", "opcodes", "fragmentation", "utf8", "close", "limits"]
WEIGHTS = {"PASS": 80, "NON-STRICT": 6, "INFORMATIONAL": 5, "UNIMPLEMENTED": 3, "FAIL": 5, "ERROR": 1}
BUDGET_S = 10.0
BUDGET_INDEX = 5 * 1024 * 1024


def trace_events(rng: random.Random) -> list[dict[str, object]]:
    events: list[dict[str, object]] = [
        {"dir": "out", "type": "handshake-request", "length": 154, "t": 0.001},
        {"dir": "in", "type": "handshake-response", "status": 101, "t": 0.002},
    ]
    t = 0.002
    for _ in range(rng.randint(2, 4)):
        t += 0.0003
        payload = "Hello, world!"
        for direction in ("out", "in"):
            events.append(
                {
                    "dir": direction, "type": "frame", "opcode": 1, "name": "text", "fin": True, "rsv": 0,
                    "masked": direction == "out", "length": len(payload), "text": payload,
                    "hex": payload.encode().hex(), "t": t,
                }
            )  # fmt: skip
    events.append({"dir": "in", "type": "frame", "opcode": 8, "name": "close", "fin": True, "rsv": 0,
                   "masked": False, "length": 2, "hex": "03e8", "t": t + 0.001})  # fmt: skip
    events.append({"dir": "tcp", "type": "closed-by-target", "buffered": 0, "t": t + 0.002})
    return events


def synthesize(folder: Path, n_targets: int, n_cases: int, seed: int = 1) -> Path:
    """Write results.json and one trace file per (case, target) under ``folder``."""
    rng = random.Random(seed)
    outcomes, weights = list(WEIGHTS), list(WEIGHTS.values())
    targets = [
        {"name": f"impl{i:02d}", "implementation": f"implementation-{i:02d}", "language": "python",
         "version": f"{i}.{i * 3}.0", "role": "server"}
        for i in range(n_targets)
    ]  # fmt: skip
    cases = []
    for i in range(n_cases):
        fam = FAMILIES[i * len(FAMILIES) // n_cases]
        tags = [fam] + (["performance"] if fam == "limits" and i % 3 == 0 else [])
        cases.append((f"{fam}-case-{i:04d}", fam, tags, f"{i // 100 + 1}.{i % 100 + 1}" if i % 2 else None))
    results = []
    for t in targets:
        tdir = folder / "traces" / t["name"]
        tdir.mkdir(parents=True)
        for case_id, fam, tags, ab in cases:
            outcome = rng.choices(outcomes, weights)[0]
            record = {
                "case": case_id, "family": fam, "file": f"{fam}/cases.yaml",
                "title": f"Synthetic case {case_id} exercising {fam}", "target": t["name"],
                "outcome": outcome,
                "reason": f"{rng.randint(0, 3)} message(s), 0 pong(s), clean close (1000); outcome {outcome}",
                "duration_ms": round(rng.uniform(1, 400), 3), "autobahn": ab,
                "spec": "RFC 6455 §5.2 (base framing); §7.4.1", "tags": tags, "expected": None,
                "trace_file": f"traces/{t['name']}/{case_id}.json",
            }  # fmt: skip
            trace = {
                "handshake": {
                    "request": "GET / HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nUpgrade: websocket\r\n\r\n",
                    "response": "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
                },
                "events": trace_events(rng),
            }
            source = f"  - id: {case_id}\n    title: synthetic\n    steps: []\n    expect:\n      echo: 1\n"
            payload = {**record, "trace": trace, "log": "INFO access GET / 101\n", "source": source}
            (folder / str(record["trace_file"])).write_text(json.dumps(payload), encoding="utf-8")
            results.append(record)
    doc = {
        "schema": SCHEMA, "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T01:00:00+00:00",
        "harness_version": "bench", "command": "bench/report_render.py",
        "machine": {"hostname": "bench", "platform": sys.platform, "python": sys.version.split()[0]},
        "targets": targets, "results": results,
    }  # fmt: skip
    path = folder / "results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--cases", type=int, default=700)
    parser.add_argument("--keep", type=Path, help="render here and keep the report")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wsconform-bench-"))
    try:
        t0 = time.perf_counter()
        results = synthesize(tmp / "run", args.targets, args.cases)
        t1 = time.perf_counter()
        out = args.keep or tmp / "report"
        start = time.perf_counter()
        index = render(load_many([results]), out)
        elapsed = time.perf_counter() - start
        size = index.stat().st_size
        pages = sum(1 for _ in (out / "cases").rglob("*.html"))
        print(f"synthesized {args.targets} targets × {args.cases} cases in {t1 - t0:.1f} s")
        what = f"load + {pages} detail pages + index + performance"
        print(f"render ({what}): {elapsed:.2f} s (budget {BUDGET_S:.0f} s)")
        print(f"index.html: {size / 1024 / 1024:.2f} MiB ({size} bytes; budget 5 MiB)")
        print(f"performance.html: {(out / 'performance.html').stat().st_size / 1024:.0f} KiB")
        ok = elapsed < BUDGET_S and size < BUDGET_INDEX
        print("within budget" if ok else "OVER BUDGET")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
