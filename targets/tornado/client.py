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
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from typing import Any

from tornado.iostream import StreamClosedError
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketProtocol13,
    websocket_connect,
)

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

_closed = False


def emit(event: str, **fields: Any) -> None:
    """Print one event; nothing after the close event (the safety timeout may race a late close)."""
    global _closed
    if _closed:
        return
    _closed = event == "close"
    print(json.dumps({"event": event, **fields}), flush=True)


def emit_message(kind: str, data: bytes) -> None:
    emit("message", type=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def fail(message: str) -> None:
    emit("error", message=message)
    emit("close", code=ABNORMAL_CLOSURE, reason="", wasClean=False)


def slow_reader_delay() -> float:
    """Seconds to sleep before handling each message: WSCONFORM_SCENARIO=slow-reader (a slow consumer,
    WSCONFORM_DELAY_MS per message); no scenario: 0; any other scenario is unsupported (exit 127).
    """
    scenario = os.environ.get("WSCONFORM_SCENARIO")
    if not scenario:
        return 0.0
    if scenario != "slow-reader":
        sys.exit(127)  # no other scenario (API-level calls) is implemented in this adapter
    return int(os.environ.get("WSCONFORM_DELAY_MS") or 0) / 1000


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


def main() -> None:
    delay = slow_reader_delay()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--url", required=True)
    ap.add_argument("--protocols", default="")
    ap.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    args = ap.parse_args()
    protocols = [p for p in args.protocols.split(",") if p]
    try:
        asyncio.run(asyncio.wait_for(run(args.url, protocols, args.max_size, delay), SAFETY_TIMEOUT))
    except TimeoutError:
        fail(f"adapter safety timeout ({SAFETY_TIMEOUT:g} s)")
    sys.exit(0)


if __name__ == "__main__":
    main()
