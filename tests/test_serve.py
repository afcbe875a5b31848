"""``wsconform serve`` driven by clients it did not start: a library client, a raw socket client, the
deliberately broken client, and Chromium running the served page.

Each server runs as a real ``wsconform serve --port 0`` subprocess (the port it prints is the one it
got from the kernel), so the tests cover the command line, the signal handling and the files it writes,
not only the classes. A correct client must PASS the cases it handles right, and the same case must FAIL
for a client with one defect, so a FAIL comes from the defect, not from serve.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import websockets
from websockets.exceptions import InvalidStatus, WebSocketException

from harness.cli import main
from harness.wire import handshake as hs
from harness.wire.frames import FrameParser, Opcode, build_frame
from tests.conftest import ROOT
from tests.test_report_browser import ARGS, CHROMIUM

BROKEN_CLIENT = ROOT / "tests" / "broken_client.py"
SMALL = [  # in file order, as the server lists them
    "client-no-subprotocol-when-offered",
    "client-echo-text-125",
    "client-answers-ping",
    "client-reports-abnormal-close",
    "client-rejects-unoffered-subprotocol",
    "client-accepts-offered-subprotocol",
]
START_TIMEOUT = 90.0  # loading every case file takes seconds on a busy 2-core machine
RESULT_TIMEOUT = 20.0


@dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int
    results: Path
    lines: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def records(self) -> list[dict[str, Any]]:
        path = self.results.with_suffix(".jsonl")
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            obj = json.loads(line)
            if obj.get("type") == "result":
                out.append(obj)
        return out

    def result(self, target: str, case: str, *, after: int = 0) -> dict[str, Any]:
        """The record for (target, case) written after the first ``after`` records; waits for it."""
        deadline = time.monotonic() + RESULT_TIMEOUT
        while time.monotonic() < deadline:
            found = [r for r in self.records()[after:] if r["target"] == target and r["case"] == case]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"no result for {target} {case} within {RESULT_TIMEOUT:g} s:\n{self.output()}")

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_exit(self, timeout: float = 60.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"serve did not exit within {timeout:g} s:\n{self.output()}") from None


@contextmanager
def serve(tmp: Path, *options: str) -> Iterator[Served]:
    """``wsconform serve --port 0`` in a subprocess; the port is read from the line it prints."""
    results = tmp / "results.json"
    argv = [sys.executable, "-m", "harness.cli", "serve", "--port", "0", "--results", str(results), *options]
    env = {**os.environ, "COLUMNS": "300", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    port = None
    deadline = time.monotonic() + START_TIMEOUT
    while port is None:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            raise AssertionError(f"serve printed no port within {START_TIMEOUT:g} s: {seen}") from None
        if line is None:
            raise AssertionError(f"serve exited before listening: {seen}")
        seen.append(line)
        match = re.search(r"\(port (\d+)\)", line)
        port = int(match.group(1)) if match else None
    served = Served(proc, port, results, seen)

    def collect() -> None:
        while (line := lines.get()) is not None:
            served.lines.append(line)

    threading.Thread(target=collect, daemon=True).start()
    try:
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    # "-k *ID": a glob matches whole ids, a bare id would also pick the ids that contain it
    options = ["--family", "client", "--timeout-scale", "0.3", *(f"-k*{c}" for c in SMALL)]
    with serve(tmp_path_factory.mktemp("serve"), *options) as s:
        yield s


async def echo_with_websockets(url: str, protocols: list[str] | None = None) -> str:
    """A correct client (the websockets library): echo until the server closes; how it ended."""
    try:
        async with websockets.connect(url, subprotocols=protocols, open_timeout=10) as ws:
            async for message in ws:
                await ws.send(message)
        return "closed"
    except InvalidStatus as exc:
        return f"status {exc.response.status_code}: {bytes(exc.response.body).decode()}"
    except WebSocketException as exc:
        return f"{type(exc).__name__}: {exc}"


def raw_client(url: str, *, mask: bool) -> None:
    """A client on a bare socket, built from wsconform's own codec; ``mask=False`` breaks §5.1."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        key = hs.new_key()
        sock.sendall(hs.build_request(f"127.0.0.1:{parts.port}", path, key=key))
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(4096)
        head_end = buf.index(b"\r\n\r\n") + 4
        head = hs.parse_head(buf[:head_end])
        assert head.status == 101 and head.get("Sec-WebSocket-Accept") == hs.accept_value(key)
        parser = FrameParser(expect_masked=False)
        pending = buf[head_end:]
        while True:
            for frame in parser.feed(pending):
                if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                    sock.sendall(build_frame(frame.opcode, frame.payload, mask=mask))
                elif frame.opcode == Opcode.PING:
                    sock.sendall(build_frame(Opcode.PONG, frame.payload, mask=mask))
                elif frame.opcode == Opcode.CLOSE:
                    sock.sendall(build_frame(Opcode.CLOSE, frame.payload[:2], mask=mask))
            pending = sock.recv(65536)
            if not pending:
                return  # the server closes TCP first


def http_get(port: int, path: str) -> tuple[int, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


async def info(url: str) -> tuple[list[str], int | None]:
    """The text messages of an info endpoint and the close code it ended with."""
    async with websockets.connect(url, open_timeout=10) as ws:
        got = [str(m) async for m in ws]
    return got, ws.close_code


def test_count_and_list(small: Served) -> None:
    count = str(len(SMALL))
    assert asyncio.run(info(small.url("/count"))) == ([count], 1000)
    assert asyncio.run(info(small.url("/getCaseCount"))) == ([count], 1000)  # the Autobahn spelling
    got, code = asyncio.run(info(small.url("/list")))
    assert code == 1000 and json.loads(got[0]) == SMALL  # the selection, in file order
    status, body = http_get(small.port, "/cases.json")
    assert status == 200
    cases = {c["id"]: c for c in json.loads(body)["cases"]}
    assert cases["client-accepts-offered-subprotocol"]["protocols"] == ["chat", "superchat"]


def test_correct_clients_pass_and_api_expectations_are_named(small: Served) -> None:
    url = small.url("/case/client-echo-text-125?agent=pyws")
    assert asyncio.run(echo_with_websockets(url)) == "closed"
    echo = small.result("pyws@client", "client-echo-text-125")
    assert echo["outcome"] == "PASS", echo
    assert "wire only: API expectation (open=True) not checked" in echo["reason"]
    raw = small.url("/case/client-answers-ping?agent=raw")
    raw_client(raw, mask=True)
    pong = small.result("raw@client", "client-answers-ping")
    assert pong["outcome"] == "PASS" and "1 pong(s)" in pong["reason"], pong
    proto = small.url("/case/client-accepts-offered-subprotocol?agent=pyws")
    assert asyncio.run(echo_with_websockets(proto, ["chat", "superchat"])) == "closed"
    assert small.result("pyws@client", "client-accepts-offered-subprotocol")["outcome"] == "PASS"
    trace = Path(echo["trace_file"])
    trace = trace if trace.is_absolute() else small.results.parent / trace
    assert json.loads(trace.read_text())["trace"]["handshake"]["request"].startswith("GET /case/")


def test_defective_clients_fail_the_right_case(small: Served) -> None:
    case = "client-echo-text-125"
    before = len(small.records())
    raw_client(small.url(f"/case/{case}?agent=nomask"), mask=False)
    unmasked = small.result("nomask@client", case, after=before)
    assert unmasked["outcome"] == "FAIL" and "unmasked" in unmasked["reason"], unmasked

    # broken_client.py drops the query, so its results go to the default agent "client"
    case = "client-rejects-unoffered-subprotocol"
    url = small.url(f"/case/{case}")
    for defect, outcome in ((None, "PASS"), ("accept-unoffered-protocol", "FAIL")):
        before = len(small.records())
        argv = [sys.executable, str(BROKEN_CLIENT), "--url", url, *(["--defect", defect] if defect else [])]
        subprocess.run(argv, timeout=60, capture_output=True, check=False)
        got = small.result("client@client", case, after=before)
        assert got["outcome"] == outcome, (defect, got)
    assert "unexpected text" in got["reason"], got


def test_whatwg_rules_bind_only_agents_that_say_they_are_browsers(small: Served) -> None:
    """The engine's binding rule: a library may ignore a WHATWG-only rule (recorded), a browser may not."""
    case = "client-no-subprotocol-when-offered"
    for query, outcome in (("agent=lib", "INFORMATIONAL"), ("whatwg=1&agent=lib-as-browser", "FAIL")):
        # websockets accepts a 101 that selects none of the offered subprotocols, as RFC 6455 allows
        asyncio.run(echo_with_websockets(small.url(f"/case/{case}?{query}"), ["chat"]))  # peer gives up
        got = small.result(query.rsplit("=", 1)[1] + "@client", case)
        assert got["outcome"] == outcome, (query, got)
    assert "WHATWG API rule, not binding on this target" in small.result("lib@client", case)["reason"]


def test_unknown_case_and_path_are_404(small: Served) -> None:
    ended = asyncio.run(echo_with_websockets(small.url("/case/no-such-case")))
    assert ended == "status 404: no case 'no-such-case' in this server's selection\n", ended
    assert asyncio.run(echo_with_websockets(small.url("/runCase?case=99"))).startswith("status 404")
    status, body = http_get(small.port, "/favicon.ico")
    assert status == 404 and "unknown path" in body
    assert http_get(small.port, "/?agent=../etc")[0] == 400  # agent names become folder names


def test_next_runs_each_case_once_then_404(small: Served) -> None:
    """The loop a ported Autobahn script runs: /next until refused."""
    ends = []
    for _ in range(len(SMALL) + 1):
        ends.append(asyncio.run(echo_with_websockets(small.url("/next?agent=looper"))))
    assert ends[-1].startswith("status 404") and "every selected case has run" in ends[-1]
    got = {c: small.result("looper@client", c) for c in SMALL}
    # a client that does not offer the subprotocols a case needs is not blamed: ERROR, and why
    needs = got.pop("client-accepts-offered-subprotocol")
    assert needs["outcome"] == "ERROR" and "needs ['chat', 'superchat']" in needs["reason"], needs
    needs = got.pop("client-no-subprotocol-when-offered")
    assert needs["outcome"] == "ERROR" and "needs ['chat']" in needs["reason"], needs
    # websockets rejects the unoffered subprotocol (PASS); the other cases echo or answer correctly
    assert {c: r["outcome"] for c, r in got.items()} == dict.fromkeys(got, "PASS")


def test_non_loopback_host_is_refused() -> None:
    assert main(["serve", "--host", "192.0.2.1", "--port", "0"]) == 2


def test_until_done_stops_and_writes_the_report(tmp_path: Path) -> None:
    with serve(tmp_path, "--until-done", "-k", "client-echo-text-125", "-k", "client-answers-ping") as s:
        for _ in range(2):
            assert asyncio.run(echo_with_websockets(s.url("/?agent=ci"))) == "closed"
        assert s.wait_exit() == 0, s.output()
    doc = json.loads(s.results.read_text())
    assert sorted((r["target"], r["case"], r["outcome"]) for r in doc["results"]) == [
        ("ci@client", "client-answers-ping", "PASS"),
        ("ci@client", "client-echo-text-125", "PASS"),
    ]
    assert (s.results.parent / "index.html").is_file()
    assert "every selected case ran for ci@client" in s.output()


def test_sigterm_keeps_what_finished(tmp_path: Path) -> None:
    with serve(tmp_path, "-k", "client-echo-text-125", "-k", "client-rejects-masked-frame") as s:
        raw_client(s.url("/case/client-echo-text-125?agent=once"), mask=True)
        s.result("once@client", "client-echo-text-125")
        s.proc.send_signal(signal.SIGTERM)
        assert s.wait_exit() == 0, s.output()
    doc = json.loads(s.results.read_text())
    assert [(r["case"], r["outcome"]) for r in doc["results"]] == [("client-echo-text-125", "PASS")]
    assert (s.results.parent / "index.html").is_file()


def test_browser_page_runs_the_whole_selection(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the playwright package is missing (pip install playwright)")
    from playwright.sync_api import sync_playwright

    with serve(tmp_path, "--family", "client", "--until-done") as s:
        _, body = http_get(s.port, "/cases.json")
        selected = [c["id"] for c in json.loads(body)["cases"]]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{s.port}/")
                page.wait_for_function(
                    "['done', 'error'].includes(document.body.dataset.state)", timeout=180_000
                )
                state, seconds = page.evaluate("[document.body.dataset.state, document.body.dataset.seconds]")
                shown = page.eval_on_selector_all("#rows td.o", "els => els.map(e => e.textContent)")
            finally:
                browser.close()
        assert s.wait_exit() in (0, 1), s.output()  # 1: the browser broke a rule somewhere
    assert state == "done"
    print(f"Chromium ran {len(selected)} cases in {seconds} s")
    doc = json.loads(s.results.read_text())
    outcomes = {r["case"]: r["outcome"] for r in doc["results"] if r["target"] == "browser@client"}
    assert sorted(outcomes) == sorted(selected)
    assert "ERROR" not in outcomes.values(), outcomes
    for case in ("client-echo-binary-65536", "client-answers-ping", "client-rejects-wrong-accept"):
        assert outcomes[case] == "PASS", (case, outcomes[case])
    assert shown.count("") < len(selected)  # the page displayed the server's verdicts
    assert (s.results.parent / "index.html").is_file()
