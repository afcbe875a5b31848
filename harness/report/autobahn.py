"""An Autobahn|Testsuite-shaped ``index.json``, so tools and habits built around Autobahn reports can
read our results: ``{agent: {case_id: {behavior, behaviorClose, remoteCloseCode, duration, reportfile}}}``.

Only results equivalent to an Autobahn case (those with an ``autobahn`` id) appear. Our verdict already
judges the closing handshake as part of the expectation, so ``behaviorClose`` carries the same value as
``behavior``; ``remoteCloseCode`` is the code of the first close frame the target sent (null if none);
``reportfile`` is the detail page, relative to the folder holding index.json, as Autobahn does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from harness.report.detail import read_trace, remote_close_code
from harness.report.model import page_of

BEHAVIOR = {
    "PASS": "OK",
    "NON-STRICT": "NON-STRICT",
    "INFORMATIONAL": "INFORMATIONAL",
    "UNIMPLEMENTED": "UNIMPLEMENTED",
    "FAIL": "FAILED",
    "ERROR": "FAILED",
}


def _case_key(ab: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in ab.split("."))
    except ValueError:
        return (1 << 30,)


def index(doc: dict[str, Any], report_dir: Path, index_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Build the mapping; ``doc`` trace paths must be absolute (``model.absolutize``)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in sorted(doc["results"], key=lambda r: (r["target"], _case_key(str(r.get("autobahn") or "")))):
        ab = r.get("autobahn")
        if not ab:
            continue
        behavior = BEHAVIOR.get(r["outcome"], "FAILED")
        page = report_dir / page_of(r["case"], r["target"])
        out.setdefault(r["target"], {})[str(ab)] = {
            "behavior": behavior,
            "behaviorClose": behavior,
            "remoteCloseCode": remote_close_code(read_trace(r.get("trace_file"))),
            "duration": round(float(r.get("duration_ms") or 0)),
            "reportfile": Path(os.path.relpath(page, index_dir)).as_posix(),
        }
    return out


def write_index(doc: dict[str, Any], path: Path, report_dir: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = index(doc, report_dir.resolve(), path.resolve().parent)
    path.write_text(json.dumps(data, indent=2, sort_keys=False), encoding="utf-8")
    return path
