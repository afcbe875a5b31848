"""The versioned results file, written so that an interrupted run loses nothing that finished.

Each record is appended to ``results.jsonl`` and flushed the moment its case completes; ``results.json``
(schema ``wsconform.results/1``) is assembled from those lines at the end, or by ``assemble`` after a
crash. Readers accept either file.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness

SCHEMA = "wsconform.results/1"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def machine() -> dict[str, str]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpus": str(os.cpu_count()),
    }


class ResultsWriter:
    def __init__(self, path: Path, *, command: str = "") -> None:
        self.path = path
        self.lines_path = path.with_suffix(".jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.started = now_iso()
        self.targets: dict[str, dict[str, Any]] = {}
        self.command = command
        self._fh = self.lines_path.open("w", encoding="utf-8")
        self._write(
            {
                "type": "run",
                "started": self.started,
                "command": command,
                "harness_version": harness.__version__,
                "machine": machine(),
            }
        )

    def _write(self, obj: dict[str, Any]) -> None:
        self._fh.write(json.dumps(obj, default=str) + "\n")
        self._fh.flush()

    def add_target(self, info: dict[str, Any]) -> None:
        if info["name"] not in self.targets:
            self.targets[info["name"]] = info
            self._write({"type": "target", **info})

    def add(self, record: dict[str, Any]) -> None:
        """Append one result; its trace path is stored relative to the results file's folder."""
        trace = record.get("trace_file")
        if trace:
            with contextlib.suppress(ValueError):
                record = {**record, "trace_file": os.path.relpath(trace, self.path.parent)}
        self._write({"type": "result", **record})

    def close(self) -> dict[str, Any]:
        self._fh.close()
        return assemble(self.lines_path, self.path)


def assemble(lines_path: Path, out_path: Path | None = None) -> dict[str, Any]:
    """Build results.json from a (possibly truncated) results.jsonl."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "started": None,
        "finished": now_iso(),
        "harness_version": None,
        "command": "",
        "machine": {},
        "targets": [],
        "results": [],
    }
    with lines_path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            kind = obj.pop("type", None)
            if kind == "run":
                doc.update(
                    started=obj["started"],
                    command=obj.get("command", ""),
                    harness_version=obj.get("harness_version"),
                    machine=obj.get("machine", {}),
                )
            elif kind == "target":
                doc["targets"].append(obj)
            elif kind == "result":
                doc["results"].append(obj)
    if out_path is not None:
        tmp = out_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        tmp.replace(out_path)
    return doc


def load(path: Path) -> dict[str, Any]:
    """Read results.json, or assemble from results.jsonl if that is all an interrupted run left."""
    if path.suffix == ".jsonl":
        return assemble(path)
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a {SCHEMA} file (schema {doc.get('schema')!r})")
    return doc
