"""``wsconform interop``: every available client x server x scenario through the relay, in parallel.

Writes ``OUT/interop.json`` (``wsconform.interop/1``), ``OUT/interop.jsonl`` (streamed),
``OUT/interop.html`` with one page per pair under ``OUT/pairs/``, and ``OUT/interop.md``. Exit 1 on an
unexpected result (a FAIL or ERROR not in ``interop-expected.yaml``, or an entry that no longer
matches), 2 on a usage error, 0 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness import bundled
from harness.interop import expected as known
from harness.interop.matrix import Matrix, open_sessions, run_matrix
from harness.interop.output import Writer
from harness.interop.pairs import PairRun
from harness.model.interop import load_all
from harness.report.interop import markdown, render_matrix
from harness.targets.spec import load_targets
from harness.text import printable


def add_parser(sub: Any) -> None:
    p = sub.add_parser("interop", help="run every client target against every server target (interop matrix)")
    p.add_argument(
        "--client", action="append", default=[], metavar="NAME", help="only this client (repeatable)"
    )
    p.add_argument(
        "--server", action="append", default=[], metavar="NAME", help="only this server (repeatable)"
    )
    p.add_argument(
        "--scenario", action="append", default=[], metavar="ID", help="only this scenario (repeatable)"
    )
    p.add_argument("--ci", action="store_true", help="only the scenarios marked ci: true")
    p.add_argument("-j", "--jobs", type=int, default=4, help="pairs run at the same time (default 4)")
    p.add_argument("--targets", type=Path, default=None, help="targets folder (default: the bundled one)")
    p.add_argument("--scenarios", type=Path, default=None, help="scenario folder (default: cases/interop)")
    p.add_argument(
        "--expected", type=Path, default=None,
        help="known pair failures (default: interop-expected.yaml in the targets folder)",
    )
    p.add_argument("-o", "--out", type=Path, default=Path("reports/interop"), help="output folder")
    p.set_defaults(func=cmd_interop)


def _pick(names: list[str], wanted: list[str], what: str) -> list[str]:
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise SystemExit(f"wsconform interop: unknown {what} {unknown}; known: {names}")
    return [n for n in names if not wanted or n in wanted]


def cmd_interop(args: argparse.Namespace) -> int:
    targets_dir = args.targets or bundled.targets_dir()
    specs = load_targets(targets_dir)
    scenarios = load_all(args.scenarios or bundled.cases_dir() / "interop")
    ids = [s.id for s in scenarios]
    chosen = set(_pick(ids, args.scenario, "scenario"))
    scenarios = [s for s in scenarios if s.id in chosen and (s.ci or not args.ci)]
    client_names = _pick(sorted(n for n, s in specs.items() if "client" in s.roles), args.client, "client")
    server_names = _pick(sorted(n for n, s in specs.items() if "server" in s.roles), args.server, "server")
    expected_path = args.expected or known.default_path(targets_dir)
    expected = known.load(expected_path)
    out: Path = args.out
    logs = out / "logs"
    skipped: dict[str, str] = {}
    clients = open_sessions([specs[n] for n in client_names], "client", logs, skipped)
    servers = open_sessions([specs[n] for n in server_names], "server", logs, skipped)
    matrix = Matrix(scenarios, list(clients), list(servers), skipped)
    writer = Writer(out)
    total = len(scenarios) * len(clients) * len(servers)
    done = 0

    def on_run(run: PairRun, record: dict[str, Any]) -> None:
        nonlocal done
        done += 1
        flag = " UNEXPECTED" if record["unexpected"] else ""
        side = f" [{record['side']}]" if record["side"] and record["outcome"] != "PASS" else ""
        print(
            f"[{done}/{total}] {run.client} -> {run.server} {run.scenario.id}: {record['outcome']}{side}{flag}"  # noqa: E501
            + (f" {printable(record['reason'])[:160]}" if record["outcome"] in ("FAIL", "ERROR") else ""),
            flush=True,
        )
        writer.add(run, record)

    for name, why in sorted(skipped.items()):
        print(f"not run here: {name}: {why}", flush=True)
    start = time.monotonic()
    try:
        matrix.records = asyncio.run(
            run_matrix(scenarios, clients, servers, jobs=args.jobs, expected=expected, on_run=on_run)
        )
        matrix.complete = True
    except KeyboardInterrupt:
        matrix.records = [
            json.loads(line) for line in (out / "interop.jsonl").read_text().splitlines() if line
        ]
    finally:
        matrix.wall_time = time.monotonic() - start
        writer.close()
        for session in [*servers.values(), *clients.values()]:
            session.stop()
    doc = matrix.to_json()
    (out / "interop.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (out / "interop.md").write_text(markdown(doc), encoding="utf-8")
    page = render_matrix(doc, out, writer.details)
    bad = matrix.unexpected
    print(f"{len(matrix.records)} runs in {matrix.wall_time:.1f} s; {len(bad)} unexpected; matrix: {page}")
    for r in bad:
        print(f"UNEXPECTED {r['client']} -> {r['server']} {r['scenario']}: {r['outcome']} "
              f"{r['side'] or ''} {r['rule'] or ''}: {printable(r['reason'])[:200]} {r['note']}", file=sys.stderr)  # fmt: skip  # noqa: E501
    return 1 if bad or not matrix.complete else 0
