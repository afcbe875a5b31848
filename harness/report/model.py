"""Results files in, one view model out: what every page and every export reads.

Several results files can make one report (one run per target, or runs on several machines). Each
file stores its trace paths relative to its own folder, so paths are made absolute per file *before*
merging; after that nothing needs to know where a record came from. Later files win per
(case, target) pair, so re-running one target and passing its file last replaces only that column.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.outcome import Outcome
from harness.results import load
from harness.text import printable

OUTCOMES: list[str] = [str(o) for o in Outcome]
BAD = frozenset({"FAIL", "ERROR"})
# One stable colour and a short cell label per outcome; the legend, the CSS and the tests read these.
COLOURS: dict[str, str] = {
    "PASS": "#8fd18f",
    "NON-STRICT": "#d6e88a",
    "INFORMATIONAL": "#9cc3ea",
    "UNIMPLEMENTED": "#d7d7d7",
    "FAIL": "#ec7d7d",
    "ERROR": "#c38ae6",
}
LABELS: dict[str, str] = {
    "PASS": "pass",
    "NON-STRICT": "n-s",
    "INFORMATIONAL": "info",
    "UNIMPLEMENTED": "unimpl",
    "FAIL": "FAIL",
    "ERROR": "ERROR",
}
RUN_KEYS = (
    "started", "finished", "harness_version", "command", "machine",
    "complete", "stopped_by", "selected", "recorded", "wall_seconds",
)  # fmt: skip
TIP_CHARS = 160  # a cell's tooltip; the full reason is on the detail page


def absolutize(doc: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of ``doc`` whose trace paths no longer depend on the results file's folder."""
    results = []
    for r in doc["results"]:
        trace = r.get("trace_file")
        if trace and not Path(trace).is_absolute():
            r = {**r, "trace_file": str((base / trace).resolve())}
        results.append(r)
    return {**doc, "results": results}


def runs_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Run metadata of a document: its own, or the list a merge kept."""
    runs: list[dict[str, Any]] | None = doc.get("runs")
    return runs if runs else [{k: doc.get(k) for k in RUN_KEYS}]


def partial_runs(runs: Sequence[dict[str, Any]]) -> list[str]:
    """A sentence per run that did not finish: the report's banner (a document written before schema
    2 carries no ``complete`` and counts as complete)."""
    out = []
    for run in runs:
        if run.get("complete") is not False:
            continue
        recorded, selected = run.get("recorded"), run.get("selected")
        of = f"{recorded} of {selected}" if selected is not None else f"{recorded}"
        why = run.get("stopped_by") or "stopped early"
        out.append(f"The run started {run.get('started') or '?'} is partial: {of} selected results ({why}).")
    return out


def merge(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several results documents as one: later documents win per (case, target) pair."""
    if len(docs) == 1:
        return {**docs[0], "runs": runs_of(docs[0])}
    targets: dict[str, Any] = {}
    results: dict[tuple[str, str], Any] = {}
    runs: list[dict[str, Any]] = []
    for doc in docs:
        runs.extend(runs_of(doc))
        for t in doc["targets"]:
            targets[t["name"]] = t
        for r in doc["results"]:
            results[(r["case"], r["target"])] = r
    merged = dict(docs[-1])
    merged.update(
        targets=list(targets.values()),
        results=list(results.values()),
        started=min((d["started"] or "" for d in docs), default=""),
        finished=max((d["finished"] or "" for d in docs), default=""),
        runs=runs,
    )
    return merged


def load_many(paths: Iterable[Path]) -> dict[str, Any]:
    """Load and merge results files (``.json`` or an interrupted run's ``.jsonl``)."""
    return merge([absolutize(load(p), p.resolve().parent) for p in paths])


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(name: str) -> str:
    """A file name for an id; a short hash keeps two ids apart when sanitising made them equal."""
    cleaned = _UNSAFE.sub("_", name).lstrip(".") or "_"
    if cleaned == name:
        return name
    return f"{cleaned[:80]}-{zlib.crc32(name.encode()):08x}"


def page_of(case: str, target: str) -> str:
    """Path of a detail page, relative to the report folder."""
    return f"cases/{safe_name(target)}/{safe_name(case)}.html"


@dataclass
class Target:
    name: str
    implementation: str
    language: str
    version: str
    role: str
    counts: Counter[str] = field(default_factory=Counter)
    per_family: dict[str, Counter[str]] = field(default_factory=dict)
    first: float | None = None  # seconds from the run's start: when its first case began
    last: float | None = None  # and when its last case ended (results carry ``t`` since schema 2)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def heading_role(self) -> str:
        """The role shown under the column heading: a library's server and client columns must not
        look the same (both are "websockets 17.4" otherwise)."""
        return self.role or ("client" if self.name.endswith("@client") else "server")

    @property
    def wall_seconds(self) -> float | None:
        """Wall time from the target's first case to its last: with parallel workers this is what the
        run took for it, where a sum of case durations would count overlapping cases twice."""
        if self.first is None or self.last is None:
            return None
        return max(0.0, self.last - self.first)

    def saw(self, record: dict[str, Any]) -> None:
        t = record.get("t")
        if t is None:
            return
        end = float(t)
        start = end - float(record.get("duration_ms") or 0) / 1000
        self.first = start if self.first is None else min(self.first, start)
        self.last = end if self.last is None else max(self.last, end)


@dataclass
class Cell:
    record: dict[str, Any]
    page: str

    @property
    def outcome(self) -> str:
        return str(self.record["outcome"])

    @property
    def label(self) -> str:
        return LABELS.get(self.outcome, self.outcome)

    @property
    def tip(self) -> str:
        reason = printable(self.record.get("reason") or "")
        return reason if len(reason) <= TIP_CHARS else reason[: TIP_CHARS - 1] + "…"


@dataclass
class Row:
    case: str
    title: str
    autobahn: str | None
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def bad(self) -> bool:
        return any(c.outcome in BAD for c in self.cells.values())


@dataclass
class Family:
    name: str
    rows: dict[str, Row] = field(default_factory=dict)
    counts: dict[str, Counter[str]] = field(default_factory=dict)

    @property
    def bad_rows(self) -> int:
        return sum(1 for r in self.rows.values() if r.bad)


@dataclass
class Report:
    doc: dict[str, Any]
    runs: list[dict[str, Any]]
    targets: list[Target]
    families: list[Family]
    cells: list[tuple[Target, Cell]]


def build(doc: dict[str, Any]) -> Report:
    """Group results into targets × families × cases; counts computed once here."""
    targets: dict[str, Target] = {}
    for t in doc["targets"]:
        targets[t["name"]] = Target(
            name=t["name"],
            implementation=str(t.get("implementation") or t["name"]),
            language=str(t.get("language") or ""),
            version=str(t.get("version") or ""),
            role=str(t.get("role") or ""),
        )
    families: dict[str, Family] = {}
    cells: list[tuple[Target, Cell]] = []
    for r in doc["results"]:
        name = r["target"]
        target = targets.get(name)
        if target is None:  # a record whose target line was lost (interrupted run)
            target = targets[name] = Target(name, name, "", "", "")
        fam_name = str(r.get("family") or "")
        fam = families.setdefault(fam_name, Family(fam_name))
        row = fam.rows.setdefault(r["case"], Row(r["case"], str(r.get("title") or ""), r.get("autobahn")))
        cell = Cell(r, page_of(r["case"], name))
        row.cells[name] = cell
        cells.append((target, cell))
        target.counts[cell.outcome] += 1
        target.per_family.setdefault(fam_name, Counter())[cell.outcome] += 1
        fam.counts.setdefault(name, Counter())[cell.outcome] += 1
        target.saw(r)
    return Report(doc, runs_of(doc), list(targets.values()), list(families.values()), cells)
