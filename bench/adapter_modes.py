"""Benchmark: the cost of a client-role case in per-case mode and in persistent mode (adapter-protocol §1).

    python bench/adapter_modes.py [--target websockets ...] [--rounds 3] [--runner process]

Plays the same client-role cases (echoes, server closes, a rejected handshake: cases that end in
milliseconds, so the figure is the adapter's start, not the case) through the harness's own peer and
verdict, first with one client process per case (the target's launcher, as ``wsconform run`` does
today), then through one persistent adapter process (tests/persistent_driver.py, the protocol of
docs/adapter-protocol.md §1), and prints milliseconds per case (median over rounds) and the outcomes,
which must be the same in both modes.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.engine import play  # noqa: E402
from harness.model.loader import Case, load_all  # noqa: E402
from harness.targets.session import session_for  # noqa: E402
from harness.targets.spec import load_targets  # noqa: E402
from tests.test_adapters_contract import persistent_adapter  # noqa: E402

CASES = [
    "client-echo-text-0",
    "client-echo-text-125",
    "client-echo-binary-126",
    "client-echo-binary-65536",
    "client-echo-fragmented-text",
    "client-answers-ping",
    "client-reports-server-close-1000",
    "client-reports-server-close-4999",
    "client-reports-close-without-code",
    "client-rejects-wrong-accept",
    "client-rejects-status-400",
    "client-accepts-offered-subprotocol",
]
DEFAULT_TARGETS = ["websockets", "aiohttp", "wsproto", "tornado", "websocket-client", "node-ws"]
TIMEOUT = 10.0


async def per_case(cases: list[Case], launch: object, whatwg: bool) -> tuple[float, list[str]]:
    started = time.perf_counter()
    outcomes = []
    for case in cases:
        played = await play(
            case, launch, data_dir=ROOT / "cases" / "data", timeout=TIMEOUT, whatwg_api=whatwg
        )  # type: ignore[arg-type]
        outcomes.append(str(played.verdict.outcome))
    return (time.perf_counter() - started) / len(cases), outcomes


async def persistent(
    cases: list[Case], spec: object, runner: str, whatwg: bool, log: object
) -> tuple[float, list[str]]:
    adapter = persistent_adapter(spec, runner, log)  # type: ignore[arg-type]
    started = time.perf_counter()
    await adapter.start()  # the one start is part of the cost
    try:
        _, outcomes = await per_case(cases, adapter.launch, whatwg)
    finally:
        await adapter.close()
    total = time.perf_counter() - started
    return total / len(cases), outcomes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--target", action="append", help=f"repeatable; default {' '.join(DEFAULT_TARGETS)}")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runner", default="process", choices=["process", "docker"])
    args = ap.parse_args()
    specs = load_targets(ROOT / "targets")
    loaded, errors = load_all(ROOT / "cases")
    assert not errors, errors
    by_id = {c.id: c for c in loaded}
    cases = [by_id[i] for i in CASES]
    print(f"{len(cases)} client-role cases, {args.rounds} rounds, runner {args.runner}; ms per case (median)")
    print(f"{'target':18} {'per-case':>9} {'persistent':>11} {'saved':>7}  outcomes")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.target or DEFAULT_TARGETS:
            spec = specs[name]
            whatwg = spec.policies.whatwg_api
            session = session_for(spec, "client", log_dir=Path(tmp), runner=args.runner)  # type: ignore[arg-type]
            session.ensure_running()
            one, many = [], []
            same = True
            with (Path(tmp) / f"{name}.persistent.log").open("wb") as log:
                for _ in range(args.rounds):
                    a, first = asyncio.run(per_case(cases, session.runner.launch, whatwg))
                    b, second = asyncio.run(persistent(cases, spec, args.runner, whatwg, log))
                    one.append(a)
                    many.append(b)
                    same = same and first == second
            session.stop()
            a, b = statistics.median(one) * 1000, statistics.median(many) * 1000
            print(f"{name:18} {a:9.0f} {b:11.0f} {a - b:7.0f}  {'identical' if same else 'DIFFERENT'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
