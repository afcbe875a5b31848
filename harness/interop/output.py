"""What a matrix run writes: the ``wsconform.interop/1`` JSON (streamed as JSON lines while it runs),
one JSON detail per pair (both sides' trace, findings, events, logs), and the pages and Markdown of
``harness.report.interop``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.interop.pairs import PairRun
from harness.text import printable

MAX_EVENTS_SHOWN = 200


def pair_detail(run: PairRun, record: dict[str, Any]) -> dict[str, Any]:
    pair = run.pair
    ch, sh = pair.client.head, pair.server.head
    return {
        "record": record,
        "exit_code": run.exit_code,
        "connections": pair.connections,
        "bytes": {"client": pair.client.octets, "server": pair.server.octets},
        "findings": [{"side": f.side, "rule": f.rule, "detail": f.detail, "t": f.t} for f in pair.findings],
        "request": ch.raw.decode("latin-1") if ch is not None else "(no request)",
        "response": sh.raw.decode("latin-1") if sh is not None else "(no response)",
        "trace": [{"t": e.t, "side": e.side, "kind": e.kind, "text": e.text} for e in pair.trace],
        "trace_elided": pair.trace.elided,
        "events": [json.dumps(e, ensure_ascii=False)[:500] for e in run.events[:MAX_EVENTS_SHOWN]],
        "client_log": printable(run.client_log),
        "server_log": printable(run.server_log),
    }


class Writer:
    """Streams records to ``interop.jsonl`` and keeps the pair details for the pages."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.lines = (out_dir / "interop.jsonl").open("w", encoding="utf-8")
        self.details: list[dict[str, Any]] = []

    def add(self, run: PairRun, record: dict[str, Any]) -> None:
        self.lines.write(json.dumps(record) + "\n")
        self.lines.flush()
        self.details.append(pair_detail(run, record))

    def close(self) -> None:
        self.lines.close()
