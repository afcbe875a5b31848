"""Render results (one or several files) into a static HTML report.

Autoescaping is on for every template: close reasons, headers, payload previews and log lines are
controlled by the target, and a report is a page people open in their browser.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from harness.verdict import Outcome

OUTCOMES = [str(o) for o in Outcome]


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("harness.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several results files as one: targets and results concatenated, later files win per pair."""
    if len(docs) == 1:
        return docs[0]
    merged = dict(docs[0])
    targets: dict[str, Any] = {}
    results: dict[tuple[str, str], Any] = {}
    for doc in docs:
        for t in doc["targets"]:
            targets[t["name"]] = t
        for r in doc["results"]:
            results[(r["case"], r["target"])] = r
    merged["targets"] = list(targets.values())
    merged["results"] = list(results.values())
    merged["started"] = min(d["started"] or "" for d in docs)
    merged["finished"] = max(d["finished"] or "" for d in docs)
    return merged


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def render(doc: dict[str, Any], out_dir: Path, base: Path | None = None) -> Path:
    """Write index.html and one page per result; ``base`` is where relative trace paths start."""
    env = _env()
    out_dir.mkdir(parents=True, exist_ok=True)
    seconds: Counter[str] = Counter()
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    by_family: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    case_tpl = env.get_template("case.html")
    for r in doc["results"]:
        page = f"cases/{_safe(r['target'])}/{_safe(r['case'])}.html"
        r = {**r, "page": page}
        counts[r["target"]][r["outcome"]] += 1
        seconds[r["target"]] += r.get("duration_ms", 0) / 1000
        row = by_family[r.get("family", "")].setdefault(
            r["case"],
            {
                "case": r["case"],
                "title": r.get("title", ""),
                "autobahn": r.get("autobahn"),
                "cells": {},
                "bad": False,
            },
        )
        row["cells"][r["target"]] = r
        row["bad"] = row["bad"] or r["outcome"] in ("FAIL", "ERROR")
        detail = _detail(r, base or Path.cwd())
        path = out_dir / page
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(case_tpl.render(r=r, detail=detail, up="../../"), encoding="utf-8")
    targets = []
    for t in doc["targets"]:
        targets.append({**t, "counts": counts[t["name"]], "seconds": seconds[t["name"]]})
    families = []
    for name in sorted(by_family):
        rows = list(by_family[name].values())
        fam_counts = {
            t["name"]: Counter(
                row["cells"][t["name"]]["outcome"] for row in rows if t["name"] in row["cells"]
            )
            for t in targets
        }
        families.append({"name": name, "cases": rows, "counts": fam_counts})
    index = out_dir / "index.html"
    index.write_text(
        env.get_template("index.html").render(doc=doc, targets=targets, families=families, outcomes=OUTCOMES),
        encoding="utf-8",
    )
    return index


def _detail(record: dict[str, Any], base: Path) -> dict[str, Any]:
    path = record.get("trace_file")
    if not path:
        return {}
    try:
        data: dict[str, Any] = json.loads((base / path).read_text(encoding="utf-8"))
        return data
    except (OSError, json.JSONDecodeError):
        return {}
