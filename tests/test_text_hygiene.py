"""Target-controlled text in every output: nothing breaks (rich MarkupError), nothing raw gets through.

Two sources of hostile text: a real server (tests/hostile_server.py) whose subprotocol, header and
close reason are made of rich markup, terminal escapes, NUL and HTML, and results whose reasons are
that text verbatim (a reason is free text; an engine that quoted with repr() today may not tomorrow).
Every output is swept: the terminal (piped, and with -v, which used to kill worker threads),
results.json, JUnit, Markdown and every HTML page.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import scheduler
from harness.cli import main
from harness.engine import CaseResult
from harness.outcome import Outcome
from harness.text import printable
from tests.hostile_server import HOSTILE

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "hostile_server.py"
RAW = ("\x1b", "\x00")


def sweep(out_dir: Path) -> list[str]:
    """Every file of a run's output folder that holds a raw ESC or NUL, or unescaped HTML."""
    bad = []
    for path in out_dir.rglob("*"):
        if not path.is_file() or path.suffix not in (".json", ".jsonl", ".xml", ".md", ".html"):
            continue
        text = path.read_text(encoding="utf-8")
        if any(c in text for c in RAW):
            bad.append(f"{path}: raw control character")
        if path.suffix == ".html" and "<script>alert(1)" in text:
            bad.append(f"{path}: unescaped <script>")
    return bad


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("a\x1b[31mb\x00c\x9bd\u202ee\tf\ng") == "a\\x1b[31mb\\x00c\\x9bd\\u202ee\tf\ng"
    assert printable("[/] <b> §5.5 ü") == "[/] <b> §5.5 ü"


def _run(tmp_path: Path, *extra: str) -> tuple[int, Path]:
    out = tmp_path / "out"
    code = main(
        [
            "run", "--target-cmd", f"{sys.executable} {SERVER} --port {{port}}",
            "-k", "text-len-125", "-k", "close-code-1000", "-j", "1", "-v",
            "--results", str(out / "results.json"), "--junitxml", str(out / "junit.xml"),
            "--markdown", str(out / "summary.md"), *extra,
        ]
    )  # fmt: skip
    return code, out


def test_hostile_server_every_output_is_safe(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(tmp_path)
    stdout, stderr = capsys.readouterr()
    assert code == 1, stdout  # the two FAIL, not a crash (a MarkupError made it exit 1 too, with no report)
    assert "MarkupError" not in stderr and "Traceback" not in stderr
    assert not any(c in stdout for c in RAW)
    assert "[/] [bold]x[/bold]" in stdout  # shown as text, not interpreted
    for name in ("results.json", "index.html", "junit.xml", "summary.md"):
        assert (out / name).is_file(), name
    assert sweep(out) == []
    ET.parse(out / "junit.xml")
    # the header and the close reason reached the detail pages, escaped
    pages = "".join(p.read_text() for p in (out / "cases").rglob("*.html"))
    assert "\\x1b[31mred" in pages and "&lt;script&gt;" in pages


def test_hostile_reasons_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reason that is the raw text: -v prints it from a worker thread, the summary lists it, every
    file carries it; before the fix -v's MarkupError killed the worker and the run went silent."""

    def fake_run_case(case, session, **kwargs):  # type: ignore[no-untyped-def]
        outcome = Outcome.FAIL if case.id.endswith("125") else Outcome.PASS
        return CaseResult(case, session.name, outcome, f"reason {HOSTILE}", 1.0)

    monkeypatch.setattr(scheduler, "run_case", fake_run_case)
    code, out = _run(tmp_path, "-k", "text-len-126", "-k", "text-len-127")
    stdout, stderr = capsys.readouterr()
    assert code == 1 and "Traceback" not in stderr
    assert not any(c in stdout for c in RAW)
    assert "reason [/] [bold]x[/bold] \\x1b[31mred\\x1b[0m \\x00nul" in stdout
    doc = json.loads((out / "results.json").read_text())
    assert doc["complete"] is True and doc["selected"] == len(doc["results"]) >= 4  # no worker died
    assert sweep(out) == []
    xml = (out / "junit.xml").read_text()
    assert "\\x1b[31mred" in xml and "\\x00nul" in xml
    index = (out / "index.html").read_text()
    assert 'title="reason [/] [bold]x[/bold] \\x1b[31mred' in index  # the tooltip, escaped
