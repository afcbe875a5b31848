"""Render results (one or several files, merged beforehand) into a static HTML report.

Autoescaping is on for every template: close reasons, headers, payload previews and log lines are
controlled by the target, and a report is a page people open in their browser. The report is a folder
of plain files (index, performance page, one page per result, a stylesheet) that works from
``file://``: no server, no CDN, one small inline script for the index filters.

Each trace file is read once, while its detail page is written; what other pages need from it (memory
samples) is kept from that pass.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from harness.report.detail import detail, read_trace
from harness.report.diff import compare
from harness.report.model import COLOURS, LABELS, OUTCOMES, absolutize, build, merge, partial_runs
from harness.report.perf import duration_charts, figure_charts, sample_charts, samples_of
from harness.text import printable

__all__ = ["OUTCOMES", "mark_in_progress", "merge", "render"]


def _finalize(value: Any) -> Any:
    """Every ``{{ ... }}`` passes here before autoescaping: control characters (ESC, NUL...) become
    visible escapes, which autoescape does not do, in text and in attributes (title tooltips) alike.
    Markup (already safe HTML built by our own code) is left alone."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value)
    return value


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates are package data: no stat() per page
    )


def mark_in_progress(out_dir: Path, results_path: Path) -> Path:
    """At the start of a run: replace the previous report's index with a page saying a run is writing
    new results. Were the old index left, a run killed with SIGKILL would leave a report that
    disagrees with its results files; this page tells the reader how to render what was finished."""
    out_dir.mkdir(parents=True, exist_ok=True)
    index = out_dir / "index.html"
    index.write_text(
        _env().get_template("in_progress.html").render(
            lines=results_path.with_suffix(".jsonl"), out_dir=out_dir, up=""
        ),
        encoding="utf-8",
    )
    return index


def render(
    doc: dict[str, Any],
    out_dir: Path,
    base: Path | None = None,
    *,
    baseline: dict[str, Any] | None = None,
) -> Path:
    """Write the report into ``out_dir`` and return the index path.

    ``base`` is the folder relative trace paths start from (the results file's folder); documents from
    ``model.load_many`` carry absolute paths already. ``baseline`` adds the comparison section.
    """
    env = _env()
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = absolutize(doc, base or Path.cwd())
    if "runs" not in doc:
        doc = merge([doc])
    report = build(doc)
    diff = compare(baseline, doc) if baseline is not None else None
    previous = {(r["case"], r["target"]): r["outcome"] for r in baseline["results"]} if baseline else {}

    css = env.get_template("report.css").render(colours=COLOURS)
    (out_dir / "report.css").write_text(css, encoding="utf-8")
    case_tpl = env.get_template("case.html")
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    made: set[Path] = set()
    for target, cell in report.cells:
        r = cell.record
        trace_doc = read_trace(r.get("trace_file"))
        found = samples_of(r, trace_doc)
        if found:
            samples[(r["case"], target.name)] = found
        html = case_tpl.render(
            r=r,
            d=detail(r, trace_doc),
            target=target,
            previous=previous.get((r["case"], target.name)),
            up="../../",
        )
        path = out_dir / cell.page
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_text(html, encoding="utf-8")

    (out_dir / "performance.html").write_text(
        env.get_template("performance.html").render(
            durations=duration_charts(report),
            figures=figure_charts(report),
            samples=sample_charts(report, lambda case, target: samples.get((case, target), [])),
            up="",
        ),
        encoding="utf-8",
    )
    index = out_dir / "index.html"
    index.write_text(
        env.get_template("index.html").render(
            runs=report.runs,
            partial=partial_runs(report.runs),
            targets=report.targets,
            families=report.families,
            outcomes=OUTCOMES,
            labels=LABELS,
            diff=diff,
            limit=500,
            up="",
        ),
        encoding="utf-8",
    )
    return index
