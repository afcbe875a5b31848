"""The versioned results file, written so that an interrupted run loses nothing that finished.

Each record is appended to ``results.jsonl`` and flushed the moment its case completes; ``results.json``
(schema ``wsconform.results/2``) is assembled from those lines at the end, or by ``assemble`` after a
crash. Readers accept either file, and version 1 files.

Version 2 says whether the run finished: ``complete`` (false for a run that was interrupted, stopped
early or killed), ``selected`` (the (case, target) pairs the run set out to do, when known) and
``recorded`` (the results it holds), and each result carries ``t``, the seconds from the start of the
run to its end, so reports can show wall time instead of a sum of case durations. ``complete`` comes
from an ``end`` line that only a run that got to its end writes: a file assembled after SIGKILL has
none, hence ``complete: false``. A new run on the same path first removes the previous results.json,
so a stale file can never be read as this run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import harness

SCHEMA = "wsconform.results/2"
READABLE = ("wsconform.results/1", SCHEMA)


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
    def __init__(self, path: Path, *, command: str = "", selected: int | None = None) -> None:
        self.path = path
        self.lines_path = path.with_suffix(".jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)  # the previous run's: it must not pass for this run's results
        self.started = now_iso()
        self._t0 = time.monotonic()
        self.recorded = 0
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
        if selected is not None:
            self.set_selected(selected)

    def set_selected(self, selected: int) -> None:
        """How many (case, target) pairs the run is to record; a shorter file is partial."""
        self._write({"type": "selection", "selected": selected})

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
        record = {**record, "t": round(time.monotonic() - self._t0, 3)}
        self._write({"type": "result", **record})
        self.recorded += 1

    def close(self, *, complete: bool = True, stopped_by: str | None = None) -> dict[str, Any]:
        """End the file: ``complete`` false (or ``stopped_by``, e.g. "interrupted") marks it partial."""
        if not self._fh.closed:
            self._write(
                {
                    "type": "end",
                    "complete": complete and stopped_by is None,
                    "stopped_by": stopped_by,
                    "wall_seconds": round(time.monotonic() - self._t0, 3),
                }
            )
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
        "complete": False,  # until an end line says otherwise
        "stopped_by": None,
        "selected": None,
        "recorded": 0,
        "wall_seconds": None,
        "targets": [],
        "results": [],
    }
    ended = False
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
            elif kind == "selection":
                doc["selected"] = obj.get("selected")
            elif kind == "end":
                ended = True
                doc.update(
                    complete=bool(obj.get("complete")),
                    stopped_by=obj.get("stopped_by"),
                    wall_seconds=obj.get("wall_seconds"),
                )
    doc["recorded"] = len(doc["results"])
    if not ended:
        doc["stopped_by"] = "the run did not finish (killed, or still running)"
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
    if doc.get("schema") not in READABLE:
        raise ValueError(f"{path}: not a {' or '.join(READABLE)} file (schema {doc.get('schema')!r})")
    return upgrade(doc)


def upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A version 1 document in the version 2 shape: it did not record whether it was complete, and
    before the ``end`` line existed only finished runs wrote results.json, so it counts as complete."""
    if doc.get("schema") == SCHEMA:
        return doc
    results = doc.get("results") or []
    return {
        **doc,
        "schema": SCHEMA,
        "complete": True,
        "stopped_by": None,
        "selected": None,
        "recorded": len(results),
        "wall_seconds": None,
    }
