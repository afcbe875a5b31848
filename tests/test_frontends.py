"""Both front ends over one engine: results file, interrupted runs, pytest items, expected.yaml."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.coverage import autobahn_ids, coverage, render_markdown
from harness.model.loader import load_all
from harness.results import SCHEMA, ResultsWriter, assemble
from tests.conftest import BROKEN, CASES, ROOT

pytest_plugins = ["pytester"]

MINI = """
cases:
  - id: mini-echo
    title: echo
    spec: RFC 6455 §5.6
    autobahn: "1.1.1"
    steps: [{send: {opcode: text, payload: "<script>alert(1)</script>"}}]
  - id: mini-rsv
    title: rsv
    spec: RFC 6455 §5.2
    tags: [reserved-bits]
    steps: [{send: {opcode: text, payload: x, rsv: 4}}]
    expect: {fail: [1002]}
"""


def mini_cases(tmp_path: Path) -> Path:
    root = tmp_path / "cases"
    (root / "mini").mkdir(parents=True)
    (root / "mini" / "m.yaml").write_text(MINI)
    return root


def broken_cmd(defect: str | None = None) -> str:
    return f"{sys.executable} {BROKEN} --port {{port}}" + (f" --defect {defect}" if defect else "")


def test_cli_run_writes_results_traces_and_escaped_report(tmp_path: Path) -> None:
    root = mini_cases(tmp_path)
    results = tmp_path / "out" / "results.json"
    code = main(
        [
            "--cases",
            str(root),
            "run",
            "--target-cmd",
            broken_cmd("ignore-rsv"),
            "--results",
            str(results),
            "-q",
            "--timeout-scale",
            "0.2",
        ]
    )
    assert code == 1  # the rsv case FAILs
    doc = json.loads(results.read_text())
    assert doc["schema"] == SCHEMA and len(doc["targets"]) == 1
    by_case = {r["case"]: r for r in doc["results"]}
    assert by_case["mini-echo"]["outcome"] == "PASS"
    assert by_case["mini-rsv"]["outcome"] == "FAIL" and "stayed open" in by_case["mini-rsv"]["reason"]
    assert (results.parent / by_case["mini-rsv"]["trace_file"]).is_file()
    page = (results.parent / "cases").rglob("mini-echo.html")
    html = next(page).read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    index = (results.parent / "index.html").read_text()
    assert index.count('class="o FAIL') == 1 and index.count('class="o PASS') == 1


def test_cli_exit_zero_when_all_pass(tmp_path: Path) -> None:
    root = mini_cases(tmp_path)
    code = main(
        [
            "--cases",
            str(root),
            "run",
            "--target-cmd",
            broken_cmd(),
            "--results",
            str(tmp_path / "r" / "results.json"),
            "-q",
            "--no-report",
        ]
    )
    assert code == 0


def test_interrupted_run_keeps_finished_results(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    writer = ResultsWriter(path, command="x")
    writer.add_target({"name": "t"})
    writer.add({"case": "a", "target": "t", "outcome": "PASS"})
    # simulate a crash: no close(), and a line cut in half
    with path.with_suffix(".jsonl").open("a") as fh:
        fh.write('{"type": "result", "case": "b", "tar')
    doc = assemble(path.with_suffix(".jsonl"), path)
    assert [r["case"] for r in doc["results"]] == ["a"]
    assert json.loads(path.read_text())["results"][0]["outcome"] == "PASS"


def test_unreachable_url_and_non_loopback_are_refused(tmp_path: Path) -> None:
    root = mini_cases(tmp_path)
    out = str(tmp_path / "r" / "results.json")
    url = "ws://203.0.113.7:80/"  # RFC 5737 documentation address: refused before any traffic
    refused = main(["--cases", str(root), "run", "--target-url", url, "--results", out, "-q"])
    assert refused == 2
    code = main(
        [
            "--cases",
            str(root),
            "run",
            "--target-url",
            "ws://127.0.0.1:9/",
            "--results",
            out,
            "-q",
            "--no-report",
        ]
    )
    assert code == 1
    doc = json.loads(Path(out).read_text())
    assert {r["outcome"] for r in doc["results"]} == {"ERROR"}  # harness/environment, never FAIL


def test_target_that_crashes_is_fail_and_restarted(tmp_path: Path) -> None:
    root = tmp_path / "cases"
    (root / "x").mkdir(parents=True)
    (root / "x" / "c.yaml").write_text("""
cases:
  - id: crash
    title: kill the server
    spec: s
    steps: [{send: {opcode: text, payload: "CRASH"}}]
  - id: after
    title: next case
    spec: s
    steps: [{send: {opcode: text, payload: "hi"}}]
""")
    server = tmp_path / "crashy.py"
    server.write_text(f"""
import asyncio, os, sys
sys.argv = [sys.argv[0], "--port", sys.argv[1]]
sys.path.insert(0, {str(ROOT)!r})
import tests.broken_server as b
orig = b.Server._handle
async def handle(self, r, w):
    data = await r.read(1)  # peek-ish: crash on the frame carrying CRASH
    r.feed_data(data) if False else None
    return await orig(self, _Prefixed(r, data), w)
class _Prefixed:
    def __init__(self, r, first): self.r, self.first = r, first
    async def readuntil(self, sep):
        data = self.first + await self.r.readuntil(sep); self.first = b""; return data
    async def read(self, n):
        data = await self.r.read(n)
        if b"\\x85" in data[:2] and len(data) > 6: os._exit(3)
        return data
b.Server._handle = handle
asyncio.run(b.main())
""")
    out = tmp_path / "r" / "results.json"
    main(
        [
            "--cases",
            str(root),
            "run",
            "--target-cmd",
            f"{sys.executable} {server} {{port}}",
            "--results",
            str(out),
            "-q",
            "--no-report",
            "--timeout-scale",
            "0.3",
            "-j",
            "1",  # one worker: the second case must run on the restarted target
        ]
    )
    doc = json.loads(out.read_text())
    by_case = {r["case"]: r for r in doc["results"]}
    assert by_case["crash"]["outcome"] == "FAIL", by_case["crash"]
    assert by_case["after"]["outcome"] == "PASS", by_case["after"]


def test_pytest_items_ids_markers_and_expected_deviation(pytester: pytest.Pytester, tmp_path: Path) -> None:
    root = mini_cases(pytester.path)
    target = pytester.path / "targets" / "brk"
    target.mkdir(parents=True)
    (target / "target.yaml").write_text(f"""
name: brk
implementation: broken server
roles:
  server:
    process: {{argv: ["{sys.executable}", "{BROKEN}", "--port", "{{port}}", "--defect", "ignore-rsv"]}}
    ready: stdout-line
""")
    (target / "expected.yaml").write_text('mini-rsv: {outcome: FAIL, reason: "ignores RSV (test fixture)"}\n')
    res = pytester.runpytest_subprocess(
        str(root),
        "--target",
        "brk",
        "--timeout-scale",
        "0.2",
        "-v",
        "--junitxml",
        str(tmp_path / "j.xml"),
        "--results",
        str(tmp_path / "r.json"),
    )
    res.stdout.fnmatch_lines(["*mini/m.yaml::mini-echo?brk? PASSED*", "*mini/m.yaml::mini-rsv?brk? XFAIL*"])
    assert res.ret == 0
    assert "mini-rsv" in (tmp_path / "j.xml").read_text()
    assert len(json.loads((tmp_path / "r.json").read_text())["results"]) == 2
    # -k and markers select as pytest users expect
    res = pytester.runpytest_subprocess(
        str(root), "--target", "brk", "-m", "reserved_bits", "--timeout-scale", "0.2"
    )
    res.assert_outcomes(xfailed=1)
    # a fixed deviation turns the run red until expected.yaml is updated
    (target / "expected.yaml").write_text('mini-echo: {outcome: FAIL, reason: "stale entry"}\n')
    res = pytester.runpytest_subprocess(str(root), "--target", "brk", "-k", "echo")
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*expected.yaml lists FAIL*"])


def test_pytest_failure_shows_expectation_and_frames(pytester: pytest.Pytester) -> None:
    root = mini_cases(pytester.path)
    res = pytester.runpytest_subprocess(
        str(root), "--target-cmd", broken_cmd("ignore-rsv"), "-k", "rsv", "--timeout-scale", "0.2"
    )
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(
        ["*FAIL: expected close 1002 or TCP drop; target stayed open*", "*last frames:*", "*out text*rsv=4*"]
    )


def test_autobahn_coverage_is_complete_and_current() -> None:
    cases, _ = load_all(CASES)
    ids = autobahn_ids(ROOT / "docs" / "autobahn-case-ids.txt")
    assert len(ids) == 517  # categories 1-7, 9, 10 (301) and 12, 13 (216, permessage-deflate)
    missing = [ab for ab, found in coverage(cases, ids).items() if not found]
    assert not missing, f"Autobahn cases without an equivalent: {missing}"
    doc = (ROOT / "docs" / "autobahn-coverage.md").read_text()
    table = render_markdown(cases, ids, (ROOT / "docs" / "autobahn-comparison.md").read_text())
    assert doc == table, "docs/autobahn-coverage.md is stale: run wsconform cases autobahn --write"


def test_hanging_target_is_fail_within_the_timeout(tmp_path: Path) -> None:
    root = mini_cases(tmp_path)
    server = tmp_path / "mute.py"
    server.write_text(
        "import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
        "conns = []\n"
        "while True:\n"
        "    c, _ = s.accept(); conns.append(c)  # accept, never answer\n"
    )
    out = tmp_path / "r" / "results.json"
    main(
        [
            "--cases",
            str(root),
            "run",
            "--target-cmd",
            f"{sys.executable} {server} {{port}}",
            "--results",
            str(out),
            "-q",
            "--no-report",
            "--timeout-scale",
            "0.1",
            "-k",
            "mini-echo",
        ]
    )
    (result,) = json.loads(out.read_text())["results"]
    assert result["outcome"] == "FAIL" and "no handshake response within 1 s" in result["reason"]
    assert result["duration_ms"] < 5000


def test_sigterm_keeps_results_and_leaves_no_target_running(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import time

    import psutil

    out = tmp_path / "r" / "results.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "--cases",
            str(CASES),
            "run",
            "--target-cmd",
            broken_cmd(),
            "--results",
            str(out),
            "-q",
            "--no-report",
        ],
        cwd=ROOT,
    )
    lines = out.with_suffix(".jsonl")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not lines.exists() or lines.read_text().count('"result"') < 3):
        time.sleep(0.1)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children, "the target should be running"
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=20) == 130
    assert len(json.loads(out.read_text())["results"]) >= 3
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive


def test_run_with_workers_covers_both_roles_of_a_target(tmp_path: Path) -> None:
    out = tmp_path / "r" / "results.json"
    code = main(
        [
            "--cases",
            str(CASES),
            "--targets-dir",
            str(ROOT / "targets"),
            "run",
            "--target",
            "websockets",
            "--family",
            "client",
            "--family",
            "ping-pong",
            "-j",
            "2",
            "--results",
            str(out),
            "-q",
            "--no-report",
        ]
    )
    doc = json.loads(out.read_text())
    by_target = {r["target"] for r in doc["results"]}
    assert by_target == {"websockets", "websockets@client"}
    assert code == 0, [r for r in doc["results"] if r["outcome"] in ("FAIL", "ERROR")]


def test_targets_list_shows_roles_runners_and_availability(capsys: pytest.CaptureFixture[str]) -> None:
    """Every target folder appears with its roles and runners; a missing runtime says why, not just no."""
    assert main(["targets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("websockets", "node-ws", "gorilla", "chromium-websocket"):
        assert name[:9] in out
    assert "(browser)" in out and "docker" in out and "process" in out
