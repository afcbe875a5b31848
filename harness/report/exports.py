"""The non-HTML outputs behind ``--junitxml``, ``--markdown`` and ``--autobahn-index``, in one call so
that ``wsconform run`` and ``wsconform report`` write them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.report.autobahn import write_index
from harness.report.diff import Diff
from harness.report.junit import write_junit
from harness.report.markdown import write_markdown
from harness.report.model import absolutize


def write_exports(
    doc: dict[str, Any],
    *,
    base: Path,
    report_dir: Path,
    junitxml: Path | None = None,
    markdown: Path | None = None,
    autobahn_index: Path | None = None,
    strict: bool = False,
    diff: Diff | None = None,
) -> list[Path]:
    """Write the requested files; ``base`` resolves relative trace paths, ``report_dir`` is where the
    detail pages that index.json points to are (or would be)."""
    doc = absolutize(doc, base)
    written = []
    if junitxml is not None:
        written.append(write_junit(doc, junitxml, strict=strict))
    if markdown is not None:
        written.append(write_markdown(doc, markdown, diff))
    if autobahn_index is not None:
        written.append(write_index(doc, autobahn_index, report_dir))
    return written
