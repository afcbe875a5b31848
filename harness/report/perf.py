"""The performance page's data: durations of ``performance`` cases, and memory/backpressure samples.

Durations are grouped by case file (``limits/chopped.yaml``, ``limits/round-trips.yaml`` …): cases in
one file vary one knob, so they share a scale, while files differ by orders of magnitude and would
flatten each other on one axis. Samples (``[{t, rss, bytes_in_flight}]``) come from the result
record or its trace file, whichever carries them; a chart per (case, target).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.report.charts import Chart, colour, grouped_bars, line_panels
from harness.report.model import Report

TAG = "performance"
MIB = 1024 * 1024


@dataclass
class SampleChart:
    case: str
    target: str
    page: str
    chart: Chart


def target_colours(report: Report) -> dict[str, str]:
    return {t.name: colour(i) for i, t in enumerate(report.targets)}


def duration_charts(report: Report) -> list[Chart]:
    colours = target_colours(report)
    by_file: dict[str, dict[tuple[str, str], float]] = {}
    cases: dict[str, list[str]] = {}
    for target, cell in report.cells:
        r = cell.record
        if TAG not in (r.get("tags") or []):
            continue
        key = str(r.get("file") or r.get("family") or "")
        by_file.setdefault(key, {})[(r["case"], target.name)] = float(r.get("duration_ms") or 0)
        names = cases.setdefault(key, [])
        if r["case"] not in names:
            names.append(r["case"])
    charts = []
    for key, values in by_file.items():
        present = [t.name for t in report.targets if any(name == t.name for _, name in values)]
        charts.append(grouped_bars(key, cases[key], present, values, colours=colours))
    return charts


FIGURES = (  # (figure key, chart title, unit, scale from the stored value)
    ("response_s", "response time", "ms", 1000.0),
    ("peak_rss_growth", "RSS growth", "MiB", 1.0 / MIB),
)


def figure_charts(report: Report) -> list[Chart]:
    """Per case file, the figures a case measured (response time, RSS growth), one bar per target.

    The robustness family records the time to the first response byte and the memory a flood of
    fragments cost; like the durations, one scale per file and figure.
    """
    colours = target_colours(report)
    out = []
    for key, title, unit, scale in FIGURES:
        by_file: dict[str, dict[tuple[str, str], float]] = {}
        cases: dict[str, list[str]] = {}
        for target, cell in report.cells:
            r = cell.record
            value = (r.get("figures") or {}).get(key)
            if not isinstance(value, int | float):
                continue
            where = str(r.get("file") or r.get("family") or "")
            by_file.setdefault(where, {})[(r["case"], target.name)] = float(value) * scale
            names = cases.setdefault(where, [])
            if r["case"] not in names:
                names.append(r["case"])
        for where, values in by_file.items():
            present = [t.name for t in report.targets if any(name == t.name for _, name in values)]
            name = f"{where}: {title}"
            out.append(grouped_bars(name, cases[where], present, values, colours=colours, unit=unit))
    return out


def samples_of(record: dict[str, Any], trace_doc: dict[str, Any]) -> list[dict[str, Any]]:
    for holder in (record, trace_doc, trace_doc.get("trace") or {}):
        found = holder.get("samples")
        if isinstance(found, list) and found:
            return [s for s in found if isinstance(s, dict) and "t" in s]
    return []


def sample_charts(report: Report, samples: Callable[[str, str], list[dict[str, Any]]]) -> list[SampleChart]:
    """One two-panel line chart (RSS, bytes in flight) per (case, target) that has samples."""
    colours = target_colours(report)
    out = []
    for target, cell in report.cells:
        found = samples(cell.record["case"], target.name)
        if not found:
            continue
        xs = [float(s["t"]) for s in found]
        panels = [
            ("RSS (MiB)", [float(s.get("rss") or 0) / MIB for s in found]),
            ("bytes in flight (KiB)", [float(s.get("bytes_in_flight") or 0) / 1024 for s in found]),
        ]
        chart = line_panels(f"{cell.record['case']} · {target.name}", xs, panels, stroke=colours[target.name])
        out.append(SampleChart(cell.record["case"], target.name, cell.page, chart))
    return out
