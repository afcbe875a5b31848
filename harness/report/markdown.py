"""A Markdown summary for a README or a pull-request comment: targets × outcome counts, then a table
of families × targets, then the baseline changes when there is a baseline.

Markdown renderers accept inline HTML, and target metadata ends up in cells, so cell text has ``|``,
``<``, ``>``, ``&``, backticks and newlines neutralised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report.diff import Diff
from harness.report.model import BAD, OUTCOMES, Report, build


def cell(value: object) -> str:
    text = " ".join(str(value).split())
    for raw, safe in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("|", "\\|"), ("`", "\\`")):
        text = text.replace(raw, safe)
    return text


def _row(values: list[str]) -> str:
    return "| " + " | ".join(values) + " |"


def summary(report: Report, diff: Diff | None = None) -> str:
    lines = ["## wsconform results", ""]
    runs = report.runs
    if runs:
        first = runs[0]
        version, started = cell(first.get("harness_version") or "?"), cell(first.get("started") or "")
        lines += [f"harness {version} · {started}", ""]
    lines.append(_row(["target", "implementation", "version", *OUTCOMES, "total"]))
    lines.append(_row(["---"] * 3 + ["---:"] * (len(OUTCOMES) + 1)))
    for t in report.targets:
        counts = [str(t.counts.get(o, 0)) for o in OUTCOMES]
        impl = cell(f"{t.implementation} ({t.language})")
        lines.append(_row([cell(t.name), impl, cell(t.version), *counts, str(t.total)]))
    lines += ["", "### Per family", "", "pass / total; FAIL and ERROR counted when present", ""]
    lines.append(_row(["family", *[cell(t.name) for t in report.targets]]))
    lines.append(_row(["---"] + ["---:"] * len(report.targets)))
    for fam in report.families:
        cells = []
        for t in report.targets:
            c = fam.counts.get(t.name)
            if not c:
                cells.append("—")
                continue
            text = f"{c.get('PASS', 0)} / {sum(c.values())}"
            bad = [f"{c[o]} {o}" for o in OUTCOMES if o in BAD and c.get(o)]
            cells.append(text + (" · " + ", ".join(bad) if bad else ""))
        lines.append(_row([cell(fam.name or "(none)"), *cells]))
    if diff is not None:
        lines += ["", "### Compared with the baseline", ""]
        lines.append(
            f"{len(diff.regressions)} regression(s), {len(diff.fixes)} fix(es), "
            f"{len(diff.new)} new case result(s)"
        )
        for _, heading, changes in diff.sections[:2]:
            if changes:
                lines += ["", f"**{heading}**", ""]
                lines += [
                    f"- {cell(c.target)} `{c.case.replace('`', '')}`: {c.old} → {c.new}" for c in changes[:50]
                ]
                if len(changes) > 50:
                    lines.append(f"- … and {len(changes) - 50} more")
    return "\n".join(lines) + "\n"


def write_markdown(doc: dict[str, Any], path: Path, diff: Diff | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(summary(build(doc), diff), encoding="utf-8")
    return path
