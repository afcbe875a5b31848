"""The report: page structure, escaping of target-controlled text, baseline diff, exports, merging.

Results are synthetic (three targets, every outcome, trace files with a hostile close reason, header,
payload preview, log line and client API event) so each assertion can name the exact value expected.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.report.diff import compare
from harness.report.model import page_of
from harness.results import SCHEMA
from tests.conftest import BROKEN

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

TARGETS = [
    {"name": "alpha", "implementation": "alpha-ws", "language": "python", "version": "1.0", "role": "server"},
    {"name": "beta", "implementation": "beta-ws", "language": "rust", "version": "2.3", "role": "server"},
    {"name": "gamma", "implementation": "gamma-ws", "language": "go", "version": "0.9", "role": "server"},
]
# (case, family, autobahn id, tags, spec, outcome per target in TARGETS order)
CASES: list[tuple[str, str, str | None, list[str], str, list[str]]] = [
    ("text-echo", "framing", "1.1.1", ["framing"], "RFC 6455 §5.6", ["PASS", "PASS", "FAIL"]),
    ("rsv-bit", "reserved-bits", "3.1", ["rsv"], "RFC 6455 §5.2", ["PASS", "NON-STRICT", "ERROR"]),
    (
        "close-code",
        "close",
        "7.7.1",
        ["close"],
        "RFC 6455 §7.4.1 (1000); RFC 7692 §7.2.1",
        ["INFORMATIONAL", "PASS", "PASS"],
    ),
    ("deflate-offer", "close", None, ["extensions"], "RFC 7692 §5", ["UNIMPLEMENTED", "PASS", "PASS"]),
    ("big-message", "limits", None, ["performance"], "RFC 6455 §10.4", ["PASS", "PASS", "PASS"]),
    ("many-pings", "limits", None, ["performance"], "RFC 6455 §5.5.2", ["PASS", "FAIL", "PASS"]),
]
LISTED = {("many-pings", "beta")}  # a deviation listed in expected.yaml (xfail)
SOURCE = """  - id: {case}
    title: synthetic {case}
    spec: RFC 6455 §5.6
    steps:
      - send: {{opcode: text, payload: hi}}
    expect:
      echo: 1
      close: [1000]
"""


def trace_payload(record: dict[str, Any], marker: str) -> dict[str, Any]:
    """A trace file with hostile text everywhere the target controls it."""
    close = (1000).to_bytes(2, "big") + EVIL.encode()
    events: list[dict[str, Any]] = [
        {"dir": "out", "type": "handshake-request", "length": 120, "t": 0.001},
        {"dir": "in", "type": "handshake-response", "status": 101, "t": 0.002},
        {"dir": "out", "type": "frame", "opcode": 1, "name": "text", "fin": True, "rsv": 0, "masked": True,
         "length": 2, "text": "hi", "hex": "6869", "t": 0.003},
        {"dir": "in", "type": "frame", "opcode": 1, "name": "text", "fin": True, "rsv": 4, "masked": False,
         "length": len(EVIL), "text": EVIL, "hex": EVIL.encode().hex(), "t": 0.004,
         "violations": ["rsv1 set without extension"]},
    ]  # fmt: skip
    if record["outcome"] != "ERROR":  # the ERROR result never got a close frame
        events.append({"dir": "in", "type": "frame", "opcode": 8, "name": "close", "fin": True, "rsv": 0,
                       "masked": False, "length": len(close), "hex": close.hex(), "t": 0.005})  # fmt: skip
    trace: dict[str, Any] = {
        "handshake": {
            "request": f"GET / HTTP/1.1\r\nHost: {marker}\r\nUpgrade: websocket\r\n\r\n",
            "response": f"HTTP/1.1 101 Switching Protocols\r\nX-Evil: {EVIL}\r\n\r\n",
        },
        "events": events,
    }
    if record["target"] == "beta":
        trace["api"] = [{"t": 0.006, "event": "close", "code": 1000, "reason": EVIL, "wasClean": True}]
    return {
        **record,
        "trace": trace,
        "log": f"INFO target saw {EVIL}\n",
        "source": SOURCE.format(case=record["case"]),
    }


def write_run(
    folder: Path,
    *,
    targets: list[dict[str, Any]] | None = None,
    cases: list[tuple[str, str, str | None, list[str], str, list[str]]] | None = None,
    marker: str = "run-a",
    overrides: dict[tuple[str, str], str] | None = None,
) -> Path:
    """A results.json and its trace files (paths relative to ``folder``), as a real run writes them."""
    targets = TARGETS if targets is None else targets
    cases = CASES if cases is None else cases
    results = []
    for ti, t in enumerate(targets):
        for case, family, ab, tags, spec, outcomes in cases:
            outcome = (overrides or {}).get((case, t["name"]), outcomes[ti % len(outcomes)])
            record: dict[str, Any] = {
                "case": case, "family": family, "file": f"{family}/x.yaml", "title": f"title of {case}",
                "target": t["name"], "outcome": outcome,
                "reason": f"{outcome} for {case}: close reason {EVIL}",
                "duration_ms": 10.0 + 5 * ti + len(case), "autobahn": ab, "spec": spec, "tags": tags,
                "expected": {"outcome": "FAIL", "reason": "known"} if (case, t["name"]) in LISTED else None,
                "trace_file": f"traces/{t['name']}/{case}.json",
            }  # fmt: skip
            if case == "big-message" and ti == 0:
                record["samples"] = [
                    {"t": i * 0.1, "rss": (40 + i) * 1024 * 1024, "bytes_in_flight": i * 4096}
                    for i in range(20)
                ]
            path = folder / record["trace_file"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(trace_payload(record, marker)), encoding="utf-8")
            results.append(record)
    doc = {
        "schema": SCHEMA,
        "started": "2026-01-02T03:04:05+00:00",
        "finished": "2026-01-02T03:05:00+00:00",
        "harness_version": "0.1.0",
        "command": f"wsconform run --marker {marker}",
        "machine": {"hostname": f"host-{marker}", "platform": "Linux", "python": "3.11.7", "cpus": "2"},
        "targets": targets,
        "results": results,
    }
    out = folder / "results.json"
    out.write_text(json.dumps(doc), encoding="utf-8")
    return out


class Tables(HTMLParser):
    """Rows of cell texts per table (keyed by the table's class), enough to read the summary tables."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[tuple[str, list[list[str]]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append((dict(attrs).get("class") or "", []))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1][1]:
            self.tables[-1][1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str, cls: str) -> list[list[list[str]]]:
    parser = Tables()
    parser.feed(html)
    return [rows for c, rows in parser.tables if c == cls]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run")


@pytest.fixture
def report(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "report"
    assert main(["report", str(run), "-o", str(out)]) == 0
    return out


def all_results(run: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = json.loads(run.read_text())["results"]
    return results


def test_index_matrix_has_one_linked_cell_per_result(run: Path, report: Path) -> None:
    index = (report / "index.html").read_text()
    results = all_results(run)
    cells = re.findall(
        r'<td class="o ([A-Z-]+)( x)?" title="[^"]*"><a href="([^"]+)">([^<]+)</a></td>', index
    )
    assert Counter(c[0] for c in cells) == Counter(r["outcome"] for r in results)
    assert len(cells) == len(results) == 18
    for _, _, href, _ in cells:
        assert (report / href).is_file(), href
    # the one listed deviation is marked, and its link goes to its own page
    marked = [c for c in cells if c[1]]
    assert [(c[0], c[2]) for c in marked] == [("FAIL", page_of("many-pings", "beta"))]
    # families are collapsible sections, each with a totals row
    assert re.findall(r'<details open class="family" data-family="([^"]+)"', index) == [
        "framing", "reserved-bits", "close", "limits"
    ]  # fmt: skip
    assert index.count('<tr class="tot">') == 4
    # columns are headed with implementation, language and version
    for t in TARGETS:
        header = (
            f'<th class="tgt" title="{t["name"]}">{t["implementation"]}<small>{t["language"]} {t["version"]}'
        )
        assert header in index
    # a stable legend: every outcome once, in order
    legend = re.findall(r'<span class="lg ([A-Z-]+)">', index)
    assert legend == ["PASS", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAIL", "ERROR"]
    # run metadata
    assert (
        "wsconform run --marker run-a" in index and "host-run-a" in index and "2026-01-02T03:04:05" in index
    )
    # filters and the performance page link
    assert 'id="only-bad"' in index and '<select id="family">' in index and 'href="performance.html"' in index


def test_summary_tables_count_outcomes_per_target_and_family(report: Path) -> None:
    index = (report / "index.html").read_text()
    summary, per_family = tables(index, "sum")
    head = summary[0]
    rows = {row[0]: dict(zip(head, row, strict=True)) for row in summary[1:]}
    assert rows["gamma"]["FAIL"] == "1" and rows["gamma"]["ERROR"] == "1" and rows["gamma"]["PASS"] == "4"
    assert rows["beta"]["NON-STRICT"] == "1" and rows["beta"]["FAIL"] == "1"
    assert rows["alpha"]["UNIMPLEMENTED"] == "1" and rows["alpha"]["INFORMATIONAL"] == "1"
    assert all(r["total"] == "6" for r in rows.values())
    # per target, then its families
    names = [row[0] for row in per_family[1:]]
    assert names[:5] == ["alpha", "framing", "reserved-bits", "close", "limits"]
    gamma_limits = per_family[1:][names.index("gamma") + 4]
    assert gamma_limits[0] == "limits" and gamma_limits[-1] == "2"


def test_detail_page_shows_citation_expectation_trace_handshake_log_and_api(report: Path) -> None:
    page = (report / page_of("close-code", "beta")).read_text()
    assert "<title>close-code · beta</title>" in page
    assert '<a href="https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1">§7.4.1</a>' in page
    assert '<a href="https://www.rfc-editor.org/rfc/rfc7692#section-7.2.1">§7.2.1</a>' in page
    assert '<pre class="expect">expect:\n  echo: 1\n  close: [1000]</pre>' in page
    assert "Host: run-a" in page  # handshake request
    trace = tables(page, "trace")[0]
    assert trace[0][:4] == ["t (ms)", "dir", "event", "opcode"]
    assert [row[2] for row in trace[1:]] == [
        "handshake-request",
        "handshake-response",
        "text",
        "text",
        "close",
    ]
    received = trace[4]
    assert received[1] == "← in" and received[5] == "100"  # rsv bits
    assert "rsv1 set without extension" in received[-1]
    assert '<tr class="in violation">' in page
    assert "code 1000" in trace[5][-1]
    assert "Client API events" in page and "wasClean=true" in page
    assert '<pre class="log">INFO target saw' in page


def test_every_page_escapes_target_controlled_text(run: Path, report: Path) -> None:
    pages = list(report.rglob("*.html"))
    assert len(pages) == 18 + 2  # detail pages, index, performance
    for path in pages:
        assert EVIL not in path.read_text(), path
    for r in all_results(run):
        html = (report / page_of(r["case"], r["target"])).read_text()
        where = (r["case"], r["target"])
        assert f"X-Evil: {ESCAPED}" in html, where  # response header
        assert f'<td class="txt">{ESCAPED}</td>' in html, where  # payload preview
        assert f'<pre class="log">INFO target saw {ESCAPED}' in html, where  # log line
        assert f"close reason {ESCAPED}</td>" in html, where  # the verdict's reason
        if r["outcome"] != "ERROR":  # the ERROR trace has no close frame
            assert f"code 1000, reason &#39;{ESCAPED}&#39;" in html, where  # close frame reason
    assert f'close reason {ESCAPED}"' in (report / "index.html").read_text()  # in a cell tooltip


def test_performance_page_charts_durations_and_samples(report: Path) -> None:
    perf = (report / "performance.html").read_text()
    bars = re.findall(r"<rect [^>]*><title>([^<]+)</title></rect>", perf)
    assert len(bars) == 6  # 2 performance cases × 3 targets
    assert "big-message · gamma: 31 ms" in bars  # 10 + 5 * 2 + len("big-message")
    assert perf.count("<polyline") == 2  # RSS and bytes in flight for the one result with samples
    assert "big-message · alpha" in perf and "RSS (MiB)" in perf
    assert "<script" not in perf


def test_diff_exit_codes_and_terminal_output(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = write_run(
        tmp_path / "new",
        overrides={("text-echo", "alpha"): "FAIL", ("text-echo", "gamma"): "PASS"},
        cases=[*CASES[:-1], ("brand-new", "framing", None, [], "RFC 6455 §5.2", ["PASS", "PASS", "PASS"])],
    )
    assert main(["diff", str(run), str(new)]) == 1
    out = capsys.readouterr().out
    assert "Regressions (1)" in out and "Fixes (1)" in out and "New cases (3)" in out
    assert "1 regression(s), 1 fix(es), 3 new, 0 other change(s), 3 no longer run" in out
    regressions = out[out.index("Regressions") : out.index("Fixes")]
    assert "alpha" in regressions and "text-echo" in regressions and "gamma" not in regressions
    assert main(["diff", str(run), str(run)]) == 0
    assert "0 regression(s), 0 fix(es), 0 new" in capsys.readouterr().out
    # fixes alone do not fail
    fixed = write_run(tmp_path / "fixed", overrides={("text-echo", "gamma"): "PASS"})
    assert main(["diff", str(run), str(fixed)]) == 0


def test_compare_classifies_transitions() -> None:
    def doc(*rows: tuple[str, str, str]) -> dict[str, Any]:
        return {"results": [{"case": c, "target": t, "outcome": o} for c, t, o in rows]}

    old = doc(("a", "x", "NON-STRICT"), ("b", "x", "FAIL"), ("c", "x", "PASS"), ("d", "x", "FAIL"))
    new = doc(("a", "x", "FAIL"), ("b", "x", "ERROR"), ("c", "x", "INFORMATIONAL"), ("d", "x", "NON-STRICT"),
              ("e", "y", "PASS"))  # fmt: skip
    diff = compare(old, new)
    assert [c.case for c in diff.regressions] == ["a"]
    assert [c.case for c in diff.fixes] == ["d"]
    assert sorted(c.case for c in diff.changed) == ["b", "c"]
    assert diff.new == [] and diff.new_targets == ["y"]


def test_report_with_baseline_puts_changes_first(run: Path, tmp_path: Path) -> None:
    new = write_run(tmp_path / "new", overrides={("rsv-bit", "alpha"): "ERROR"})
    out = tmp_path / "with-baseline"
    assert main(["report", "--baseline", str(run), str(new), "-o", str(out)]) == 0
    index = (out / "index.html").read_text()
    assert 0 < index.index('id="baseline"') < index.index('id="cases"')
    section = index[index.index('id="baseline"') : index.index("</section>")]
    assert '<h3 class="regressions">Regressions (1)</h3>' in section
    assert f'<a href="{page_of("rsv-bit", "alpha")}">rsv-bit</a>' in section
    assert "Fixes" not in section
    assert "baseline outcome" in (out / page_of("rsv-bit", "alpha")).read_text()


def test_junit_xml_parses_and_counts(run: Path, tmp_path: Path) -> None:
    xml_path = tmp_path / "junit.xml"
    # a NUL and an escape sequence in a reason must not break the XML
    doc = json.loads(run.read_text())
    failing = next(r for r in doc["results"] if r["outcome"] == "FAIL" and r["target"] == "gamma")
    failing["reason"] += " \x00\x1b[31m"
    run.write_text(json.dumps(doc))
    assert main(["report", str(run), "-o", str(tmp_path / "r"), "--junitxml", str(xml_path)]) == 0
    root = ET.parse(xml_path).getroot()
    assert root.tag == "testsuites"
    # FAIL: gamma text-echo (beta many-pings is listed in expected.yaml: skipped, as pytest's xfail)
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "18",
        "1",
        "1",
        "2",
    )
    # one suite; test names case[target] and classname the family, as pytest --junitxml writes them
    (suite,) = root.iter("testsuite")
    assert suite.get("name") == "wsconform" and suite.get("failures") == "1" and suite.get("errors") == "1"
    failure = suite.find("testcase[@name='text-echo[gamma]']/failure")
    assert failure is not None and EVIL in (failure.get("message") or "")
    assert suite.find("testcase[@name='many-pings[beta]']/skipped") is not None
    assert suite.find("testcase[@name='deflate-offer[alpha]']/skipped") is not None
    assert suite.find("testcase[@name='text-echo[alpha]']").get("classname") == "framing"  # type: ignore[union-attr]
    assert "\\x1b[31m" in ET.tostring(root, encoding="unicode")  # the escape shown, not sent raw
    # --ws-strict: NON-STRICT fails too
    assert (
        main(["report", str(run), "-o", str(tmp_path / "r"), "--junitxml", str(xml_path), "--ws-strict"]) == 0
    )
    assert ET.parse(xml_path).getroot().get("failures") == "2"


def test_autobahn_index_shape(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    index_path = tmp_path / "elsewhere" / "index.json"
    assert main(["report", str(run), "-o", str(out), "--autobahn-index", str(index_path)]) == 0
    data = json.loads(index_path.read_text())
    assert set(data) == {"alpha", "beta", "gamma"}
    for agent, cases in data.items():
        assert set(cases) == {"1.1.1", "3.1", "7.7.1"}, agent  # only results with an autobahn id
        for entry in cases.values():
            assert set(entry) == {"behavior", "behaviorClose", "remoteCloseCode", "duration", "reportfile"}
            assert isinstance(entry["duration"], int)
            assert (index_path.parent / entry["reportfile"]).resolve().is_file()
    assert data["alpha"]["1.1.1"]["behavior"] == "OK" and data["alpha"]["1.1.1"]["remoteCloseCode"] == 1000
    assert data["gamma"]["1.1.1"]["behavior"] == "FAILED"
    assert data["beta"]["3.1"]["behavior"] == "NON-STRICT"
    assert data["gamma"]["3.1"] == {**data["gamma"]["3.1"], "behavior": "FAILED", "remoteCloseCode": None}
    assert data["alpha"]["7.7.1"]["behavior"] == "INFORMATIONAL"
    assert data["alpha"]["1.1.1"]["reportfile"] == "../r/" + page_of("text-echo", "alpha")


def test_markdown_summary(run: Path, tmp_path: Path) -> None:
    md_path = tmp_path / "summary.md"
    assert main(["report", str(run), "-o", str(tmp_path / "r"), "--markdown", str(md_path)]) == 0
    md = md_path.read_text()
    head = "| target | implementation | version | PASS | NON-STRICT | INFORMATIONAL | UNIMPLEMENTED | FAIL |"
    assert head + " ERROR | total |" in md
    assert "| gamma | gamma-ws (go) | 0.9 | 4 | 0 | 0 | 0 | 1 | 1 | 6 |" in md
    assert "| framing | 1 / 1 | 1 / 1 | 0 / 1 · 1 FAIL |" in md
    assert "| limits | 2 / 2 | 1 / 2 · 1 FAIL | 2 / 2 |" in md


def test_merging_two_results_files_resolves_traces_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write_run(tmp_path / "a", targets=TARGETS[:2], marker="from-a")
    b = write_run(
        tmp_path / "deep" / "b",
        targets=TARGETS[1:],
        marker="from-b",
        overrides={("text-echo", "beta"): "ERROR"},
    )
    monkeypatch.chdir(tmp_path / "deep")  # neither file's folder: paths must not depend on the cwd
    out = tmp_path / "merged"
    assert main(["report", str(a), str(b), "-o", str(out)]) == 0
    index = (out / "index.html").read_text()
    assert all(f'title="{t["name"]}"' in index for t in TARGETS)
    assert len(re.findall(r'<td class="o ', index)) == 18  # beta's pairs counted once
    assert "Host: from-a" in (out / page_of("text-echo", "alpha")).read_text()
    later = (out / page_of("text-echo", "beta")).read_text()
    assert "Host: from-b" in later and '<td class="lg ERROR">ERROR</td>' in later  # later file wins
    assert "wsconform run --marker from-a" in index and "wsconform run --marker from-b" in index


def test_run_writes_the_exports(tmp_path: Path) -> None:
    root = tmp_path / "cases"
    (root / "mini").mkdir(parents=True)
    (root / "mini" / "m.yaml").write_text(
        'cases:\n  - id: mini-echo\n    title: echo\n    spec: RFC 6455 §5.6\n    autobahn: "1.1.1"\n'
        "    steps: [{send: {opcode: text, payload: hi}}]\n"
    )
    results = tmp_path / "out" / "results.json"
    junit, md, ab = tmp_path / "j.xml", tmp_path / "s.md", tmp_path / "out" / "index.json"
    code = main(
        ["--cases", str(root), "run", "--target-cmd", f"{sys.executable} {BROKEN} --port {{port}}",
         "--results", str(results), "-q", "--timeout-scale", "0.2",
         "--junitxml", str(junit), "--markdown", str(md), "--autobahn-index", str(ab)]
    )  # fmt: skip
    assert code == 0
    assert ET.parse(junit).getroot().get("tests") == "1"
    assert "| family |" in md.read_text()
    data = json.loads(ab.read_text())
    (entry,) = (cases["1.1.1"] for cases in data.values())
    assert entry["behavior"] == "OK" and entry["remoteCloseCode"] == 1000
    assert (ab.parent / entry["reportfile"]).is_file()


def test_diff_of_two_interop_matrices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``wsconform diff`` reads interop.json too: a pair that newly fails is a regression (exit 1), a
    known failure (listed in interop-expected.yaml) says so, and an interop matrix is never compared
    with a conformance results file."""

    def matrix(path: Path, runs: list[tuple[str, str, str, str, bool]]) -> Path:
        records = [
            {"client": c, "server": s, "scenario": sc, "outcome": o,
             "side": "server" if o == "FAIL" else None, "rule": "pong-payload" if o == "FAIL" else None,
             "reason": "r", "unexpected": u, "note": ""}
            for c, s, sc, o, u in runs
        ]  # fmt: skip
        path.write_text(json.dumps({"schema": "wsconform.interop/1", "results": records}))
        return path

    known = ("ws", "aio", "echo", "FAIL", False)
    before = matrix(tmp_path / "a.json", [("ws", "aio", "ping", "PASS", False), known])
    after = matrix(tmp_path / "b.json", [("ws", "aio", "ping", "FAIL", True), known])
    assert main(["diff", str(before), str(after)]) == 1
    out = capsys.readouterr().out
    regressions = out[out.index("Regressions (1)") :]
    assert "ws->aio" in regressions and "ping" in regressions and "pong-payload" in regressions
    assert main(["diff", str(after), str(before)]) == 0
    assert "1 fix(es)" in capsys.readouterr().out
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"schema": "wsconform.results/1", "results": []}))
    assert main(["diff", str(before), str(results)]) == 2
