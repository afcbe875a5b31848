"""wsconform client adapter for Tornado (``tornado.websocket.websocket_connect``).

The harness runs the peer as a server and starts this program once per case. It connects to the
given URL offering the given subprotocols, echoes every message with the same type, completes the
closing handshake, and reports what Tornado's API saw as JSON lines on stdout. Contract
(docs/architecture.md): events ``open``, ``message``, ``error``, ``close``; exit 0 after ``close``;
exit 127 for an unsupported feature.

How Tornado's API maps onto the events:

* ``websocket_connect(url, subprotocols=..., max_message_size=..., compression_options=None)``: no
  permessage-deflate offer (the default, spelled out), no keepalive pings. A failed handshake
  raises from the connect future (``HTTPClientError`` for a non-101 status, ``WebSocketError``,
  ``StreamClosedError``, or whatever Tornado's header checks raise): error, then close 1006.
* ``read_message()`` returns ``str``/``bytes`` (echoed with ``write_message``, awaited before the
  next read; Tornado answers pings itself) and ``None`` once the connection is closed. Then
  ``close_code`` / ``close_reason`` hold what the server's Close frame said; Tornado has already
  echoed the code and closed the TCP connection.
* Tornado reports no error at all: a protocol error (RSV bits, unknown opcode, invalid UTF-8, long
  control frame...) makes it drop the TCP connection without a Close frame, and the API then shows
  ``None``, ``close_code None`` — exactly what a Close frame *without* a status code shows. To tell
  the two apart (1005 clean vs. 1006 failed) the adapter records, per connection, whether Tornado
  handled a Close frame: it wraps ``WebSocketProtocol13._handle_message`` (observation only, the
  library's behaviour is unchanged) because the frame loop starts before ``websocket_connect``
  returns, so nothing public can be hooked in time. No Close frame -> error event, then close 1006,
  wasClean false.

The extended contract (docs/adapter-protocol.md; shared parts in wsconform_adapter.py and
wsconform_interop.py): ``--persistent`` (or WSCONFORM_PERSISTENT=1) runs many cases in one process,
each with its own connection and event loop, the Close-frame record cleared between cases (§1).
Interop mode (WSCONFORM_INTEROP/WSCONFORM_PLAN, §2) originates the plan's messages: ``conn.ping(payload)``
sends the ping (Tornado's client does not hand pongs to the application, so it is not awaited);
``compression_options={}`` only when the plan asks, which offers Tornado's only client offer,
``permessage-deflate; client_max_window_bits``; ``conn.close(code, reason)`` closes, and the close
event then reports the code and reason of the server's answer.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from functools import partial
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketProtocol13,
    websocket_connect,
)

# The shared halves of the adapter (targets/_python/, linked here), found beside this file however it
# is started (python client.py, runpy, another working directory).
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from wsconform_adapter import (
    CaseRequest,
    emit,
    emit_message,
    fail,
    persistent_requested,
    run_per_case,
    serve_persistent,
)
from wsconform_interop import ConnectionEnded, Plan, PlannedMessage, play

SAFETY_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
NO_STATUS_RCVD = 1005
ABNORMAL_CLOSURE = 1006
OPCODE_CLOSE = 0x8

# Connections (Tornado handler objects) on which Tornado handled a Close frame from the server.
_close_frame_seen: set[int] = set()
_original_handle_message = WebSocketProtocol13._handle_message


def _observing_handle_message(self: WebSocketProtocol13, opcode: int, data: bytes) -> Any:
    if opcode == OPCODE_CLOSE and not self.client_terminated:
        _close_frame_seen.add(id(self.handler))
    return _original_handle_message(self, opcode, data)


WebSocketProtocol13._handle_message = _observing_handle_message  # type: ignore[method-assign]

async def run(url: str, protocols: list[str], max_size: int, delay: float = 0.0) -> None:
    try:
        conn: WebSocketClientConnection = await websocket_connect(
            url,
            connect_timeout=CONNECT_TIMEOUT,
            subprotocols=protocols or None,
            max_message_size=max_size,
            compression_options=None,
        )
    except Exception as exc:
        # HTTPClientError (non-101), StreamClosedError, OSError, TimeoutError; Tornado's own header
        # checks are asserts and dict look-ups, so AssertionError/KeyError/ValueError come out too.
        fail(f"{type(exc).__name__}: {exc}")
        return
    emit(
        "open",
        protocol=conn.selected_subprotocol or "",
        extensions=conn.headers.get("Sec-WebSocket-Extensions", "") if conn.headers else "",
    )
    error: str | None = None
    while True:
        message = await conn.read_message()
        if message is None:
            break
        if delay:
            await asyncio.sleep(delay)  # a slow consumer
        if isinstance(message, str):
            emit_message("text", message.encode("utf-8"))
        else:
            emit_message("binary", message)
        try:
            await conn.write_message(message, binary=isinstance(message, bytes))
        except (WebSocketClosedError, StreamClosedError) as exc:
            error = f"{type(exc).__name__}: sending the echo failed: {exc}"
            break
    if id(conn) in _close_frame_seen and error is None:
        code = conn.close_code if conn.close_code is not None else NO_STATUS_RCVD
        emit("close", code=code, reason=conn.close_reason or "", wasClean=True)
    else:
        conn.close()
        fail(error or "connection closed without a close frame (Tornado reports no error)")


# -- interop mode (docs/adapter-protocol.md §2) ------------------------------------------------------


class Interop:
    """Tornado's client connection as the ``wsconform_interop.Connection`` that ``play`` drives."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        self.conn = conn
        self.closed_by_us = False

    async def send(self, message: PlannedMessage) -> None:
        try:
            await self.conn.write_message(message.data, binary=message.type == "binary")
        except (WebSocketClosedError, StreamClosedError) as exc:
            raise ConnectionEnded from exc

    async def receive(self) -> tuple[str, bytes] | None:
        message = await self.conn.read_message()
        if message is None:
            return None
        return ("text", message.encode("utf-8")) if isinstance(message, str) else ("binary", message)

    async def ping(self, payload: bytes) -> None:
        try:
            self.conn.ping(payload)
        except WebSocketClosedError as exc:
            raise ConnectionEnded from exc

    async def close(self, code: int, reason: str) -> None:
        self.closed_by_us = True
        self.conn.close(code, reason)  # the reader gets None once the server's answer arrived

    def report_close(self) -> None:
        conn = self.conn
        answered = self.closed_by_us and conn.close_code is not None  # our Close, then the server's
        if id(conn) in _close_frame_seen or answered:
            code = conn.close_code if conn.close_code is not None else NO_STATUS_RCVD
            emit("close", code=code, reason=conn.close_reason or "", wasClean=True)
        else:
            conn.close()
            fail("connection closed without a close frame (Tornado reports no error)")


async def run_interop(url: str, protocols: list[str], plan: Plan, max_size: int) -> None:
    try:
        conn: WebSocketClientConnection = await websocket_connect(
            url,
            connect_timeout=CONNECT_TIMEOUT,
            subprotocols=protocols or None,
            max_message_size=max_size,
            compression_options={} if plan.deflate else None,
        )
    except Exception as exc:  # as in run(): Tornado's header checks raise assorted exceptions
        fail(f"{type(exc).__name__}: {exc}")
        return
    emit(
        "open",
        protocol=conn.selected_subprotocol or "",
        extensions=conn.headers.get("Sec-WebSocket-Extensions", "") if conn.headers else "",
    )
    interop = Interop(conn)
    await play(plan, interop, emit_message)
    interop.report_close()


# -- one case, either mode ---------------------------------------------------------------------------


def run_request(request: CaseRequest, max_size: int) -> None:
    """One case (per-case process or persistent line): the echo client, or the interop plan."""
    _close_frame_seen.clear()  # ids of an earlier case's connections may be reused
    if request.interop is not None:
        budget = request.interop.budget(SAFETY_TIMEOUT)
        coro = run_interop(request.url, request.protocols, request.interop, max_size)
    else:
        budget = SAFETY_TIMEOUT
        delay = request.echo_delay()  # slow-reader is the one scenario; any other is Unsupported (127)
        coro = run(request.url, request.protocols, max_size, delay)
    try:
        asyncio.run(asyncio.wait_for(coro, budget))
    except TimeoutError:
        fail(f"adapter safety timeout ({budget:g} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--url")
    ap.add_argument("--protocols", default="")
    ap.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    ap.add_argument("--persistent", action="store_true", help="cases on stdin (adapter-protocol §1)")
    args = ap.parse_args()
    run_one = partial(run_request, max_size=args.max_size)
    if persistent_requested():
        sys.exit(serve_persistent(run_one))
    sys.exit(run_per_case(run_one, args.url, args.protocols))


if __name__ == "__main__":
    main()
