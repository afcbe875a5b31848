"""Chart geometry for inline SVG: Python computes rectangles, lines and labels; a template macro draws.

No JavaScript chart library and no markup built in Python: a chart is a list of primitives with
numeric coordinates and plain-text labels, and ``templates/_chart.html`` renders them with autoescape
on (case ids and target names end up in labels and tooltips).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# Tableau 10: distinguishable categorical colours, one per target (cycled beyond ten).
PALETTE = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
]  # fmt: skip
LABEL_CHARS = 42


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str
    tip: str = ""


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = "#ddd"


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    tip: str = ""
    size: int = 11


@dataclass(frozen=True)
class Path:
    points: str
    stroke: str
    tip: str = ""


@dataclass
class Chart:
    title: str
    width: float
    height: float
    rects: list[Rect] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) from 0 to at least ``top``."""
    if top <= 0 or not math.isfinite(top):
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 5, 10) if s * mag >= raw)
    n = math.ceil(top / step - 1e-9)
    return [i * step for i in range(n + 1)]


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


def grouped_bars(
    title: str,
    categories: Sequence[str],
    series: Sequence[str],
    values: dict[tuple[str, str], float],
    *,
    colours: dict[str, str],
    unit: str = "ms",
) -> Chart:
    """Horizontal grouped bars: one group per category, one bar per series; missing values skipped."""
    label_w, plot_w, right, top_m = 270.0, 520.0, 70.0, 26.0
    bar_h, group_gap = 9.0, 8.0
    group_h = bar_h * len(series) + group_gap
    height = top_m + group_h * len(categories) + 8
    ticks = nice_ticks(max(values.values(), default=0.0))
    scale = plot_w / ticks[-1]
    chart = Chart(title, label_w + plot_w + right, height)
    for tick in ticks:
        x = label_w + tick * scale
        chart.lines.append(Line(x, top_m - 4, x, height - 4))
        chart.texts.append(Text(x, top_m - 8, fmt(tick), "middle", size=10))
    chart.texts.append(Text(label_w - 12, top_m - 8, unit, "end", size=10))
    for gi, cat in enumerate(categories):
        y0 = top_m + gi * group_h
        chart.texts.append(Text(label_w - 6, y0 + (group_h - group_gap) / 2 + 4, _short(cat), "end", tip=cat))
        for si, name in enumerate(series):
            v = values.get((cat, name))
            if v is None:
                continue
            y = y0 + si * bar_h
            tip = f"{cat} · {name}: {fmt(v)} {unit}"
            chart.rects.append(Rect(label_w, y, max(v * scale, 0.5), bar_h - 1, colours[name], tip))
            chart.texts.append(Text(label_w + v * scale + 3, y + bar_h - 2, fmt(v), size=8))
    chart.legend = [(colours[name], name) for name in series]
    return chart


def line_panels(
    title: str,
    xs: Sequence[float],
    panels: Sequence[tuple[str, Sequence[float]]],
    *,
    stroke: str,
    x_unit: str = "s",
) -> Chart:
    """Stacked line panels sharing one x axis (e.g. RSS above bytes in flight, both over time)."""
    left, plot_w, right, panel_h, gap, top_m = 64.0, 360.0, 16.0, 80.0, 26.0, 8.0
    height = top_m + len(panels) * (panel_h + gap) + 14
    chart = Chart(title, left + plot_w + right, height)
    x_ticks = nice_ticks(max(xs, default=0.0), 4)
    x_scale = plot_w / x_ticks[-1]
    for pi, (name, ys) in enumerate(panels):
        y0 = top_m + pi * (panel_h + gap) + 14
        chart.texts.append(Text(left, y0 - 5, name, size=10))
        y_ticks = nice_ticks(max(ys, default=0.0), 3)
        y_scale = panel_h / y_ticks[-1]
        for tick in y_ticks:
            y = y0 + panel_h - tick * y_scale
            chart.lines.append(Line(left, y, left + plot_w, y))
            chart.texts.append(Text(left - 4, y + 3, fmt(tick), "end", size=9))
        for tick in x_ticks:
            x = left + tick * x_scale
            chart.lines.append(Line(x, y0, x, y0 + panel_h, "#eee"))
            chart.texts.append(Text(x, y0 + panel_h + 11, fmt(tick), "middle", size=9))
        points = " ".join(
            f"{left + x * x_scale:.1f},{y0 + panel_h - y * y_scale:.1f}" for x, y in zip(xs, ys, strict=False)
        )
        chart.paths.append(Path(points, stroke, f"{title}: {name}"))
    chart.texts.append(Text(left + plot_w, height - 2, x_unit, "end", size=9))
    return chart
