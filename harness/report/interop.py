"""The interop matrix (``wsconform.interop/1``) as HTML, Markdown and per-pair pages.

Servers are rows, clients columns, one letter per scenario in each cell (quic-interop-runner's page),
coloured by outcome; the scenario's description is the letter's tooltip; each letter links to its pair
page (both sides' frames and findings with rule and side, both logs). Everything a target controls
(reasons, log lines, close reasons in the trace) goes through Jinja2's autoescape and ``printable``.
Works on the JSON document alone, so a results file from another machine renders the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.report.render import _env
from harness.text import printable

LETTER_CLASS = {"PASS": "ok", "FAIL": "fail", "ERROR": "error", "UNIMPLEMENTED": "unsup"}
MD_MARK = {"PASS": "", "FAIL": "✗", "ERROR": "!", "UNIMPLEMENTED": "-"}


def pair_file(client: str, server: str, scenario: str) -> str:
    """The pair page's file name; target and scenario names are [a-z0-9-] (target.yaml, scenario ids)."""
    return f"pairs/{server}--{client}--{scenario}.html"


def _cells(doc: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    order = {s["id"]: i for i, s in enumerate(doc["scenarios"])}
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in doc["results"]:
        cells.setdefault((r["server"], r["client"]), []).append(r)
    for rs in cells.values():
        rs.sort(key=lambda r: order.get(r["scenario"], 999))
    return cells


def summary(doc: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in doc["results"]:
        out[r["outcome"]] = out.get(r["outcome"], 0) + 1
    return out


def render_matrix(doc: dict[str, Any], out_dir: Path, pairs: Iterable[dict[str, Any]] = ()) -> Path:
    """``interop.html`` (+ the pair pages given, + the shared stylesheet) into ``out_dir``."""
    env = _env()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "pairs").mkdir(exist_ok=True)
    css = Path(__file__).with_name("templates") / "report.css"
    (out_dir / "report.css").write_text(css.read_text(encoding="utf-8"), encoding="utf-8")
    scenarios = {s["id"]: s for s in doc["scenarios"]}
    page = env.get_template("interop.html").render(
        doc=doc, cells=_cells(doc), scenarios=scenarios, cls=LETTER_CLASS, pair_file=pair_file,
        summary=summary(doc), up="",
    )  # fmt: skip
    index = out_dir / "interop.html"
    index.write_text(page, encoding="utf-8")
    pair_template = env.get_template("interop_pair.html")
    for detail in pairs:
        r = detail["record"]
        target = out_dir / pair_file(r["client"], r["server"], r["scenario"])
        target.write_text(
            pair_template.render(d=detail, r=r, scenario=scenarios.get(r["scenario"], {}), up="../"),
            encoding="utf-8",
        )
    return index


def _md(text: str) -> str:
    return printable(text).replace("|", "\\|").replace("\n", " ")


def markdown(doc: dict[str, Any]) -> str:
    """The matrix for a README or a PR comment: one row per server, one column per client; each cell
    lists the letters, a failed one marked ✗, an unsupported one -; then the failures with rule and side."""
    cells = _cells(doc)
    clients, servers = doc["clients"], doc["servers"]
    lines = ["| server \\ client | " + " | ".join(clients) + " |", "|---|" + "---|" * len(clients)]
    for server in servers:
        row = []
        for client in clients:
            rs = cells.get((server, client), [])
            fails = [f"{r_letter(doc, r)}{MD_MARK[r['outcome']]}" for r in rs if r["outcome"] != "PASS"]
            passed = sum(1 for r in rs if r["outcome"] == "PASS")
            row.append(f"{passed}/{len(rs)} " + " ".join(fails) if rs else "")
        lines.append(f"| **{server}** | " + " | ".join(row) + " |")
    legend = ", ".join(f"{s['letter']} {s['id']}" for s in doc["scenarios"])
    lines += [
        "",
        f"Cells: scenarios passed / run, then each other letter: ✗ FAIL, - UNIMPLEMENTED, ! ERROR. {legend}.",
    ]
    failures = [r for r in doc["results"] if r["outcome"] in ("FAIL", "ERROR")]
    if failures:
        lines += [
            "",
            "| client → server | scenario | side at fault | rule | reason |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(failures, key=lambda r: (r["server"], r["client"], r["scenario"])):
            lines.append(
                f"| {r['client']} → {r['server']} | {r['scenario']} | {r['side'] or ''} | {r['rule'] or ''} | "  # noqa: E501
                f"{_md(r['reason'])[:300]} |"
            )
    return "\n".join(lines) + "\n"


def r_letter(doc: dict[str, Any], record: dict[str, Any]) -> str:
    for s in doc["scenarios"]:
        if s["id"] == record["scenario"]:
            return str(s["letter"])
    return "?"
