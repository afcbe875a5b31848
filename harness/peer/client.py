"""The peer in client mode: connect to a server target, handshake, run the script, close.

After the script the peer finishes the way the expectation needs, without fixed sleeps: it waits for
the echoes and pongs it expects (or for the target to fail the connection, when that is expected),
then runs the closing handshake and waits for the server to close TCP (§5.5.1, §7.1.1). Every wait is
bounded by the case timeout, so a hanging target costs one timeout, never the run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from harness.model.loader import Case
from harness.model.payloads import resolve
from harness.model.schema import Expect, HandshakeSpec, HeaderFields, PayloadObj, ProbeSpec
from harness.observed import Observed, parse_close
from harness.peer import compression, context
from harness.peer.connection import PeerConnection
from harness.peer.opening import send_request
from harness.peer.probe import probe_echo
from harness.peer.script import ScriptRunner, overran
from harness.peer.trace import Trace
from harness.wire import handshake as hs
from harness.wire.frames import Opcode, build_frame, close_payload
from harness.wire.handshake_rules import check_response, offered_protocols

CLOSE_GRACE = 3.0
# What ``finish`` waits for once a case turned out UNIMPLEMENTED mid-way (no deflate agreement, test
# data absent): nothing is judged, so a normal close at once, not the case's own wait for a failure.
UNJUDGED = Expect()


@dataclass(slots=True)
class Endpoint:
    host: str
    port: int
    path: str = "/"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


def header_text(value: str | PayloadObj, data_dir: Path) -> str:
    """A header value from a case: a string, or a payload spec (a fill, a generated repetition)."""
    return value if isinstance(value, str) else resolve(value, data_dir).decode("latin-1")


def with_fields(headers: hs.Headers, fields: list[HeaderFields], data_dir: Path) -> hs.Headers:
    """``headers`` with the generated fields placed before or after them."""
    if not fields:
        return headers
    before: hs.Headers = []
    after: hs.Headers = []
    for block in fields:
        lines = block.lines(lambda p: header_text(p, data_dir))
        (before if block.position == "before" else after).extend(lines)
    return before + headers + after


def build_handshake(spec: HandshakeSpec | None, endpoint: Endpoint, data_dir: Path) -> tuple[bytes, str]:
    """The request bytes and the key whose Accept value the response must carry."""
    spec = spec or HandshakeSpec()
    key = spec.key if spec.key is not None else hs.new_key()
    if spec.raw is not None:
        return resolve(spec.raw, data_dir), key
    headers = hs.default_request_headers(endpoint.authority, key)
    if spec.version is not None:
        headers = [(k, spec.version if k == "Sec-WebSocket-Version" else v) for k, v in headers]
    if spec.protocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(spec.protocols)))
    if spec.extensions:
        headers.append(("Sec-WebSocket-Extensions", ", ".join(spec.extensions)))
    removed = {name.lower() for name in spec.remove_headers}
    headers = [(k, v) for k, v in headers if k.lower() not in removed]
    for name, value in spec.add_headers:
        headers.append((name, header_text(value, data_dir)))
    headers = with_fields(headers, spec.fields, data_dir)
    path = spec.path if spec.path != "/" else endpoint.path
    return hs.build_request(
        endpoint.authority, path, method=spec.method, http_version=spec.http_version, headers=headers
    ), key


async def run_client_case(
    case: Case, endpoint: Endpoint, *, data_dir: Path, timeout: float | None = None
) -> tuple[Observed, Trace]:
    """Run one case against a server target; returns what was observed and the trace."""
    model = case.model
    timeout = timeout if timeout is not None else model.timeout
    trace, obs = Trace(), Observed()
    steps = list(model.steps)
    first = steps[0] if steps else None
    hs_spec = first if isinstance(first, HandshakeSpec) else None
    if hs_spec is not None:
        steps.pop(0)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(endpoint.host, endpoint.port), timeout
        )
    except (OSError, TimeoutError) as exc:
        obs.connect_failed = True
        obs.handshake_error = f"cannot connect to {endpoint.authority}: {exc!r}"
        return obs, trace
    ctx = context.current()
    cap = ctx.frame_cap if ctx is not None else None
    conn = PeerConnection(reader, writer, trace, obs, we_mask=True, max_payload=cap)
    runner = ScriptRunner(conn, seed=case.id, data_dir=data_dir, timeout=timeout, expect=model.expect)
    probe: asyncio.Future[str | None] | None = None
    try:
        request, key = build_handshake(hs_spec, endpoint, data_dir)
        trace.handshake_request = request.decode("latin-1")
        trace.note("out", "handshake-request", length=len(request))
        end = hs.find_head_end(request)
        request_head = hs.parse_head(request[:end] if end > 0 else request)
        obs.offered_protocols = offered_protocols(request_head)
        frames = b"".join(runner.encode(s) for s in hs_spec.with_frames) if hs_spec else b""
        chop = hs_spec.chop if hs_spec else None
        if hs_spec is not None and hs_spec.probe is not None:
            probe = asyncio.ensure_future(_handshake_probe(hs_spec.probe, endpoint, trace, data_dir, timeout))
        try:
            delay = hs_spec.delay if hs_spec else 0.0
            raw_head, rest = await send_request(
                conn, reader, request + frames, chop=chop, delay=delay, timeout=timeout
            )
        except TimeoutError as exc:
            obs.response_silent = exc.args[:1] == (0,)
            obs.handshake_error = f"no handshake response within {timeout:g} s"
            return obs, trace
        except (ConnectionError, OSError, ValueError) as exc:
            obs.response_dropped = isinstance(exc, ConnectionError) and "after 0 bytes" in str(exc)
            obs.handshake_error = str(exc)
            return obs, trace
        head = hs.parse_head(raw_head)
        obs.response = head
        trace.handshake_response = raw_head.decode("latin-1")
        trace.note("in", "handshake-response", status=head.status)
        obs.handshake_status = head.status
        if head.status != 101:
            obs.handshake_error = f"status {head.status} ({head.start_line!r}), expected 101"
            return obs, trace
        obs.handshake_violation = check_response(head, key, request_head)
        if obs.handshake_violation is not None:
            obs.handshake_error = str(obs.handshake_violation)
            return obs, trace
        obs.handshake_ok = True
        session = compression.session_from_response(
            head.get_all("Sec-WebSocket-Extensions"),
            request_head.get_all("Sec-WebSocket-Extensions"),
            "client",
            conn.parser.max_payload,
        )
        if session is not None:
            conn.enable_deflate(session)
        elif model.requires.permessage_deflate and hs_spec is not None and hs_spec.extensions:
            offer = ", ".join(hs_spec.extensions)
            obs.unimplemented = f"the server declined the offer {offer!r} (RFC 7692 §7 allows it)"
            return obs, trace
        conn.start(rest)
        conn.set_budget(timeout)
        await runner.run(steps)
        await finish(conn, model.expect if obs.unimplemented is None else UNJUDGED)
    except BaseException:
        if probe is not None:
            probe.cancel()
            probe = None
        raise
    finally:
        await conn.close_tcp()
        if probe is not None:
            problem = await probe  # bounded by the probe's own timeout
            if problem:
                obs.unmet.append(problem)
    return obs, trace


async def _handshake_probe(
    spec: ProbeSpec, endpoint: Endpoint, trace: Trace, data_dir: Path, timeout: float
) -> str | None:
    """A second connection ``after`` s into the opening request: it must still get its echo while
    the server processes this one (a parser that blocks its event loop fails everybody, §10.4)."""
    await asyncio.sleep(spec.after)
    trace.note("out", "probe", after=spec.after, during="handshake")
    payload = resolve(spec.payload, data_dir)
    problem = await probe_echo(endpoint.host, endpoint.port, payload, spec.opcode, min(spec.timeout, timeout))
    trace.note("in", "probe-result", ok=problem is None, problem=problem)
    return problem


async def finish(conn: PeerConnection, expect: Expect) -> None:
    """Wait for what the case expects, then run (or complete) the closing handshake.

    The waits share what is left of the case budget, with at least CLOSE_GRACE each, so a case that
    already spent its budget still gets a bounded chance to close properly. As a client the peer then
    waits for the server to close TCP (§7.1.1); as a server it closes TCP itself, right after.
    """
    obs = conn.obs
    if obs.peer_disconnected:
        return
    msgs, pongs = expect.counts(len(obs.sent_messages), len(obs.pings_sent))
    if expect.fail_codes is not None:
        # Stop early once the target answered more than it may: the verdict is FAIL either way.
        await conn.wait_until(
            lambda: obs.target_ended or overran(expect, obs, final=True), conn.remaining(CLOSE_GRACE)
        )
        obs.waited_out = not obs.target_ended
        if obs.waited_out:
            return
    else:
        # The target's Close ends the wait too: no data frame may follow it (§5.5.1), and anything
        # already sent before it has arrived (one TCP stream), so waiting longer learns nothing.
        await conn.wait_until(
            lambda: obs.target_failed
            or obs.close is not None
            or (len(obs.messages) >= msgs and len(obs.pongs) >= pongs),
            conn.remaining(CLOSE_GRACE),
        )
        if obs.close_sent is None and not obs.target_failed and not conn.write_failed:
            body = close_payload(1000)
            conn.trace.note("out", "close", code=1000)
            obs.close_sent = parse_close(body, conn.trace.now())
            # Bounded by the budget too: a target that never reads (it floods) never drains our close.
            frame = build_frame(Opcode.CLOSE, body, mask=conn.we_mask)
            await conn.write(frame, timeout=conn.remaining(CLOSE_GRACE))
        if not await conn.wait_until(lambda: obs.close is not None, conn.remaining(CLOSE_GRACE)):
            obs.waited_out = True
            return
    if not obs.peer_is_server:
        await conn.wait_until(lambda: conn.eof, CLOSE_GRACE)
    # As a server the peer closes TCP first (§7.1.1); its caller half-closes and reads on (close_tcp).
