"""``wsconform serve``: the server-mode peer kept running for a client the harness does not start.

A phone app, another machine's browser tunnelled to loopback, or a client library's own test script
connects when it likes; the URL it asks for picks the case, in a scheme close to Autobahn|Testsuite's
fuzzing server so that its client scripts port with a path change (docs/serve.md). Each connection is
served by the same coroutine as a started client target (``peer.server.serve_connection``) and judged
by the same verdict code, on the wire only: a foreign client has no adapter printing API events, so
API expectations are skipped and the reason says so. Results stream to results.jsonl as each case
finishes, per agent, under the target name ``AGENT@client``.

One asyncio server handles everything, the cases and the static page that lets any browser run the
selection, so one port is all a user has to forward or type.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from harness.engine import Accepted, CaseResult, finish_result, play
from harness.model.loader import Case
from harness.model.schema import ResponseSpec
from harness.peer.server import REQUEST_ERRORS, build_response
from harness.report.autobahn import BEHAVIOR
from harness.results import ResultsWriter, assemble
from harness.serve_page import PAGE
from harness.verdict import Outcome, Verdict
from harness.wire import handshake as hs
from harness.wire.frames import FrameParser, Opcode, build_frame, close_payload
from harness.wire.handshake_rules import check_request, offered_protocols

DEFAULT_AGENT = "client"
PAGE_AGENT = "browser"
AGENT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
REQUEST_TIMEOUT = 10.0  # for the opening request of any connection
CLOSE_REPLY_TIMEOUT = 2.0  # the info endpoints wait this long for the client's close frame
STOP_GRACE = 3.0
UNTIL_DONE_LINGER = 1.0  # after the last case, so a page can still fetch the last verdicts

ResultHook = Callable[[CaseResult], None]
PublishHook = Callable[[dict[str, Any]], None]


def left_out_because(case: Case) -> str | None:
    """Why serve cannot run a client-role case for a foreign client, or None.

    A scenario asks a started adapter for an API call the server cannot see or request (``close(999)``,
    a slow consumer); ``requires`` needs policies a target declares in target.yaml. A foreign client
    does neither, and would be judged for what it was never asked to do.
    """
    if case.model.client.scenario is not None:
        return "needs an adapter scenario"
    if case.model.requires != type(case.model.requires)():
        return "needs declared target policies"
    return None


def serve_selection(cases: list[Case]) -> tuple[list[Case], list[Case]]:
    """(cases serve runs, client-role cases it leaves out), in file order."""
    client_role = [c for c in cases if c.model.role in ("client", "both")]
    return (
        [c for c in client_role if left_out_because(c) is None],
        [c for c in client_role if left_out_because(c) is not None],
    )


@dataclass(frozen=True)
class Route:
    """What a request asks for: ``kind`` names the endpoint; ``error`` (status, text) refuses it."""

    kind: str
    agent: str = DEFAULT_AGENT
    case: Case | None = None
    error: tuple[int, str] | None = None
    whatwg: bool = False


@dataclass
class AgentState:
    """One agent's progress: finished results (the latest per case) and cases being run right now.

    ``whatwg``: the agent said it is a browser API (``?whatwg=1`` on its first connection), so rules
    with ``binding: whatwg`` bind it as they bind a browser target."""

    name: str
    whatwg: bool = False
    user_agent: str = ""
    done: dict[str, CaseResult] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)  # when each was recorded: a page sees what is new
    running: set[str] = field(default_factory=set)


def _query(target: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(target)
    return unquote(parts.path) or "/", {k: v[-1] for k, v in parse_qs(parts.query).items()}


class ServeServer:
    """The listening peer, the per-agent bookkeeping, and the stop conditions."""

    def __init__(
        self,
        cases: list[Case],
        *,
        data_dir: Path,
        trace_dir: Path | None,
        writer: ResultsWriter,
        timeout_scale: float = 1.0,
        until_done: bool = False,
        on_result: ResultHook | None = None,
        publish: PublishHook | None = None,
    ) -> None:
        self.cases = cases
        self.by_id = {c.id: c for c in cases}
        self.data_dir = data_dir
        self.trace_dir = trace_dir
        self.writer = writer
        self.timeout_scale = timeout_scale
        self.until_done = until_done
        self.on_result = on_result
        self.publish = publish
        self.agents: dict[str, AgentState] = {}
        self.port = 0
        self.seq = 0
        self.finished_by: str | None = None  # the agent that completed the selection (--until-done)
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle

    async def run(self, host: str, port: int, on_ready: Callable[[int], None] | None = None) -> None:
        """Listen until ``stop()`` (a signal, or --until-done); connections still open are cut."""
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, host, port)
        self.port = int(server.sockets[0].getsockname()[1])
        if on_ready is not None:
            on_ready(self.port)
        try:
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), STOP_GRACE)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    # ------------------------------------------------------------------ routing

    def agent(self, name: str, *, whatwg: bool = False) -> AgentState:
        """The agent's state, created by its first connection (recorded as target ``NAME@client``)."""
        if name not in self.agents:
            self.agents[name] = AgentState(f"{name}@client", whatwg=whatwg)
        return self.agents[name]

    def next_case(self, agent: str) -> Case | None:
        state = self.agents.get(agent)
        if state is None:
            return self.cases[0] if self.cases else None
        return next((c for c in self.cases if c.id not in state.done and c.id not in state.running), None)

    def _case_ref(self, ref: str | None) -> Case | None:
        """A case by id, or by its 1-based position in the selection (Autobahn's ``case=N``)."""
        if ref is None:
            return None
        if ref.isdigit():
            n = int(ref)
            return self.cases[n - 1] if 1 <= n <= len(self.cases) else None
        return self.by_id.get(ref)

    def route(self, head: hs.HttpHead) -> Route:
        parts = head.start_line.split(" ")
        path, query = _query(parts[1] if len(parts) >= 2 else "/")
        agent = query.get("agent", DEFAULT_AGENT)
        if not AGENT_RE.match(agent):
            return Route("refuse", error=(400, f"agent {agent!r}: use 1-40 of A-Z a-z 0-9 _ . -\n"))
        upgrade = "websocket" in head.tokens("Upgrade")
        whatwg = query.get("whatwg") == "1"
        if path == "/" and not upgrade:
            return Route("page", agent)
        if path in ("/", "/next"):
            case = self.next_case(agent)
            if case is None:
                return Route("refuse", agent, error=(404, f"every selected case has run for agent {agent}\n"))
            return Route("case", agent, case, whatwg=whatwg)
        if path.startswith("/case/") or path == "/runCase":
            ref = path[len("/case/") :] if path.startswith("/case/") else query.get("case")
            case = self._case_ref(ref)
            if case is None:
                return Route("refuse", agent, error=(404, f"no case {ref!r} in this server's selection\n"))
            return Route("case", agent, case, whatwg=whatwg)
        simple = {
            "/count": "count",
            "/getCaseCount": "count",
            "/list": "list",
            "/report": "report",
            "/updateReports": "report",
            "/cases.json": "cases-json",
            "/results.json": "results-json",
        }
        if path in simple:
            return Route(simple[path], agent)
        if path in ("/info", "/getCaseInfo", "/status", "/getCaseStatus"):
            case = self._case_ref(query.get("case"))
            if case is None:
                return Route(
                    "refuse", agent, error=(404, f"no case {query.get('case')!r} in the selection\n")
                )
            return Route("info" if "nfo" in path else "status", agent, case)
        return Route("refuse", agent, error=(404, f"unknown path {path!r}; see docs/serve.md\n"))

    # ------------------------------------------------------------------ connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
            except REQUEST_ERRORS:
                writer.close()
                return
            head = hs.parse_head(raw)
            route = self.route(head)
            if route.kind == "case":
                assert route.case is not None
                await self._run_case(route.case, route, raw, head, reader, writer)
            else:
                await self._answer(route, head, reader, writer)
        except Exception:  # one connection's trouble must never stop the server
            traceback.print_exc()
            writer.close()
        finally:
            self._tasks.discard(task)

    async def _answer(
        self, route: Route, head: hs.HttpHead, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if route.error is not None:
            return await _http(writer, route.error[0], route.error[1])
        if route.kind == "page":
            return await _http(writer, 200, PAGE, "text/html; charset=utf-8")
        if route.kind == "report":
            doc = await asyncio.to_thread(self.snapshot)
            body = f"{len(doc['results'])} results written to {self.writer.path}\n"
        else:
            body = self._info_body(route)
        if "websocket" not in head.tokens("Upgrade"):
            ctype = "text/plain; charset=utf-8" if route.kind in ("count", "report") else "application/json"
            return await _http(writer, 200, body, ctype)
        problem = check_request(head)
        if problem is not None:
            return await _http(writer, 400, f"not a WebSocket opening request: {problem}\n")
        reply = build_response(ResponseSpec(protocol=None), head, self.data_dir)
        messages = [] if route.kind == "report" else [body]  # Autobahn's updateReports only closes
        await _send_and_close(reader, writer, reply, messages)

    def _info_body(self, route: Route) -> str:
        if route.kind == "count":
            return str(len(self.cases))
        if route.kind == "list":
            return json.dumps([c.id for c in self.cases])
        if route.kind == "cases-json":
            return json.dumps(
                {
                    "agent": PAGE_AGENT,
                    "cases": [
                        {
                            "id": c.id,
                            "title": c.model.title,
                            "protocols": list(c.model.client.protocols),
                            "timeout": c.model.timeout * self.timeout_scale,
                        }
                        for c in self.cases
                    ],
                }
            )
        state = self.agents.get(route.agent)
        done = state.done if state is not None else {}
        if route.kind == "results-json":
            seqs = state.seq if state is not None else {}
            shown = {
                k: {"outcome": str(r.outcome), "reason": r.reason, "seq": seqs[k]} for k, r in done.items()
            }
            return json.dumps({"target": f"{route.agent}@client", "seq": self.seq, "results": shown})
        assert route.case is not None
        if route.kind == "info":
            c = route.case
            return json.dumps(
                {
                    "id": c.id,
                    "description": c.model.title,
                    "spec": c.model.spec,
                    "protocols": c.model.client.protocols,
                }
            )
        result = done.get(route.case.id)
        if result is None:
            return json.dumps({"behavior": "UNKNOWN", "outcome": None, "reason": "not run for this agent"})
        outcome = str(result.outcome)
        return json.dumps({"behavior": BEHAVIOR[outcome], "outcome": outcome, "reason": result.reason})

    async def _run_case(
        self,
        case: Case,
        route: Route,
        raw: bytes,
        head: hs.HttpHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        agent = route.agent
        state = self.agent(agent, whatwg=route.whatwg)
        state.user_agent = state.user_agent or (head.get("User-Agent") or "")[:200]
        state.running.add(case.id)
        try:
            result = await self._judged(case, state, raw, head, reader, writer)
        finally:
            state.running.discard(case.id)
        finish_result(result, None, self.trace_dir)
        self._record(agent, state, result)

    async def _judged(
        self,
        case: Case,
        state: AgentState,
        raw: bytes,
        head: hs.HttpHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> CaseResult:
        started = time.monotonic()
        timeout = case.model.timeout * self.timeout_scale
        wanted, offered = list(case.model.client.protocols), offered_protocols(head)
        if wanted and offered != wanted:
            # Not the client's fault: nobody told it. The case cannot be judged (ERROR), and says why.
            await _http(writer, 400, f"case {case.id} needs the client to offer the subprotocols {wanted}\n")
            verdict = Verdict(
                Outcome.ERROR,
                f"the client offered subprotocols {offered}; this case needs {wanted} "
                "(GET /cases.json lists each case's subprotocols)",
            )
            trace: dict[str, Any] = {}
            log = ""
        else:
            played = await play(
                case,
                Accepted(reader, writer, raw),
                data_dir=self.data_dir,
                timeout=timeout,
                whatwg_api=state.whatwg,
                wire_only=True,
            )
            verdict, trace, log = played.verdict, played.trace, played.log
        duration = (time.monotonic() - started) * 1000
        return CaseResult(case, state.name, verdict.outcome, verdict.reason, duration, trace, log)

    def _record(self, agent: str, state: AgentState, result: CaseResult) -> None:
        info = {
            "name": state.name,
            "implementation": agent,
            "language": "unknown",
            "version": state.user_agent or "unknown",
            "role": "client",
        }
        self.writer.add_target(info)
        self.writer.add(result.record())
        state.done[result.case.id] = result
        self.seq += 1
        state.seq[result.case.id] = self.seq
        if self.on_result is not None:
            self.on_result(result)
        if self.until_done and self.finished_by is None and len(state.done) == len(self.cases):
            self.finished_by = agent
            asyncio.get_running_loop().call_later(UNTIL_DONE_LINGER, self.stop)

    def snapshot(self) -> dict[str, Any]:
        """results.json and the report as they stand now (``/report``), without ending the run."""
        doc = assemble(self.writer.lines_path, self.writer.path)
        if self.publish is not None:
            self.publish(doc)
        return doc


async def _http(
    writer: asyncio.StreamWriter, status: int, body: str, ctype: str = "text/plain; charset=utf-8"
) -> None:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
    data = body.encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
        "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(ConnectionError):
        writer.write(head.encode("latin-1") + data)
        await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _send_and_close(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: bytes, messages: list[str]
) -> None:
    """A correct little WebSocket exchange: 101, text messages, close 1000, wait for the client's close."""
    frames = b"".join(build_frame(Opcode.TEXT, m.encode("utf-8")) for m in messages)
    writer.write(reply + frames + build_frame(Opcode.CLOSE, close_payload(1000)))
    parser = FrameParser(expect_masked=True)
    try:
        await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        async with asyncio.timeout(CLOSE_REPLY_TIMEOUT):
            while True:
                data = await reader.read(65536)
                if not data or any(f.opcode == Opcode.CLOSE for f in parser.feed(data)):
                    break
    except (TimeoutError, ConnectionError):
        pass
    writer.close()  # the server closes TCP first (RFC 6455 §7.1.1)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


def run_until_stopped(
    server: ServeServer, host: str, port: int, on_ready: Callable[[int], None] | None = None
) -> None:
    """Run the server until it stops itself (--until-done) or SIGINT/SIGTERM arrives.

    The signals set the stop event instead of raising inside the event loop, so connections are cut
    cleanly and the caller writes results.json and the report; the process's previous handlers (the
    CLI's SIGTERM-as-Ctrl-C) are put back afterwards. Signal handlers exist only in the main thread.
    """
    main_thread = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGINT, signal.SIGTERM) if main_thread else ()
    previous = {sig: signal.getsignal(sig) for sig in signals}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, server.stop)
        try:
            await server.run(host, port, on_ready)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    try:
        asyncio.run(main())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
