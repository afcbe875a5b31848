"""The Chromium client targets: one browser per run, a page per case, the API rules judged from events.

Skipped, visibly, where Debian's chromium or Playwright is missing (`.ci/run` installs both).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.engine import run_case
from harness.model.loader import Case
from harness.outcome import Outcome
from harness.targets.runners.browser import BrowserLauncher, chromium_path
from harness.targets.session import TargetSession, open_session
from harness.targets.spec import Policies, RoleSpec, TargetSpec

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"

try:
    import playwright  # noqa: F401

    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False

pytestmark = [
    pytest.mark.skipif(
        chromium_path() is None, reason="Debian chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(not HAVE_PLAYWRIGHT, reason="Playwright is not installed (pip install playwright)"),
]

# An adapter that uses the real WebSocket API but lies about what it saw: after a dropped connection
# it reports a clean 1000, and it never reports the exceptions the API threw.
LYING_ADAPTER = """
function wsconformRun(url, protocols, scenario, delayMs) {
  const emit = (o) => window.__wsconformEmit(JSON.stringify(o));
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    emit({event: "open", protocol: ws.protocol, extensions: ws.extensions});
    if (scenario === "close-999") { try { ws.close(999); } catch (e) { /* swallowed */ } }
  };
  ws.onmessage = (e) => ws.send(e.data);
  ws.onclose = () => {
    emit({event: "close", code: 1000, reason: "", wasClean: true});
    window.__wsconformExit(0);
  };
}
"""


def _session(name: str, tmp_path: Path) -> TargetSession:
    return open_session(name, targets_root=ROOT / "targets", log_dir=tmp_path, role="client")


@pytest.mark.parametrize("target", ["chromium-websocket", "chromium-websocketstream"])
def test_one_browser_for_many_cases(repo_cases: dict[str, Case], tmp_path: Path, target: str) -> None:
    session = _session(target, tmp_path)
    ids = [
        "client-echo-binary-65536",
        "client-answers-ping",
        "client-rejects-masked-frame",
        "api-close-999-throws",
    ]
    try:
        results = [run_case(repo_cases[i], session, data_dir=CASES / "data") for i in ids]
    finally:
        session.stop()
    assert [r.outcome for r in results] == [Outcome.PASS] * len(ids), [(r.case.id, r.reason) for r in results]
    log = (tmp_path / f"{target}.client.log").read_text()
    assert log.count("--- browser started") == 1, log
    assert log.count("--- page:") == len(ids)
    events = results[3].trace["api"]
    assert {"event": "exception", "name": "InvalidAccessError"}.items() <= next(
        e for e in events if e["event"] == "exception"
    ).items()


def test_websocketstream_abort_prevents_the_connection(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    session = _session("chromium-websocketstream", tmp_path)
    try:
        result = run_case(repo_cases["api-stream-abort-before-open"], session, data_dir=CASES / "data")
    finally:
        session.stop()
    assert result.outcome is Outcome.PASS, result.reason
    kinds = [e["event"] for e in result.trace["api"]]
    assert "open" not in kinds and "exception" in kinds


def test_a_lying_browser_adapter_fails(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    script = tmp_path / "lying.js"
    script.write_text(LYING_ADAPTER)
    spec = TargetSpec(
        name="lying", implementation="a lying adapter", roles={"client": RoleSpec()},
        policies=Policies(whatwg_api=True),
    )  # fmt: skip
    launcher = BrowserLauncher(script, log_path=tmp_path / "lying.log")
    session = TargetSession("lying@client", launcher, spec, role="client")
    try:
        dropped = run_case(repo_cases["client-reports-abnormal-close"], session, data_dir=CASES / "data")
        silent = run_case(repo_cases["api-close-999-throws"], session, data_dir=CASES / "data")
    finally:
        session.stop()
    assert dropped.outcome is Outcome.FAIL and "close code 1000" in dropped.reason, dropped.reason
    assert silent.outcome is Outcome.FAIL and "must throw InvalidAccessError" in silent.reason, silent.reason


def test_cli_runs_the_browser_target(tmp_path: Path) -> None:
    """`wsconform run --target chromium-websocketstream` from the command line, results on disk."""
    results = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", "--target", "chromium-websocketstream", "-k", "api-",
         "--results", str(results), "--no-report", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(results.read_text())
    outcomes = {r["case"]: r["outcome"] for r in data["results"]}
    assert outcomes["api-stream-abort-before-open"] == "PASS"
    assert outcomes["api-close-999-throws"] == "PASS"
    assert all(r["target"] == "chromium-websocketstream@client" for r in data["results"])


def test_websocketstream_pushes_back_and_websocket_does_not(
    repo_cases: dict[str, Case], tmp_path: Path
) -> None:
    """The same slow consumer: the WebSocket API queues everything, WebSocketStream stalls the sender."""
    case = repo_cases["backpressure-client-slow-reader"]
    results = {}
    for target in ("chromium-websocket", "chromium-websocketstream"):
        session = _session(target, tmp_path)
        try:
            results[target] = run_case(case, session, data_dir=CASES / "data")
        finally:
            session.stop()
    plain, stream = results["chromium-websocket"], results["chromium-websocketstream"]
    assert plain.outcome is Outcome.INFORMATIONAL and "unbounded" in plain.reason, plain.reason
    assert stream.outcome is Outcome.PASS and "bounded" in stream.reason, stream.reason
    assert plain.figures is not None and stream.figures is not None
    assert plain.figures["held_bytes"] > 4 * stream.figures["held_bytes"], (plain.figures, stream.figures)
