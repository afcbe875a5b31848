"""The peer in server mode: listen, let the client target connect, answer its handshake, run the script.

The same step language drives both directions; only the masking flips (the peer, now a server, does
not mask, and every frame from the client must be masked, RFC 6455 §5.1). The client's request is
checked as a server must check it (§4.1 client requirements), and the response can be anything a
case asks for, so that the client's duty to reject a bad response (§4.1, the "_Fail the WebSocket
Connection_" list) can be tested. The client's own view comes back as API events on its stdout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from harness.model.loader import Case
from harness.model.payloads import resolve
from harness.model.schema import ClientOptions, ResponseSpec
from harness.observed import ClientReport, Observed
from harness.peer import compression, context
from harness.peer.client import UNJUDGED, finish, header_text, with_fields
from harness.peer.connection import PeerConnection
from harness.peer.script import ScriptRunner
from harness.peer.trace import Trace
from harness.wire import handshake as hs
from harness.wire.handshake_rules import check_request, offered_protocols, request_key
from harness.wire.rules import Violation

EVENTS_GRACE = 12.0  # > the 10 s close timeout libraries use when a close reply never comes
EVENT_LINE_LIMIT = 64 * 1024  # an event line longer than this is garbage, read and dropped in chunks
# What reading an opening request can end in when the client sends no complete one.
REQUEST_ERRORS = (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError)



class ClientProcess(Protocol):
    """A started client target: its API events arrive as JSON lines on ``stdout``.

    ``asyncio.subprocess.Process`` is one; a browser page or a container is another (harness.targets
    adapts them), so the peer does not care how the client runs.
    """

    stdout: asyncio.StreamReader | None

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


Launch = Callable[[str, list[str], dict[str, str]], Awaitable[ClientProcess]]


def build_response(spec: ResponseSpec | None, request: hs.HttpHead, data_dir: Path) -> bytes:
    spec = spec or ResponseSpec()
    offers = request.get_all("Sec-WebSocket-Extensions")
    if spec.raw is not None:
        return resolve(spec.raw, data_dir)
    key = request.get("Sec-WebSocket-Key") or ""
    correct = hs.accept_value(key)
    headers: list[tuple[str, str]] = []
    if spec.upgrade is not None:
        headers.append(("Upgrade", spec.upgrade))
    if spec.connection is not None:
        headers.append(("Connection", spec.connection))
    accept = {"correct": correct, "wrong": hs.accept_value(key + "x"), "duplicate": correct}.get(
        spec.accept, spec.accept
    )
    if spec.accept != "missing":
        headers.append(("Sec-WebSocket-Accept", accept))
    if spec.accept == "duplicate":
        headers.append(("Sec-WebSocket-Accept", correct))
    offered = offered_protocols(request)
    protocol = (offered[0] if offered else None) if spec.protocol == "first-offered" else spec.protocol
    if protocol:
        headers.append(("Sec-WebSocket-Protocol", protocol))
    answer = compression.response_extensions(spec.extensions, offers)
    if answer:
        headers.append(("Sec-WebSocket-Extensions", answer))
    if spec.status != 101:
        headers.append(("Content-Length", "0"))  # else the body lasts until TCP closes (RFC 9112 §6.3)
    removed = {h.lower() for h in spec.remove_headers}
    headers = [(k, v) for k, v in headers if k.lower() not in removed]
    headers += [(k, header_text(v, data_dir)) for k, v in spec.add_headers]
    headers = with_fields(headers, spec.fields, data_dir)
    if spec.name_case != "canonical":
        headers = [(k.lower() if spec.name_case == "lower" else k.upper(), v) for k, v in headers]
    lines = [f"HTTP/1.1 {spec.status} {spec.reason}", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def scenario_env(options: ClientOptions) -> dict[str, str]:
    """The environment that tells a client adapter which scenario to play (empty: the plain echo client)."""
    if options.scenario is None:
        return {}
    return {"WSCONFORM_SCENARIO": options.scenario, "WSCONFORM_DELAY_MS": str(options.delay_ms)}


async def _read_line(stream: asyncio.StreamReader) -> tuple[bytes, bool]:
    """One line of at most EVENT_LINE_LIMIT bytes: (line, whole). A longer one is consumed and cut."""
    try:
        return await stream.readuntil(b"\n"), True
    except asyncio.IncompleteReadError as exc:
        return exc.partial, True
    except asyncio.LimitOverrunError:
        head = await stream.read(EVENT_LINE_LIMIT)
        while True:  # drop the rest of the endless line without keeping it
            try:
                await stream.readuntil(b"\n")
                return head, False
            except asyncio.LimitOverrunError as exc:
                await stream.readexactly(exc.consumed)
            except asyncio.IncompleteReadError:
                return head, False


async def _read_events(proc: ClientProcess, run: ClientReport) -> None:
    assert proc.stdout is not None
    while True:
        line, whole = await _read_line(proc.stdout)
        if not line:
            return
        text = line.decode("utf-8", "replace").strip()
        if not text:
            continue
        if not whole:
            run.add_garbage(f"an event line longer than {EVENT_LINE_LIMIT} bytes: {text[:120]!r}…")
            continue
        try:
            event = json.loads(text)
            if not isinstance(event, dict) or "event" not in event:
                raise ValueError
        except (ValueError, RecursionError):  # RecursionError: a line of 64 Ki nested brackets
            run.add_garbage(text[:200])
            continue
        run.add_event(event, len(line))


async def run_server_case(
    case: Case, launch: Launch, *, data_dir: Path, timeout: float | None = None
) -> tuple[Observed, Trace, ClientReport]:
    """Run one client-role case: start the client target, let it connect to us, serve that connection."""
    model = case.model
    timeout = timeout if timeout is not None else model.timeout
    client = ClientReport()
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"ws://127.0.0.1:{port}/{case.id}"
    proc = await launch(url, list(model.client.protocols), scenario_env(model.client))
    events_task = asyncio.ensure_future(_read_events(proc, client))
    try:
        arrival = asyncio.ensure_future(accepted.get())
        exited = asyncio.ensure_future(proc.wait())
        await asyncio.wait({arrival, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        exited.cancel()
        if not arrival.done():  # a client that exits (127: unsupported) or never connects ends the wait
            arrival.cancel()
            first = exited.done() and not exited.cancelled()
            obs = Observed(peer_is_server=True, connect_failed=True)
            obs.handshake_error = "the client did not connect" + (
                " (it exited first)" if first else f" within {timeout:g} s"
            )
            return obs, Trace(), client
        reader, writer = arrival.result()
        obs, trace = await serve_connection(case, reader, writer, data_dir=data_dir, timeout=timeout)
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1.0)
        try:
            client.exit_code = await asyncio.wait_for(proc.wait(), EVENTS_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            client.exit_code = await proc.wait()
            client.add_garbage(f"client did not exit within {EVENTS_GRACE:g} s after the case; killed")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(events_task, 1.0)
    return obs, trace, client


async def serve_connection(
    case: Case,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    data_dir: Path,
    timeout: float,
    request: bytes | None = None,
) -> tuple[Observed, Trace]:
    """Play the server side of one case on a connection the client already opened, then close TCP.

    Whoever accepted the connection calls this: ``run_server_case`` for a client the harness started,
    ``wsconform serve`` for one it did not (which has read the opening ``request`` already, to route it
    by path; otherwise it is read here).
    """
    model = case.model
    trace, obs = Trace(), Observed(peer_is_server=True)
    steps = list(model.steps)
    first = steps[0] if steps else None
    response = first if isinstance(first, ResponseSpec) else None
    if response is not None:
        steps.pop(0)
    ctx = context.current()
    cap = ctx.frame_cap if ctx is not None else None
    conn = PeerConnection(reader, writer, trace, obs, we_mask=False, max_payload=cap)
    try:
        runner = ScriptRunner(conn, seed=case.id, data_dir=data_dir, timeout=timeout, expect=model.expect)
        if request is None:
            try:
                request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            except REQUEST_ERRORS as exc:
                obs.handshake_error = f"no complete opening request from the client: {type(exc).__name__}"
                return obs, trace
        raw = request
        head_in = hs.parse_head(raw)
        trace.handshake_request = raw.decode("latin-1")
        trace.note("in", "handshake-request", length=len(raw))
        obs.offered_protocols = offered_protocols(head_in)
        obs.handshake_violation = check_request(head_in)
        key = request_key(head_in)
        history = ctx.key_history if ctx is not None else None
        if obs.handshake_violation is None and key is not None and history is not None:
            if key in history:  # §4.1: "randomly selected" for each connection
                obs.handshake_violation = Violation(
                    "request-key-not-random", f"Sec-WebSocket-Key {key!r} was sent on an earlier connection"
                )
            history.add(key)
        reply = build_response(response, head_in, data_dir)
        frames = b"".join(runner.encode(s) for s in response.with_frames) if response else b""
        trace.handshake_response = reply.decode("latin-1")
        trace.note("out", "handshake-response", length=len(reply))
        head = hs.parse_head(reply[: hs.find_head_end(reply)] if hs.find_head_end(reply) > 0 else reply)
        obs.response = head
        obs.handshake_status = head.status
        obs.handshake_ok = True  # the peer's own response: the client's reaction is what is judged
        if head.status == 101:
            try:
                session = compression.session_from_response(
                    head.get_all("Sec-WebSocket-Extensions"),
                    head_in.get_all("Sec-WebSocket-Extensions"),
                    "server",
                    conn.parser.max_payload,
                )
            except ValueError as exc:  # the case's own response is not a usable agreement
                conn.trace.note("note", "permessage-deflate-unusable", why=str(exc))
                session = None
            if session is not None:
                conn.enable_deflate(session)
            elif model.requires.permessage_deflate:
                offered = head_in.get_all("Sec-WebSocket-Extensions")
                obs.unimplemented = (
                    f"no permessage-deflate agreement: the client offered {offered!r}, "
                    f"the response has {head.get_all('Sec-WebSocket-Extensions')!r}"
                )
        conn.start()
        conn.set_budget(timeout)
        obs.answer_started_t = trace.now()
        written = await conn.write(
            reply + frames,
            chop=response.chop if response else None,
            delay=response.delay if response else 0.0,  # e.g. to let a client abort before the handshake
        )
        if written:
            obs.head_sent_t = trace.now()
        if obs.unimplemented is None:
            await runner.run(steps)
        await finish(conn, model.expect if obs.unimplemented is None else UNJUDGED)
    finally:
        await conn.close_tcp(half_close=True)
    return obs, trace
