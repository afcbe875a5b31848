"""wsconform client adapter for websocket-client (``websocket.create_connection``, synchronous).

The harness runs the peer as a server and starts this program once per case. It connects to the
given URL offering the given subprotocols, echoes every message with the same type, completes the
closing handshake, and reports what websocket-client's API saw as JSON lines on stdout. Contract
(docs/architecture.md): events ``open``, ``message``, ``error``, ``close``; exit 0 after ``close``;
exit 127 for an unsupported feature.

How websocket-client's API maps onto the events:

* ``create_connection(url, subprotocols=..., timeout=10)``: websocket-client implements no
  extension, so nothing is offered. A failed handshake raises (``WebSocketBadStatusException`` for
  a non-101 status, ``WebSocketException("Invalid WebSocket Header")`` for a bad 101, an
  ``OSError`` for TCP): error, then close 1006.
* ``recv_data_frame(control_frame=True)`` returns ``(opcode, frame)`` for whole messages (the
  library reassembles fragments and checks UTF-8), pings (already answered with a pong by the
  library), pongs and the server's Close frame (already answered by the library with a Close
  carrying 1000). Messages are echoed with ``send(data, opcode)`` before the next read.
* The close code and reason come from the server's Close frame payload: the first two bytes, big
  endian, then UTF-8; an empty payload is reported as 1005. Clean close: wasClean true, then the
  adapter waits (at most 5 s) for the server to close TCP, as RFC 6455 §7.1.1 suggests.
* An exception while receiving (``WebSocketProtocolException`` / ``WebSocketPayloadException`` for a
  frame the library refuses, ``WebSocketConnectionClosedException`` when TCP ends without a Close
  frame) is reported as an error event; the adapter then does what websocket-client's own
  ``WebSocketApp`` teardown does: ``ws.close()`` (a 1000 Close, then up to 3 s for the server's
  Close frame). The close event is clean only if the server's Close frame arrived then; otherwise
  close 1006, wasClean false.
* websocket-client has no maximum message size: ``--max-size`` is unsupported (exit 127 when given).
* The library is synchronous: a watchdog thread enforces the 30 s safety timeout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import threading
import time
from typing import Any

import websocket
from websocket import ABNF

SAFETY_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0  # seconds to wait for the server's TCP close after the closing handshake
NO_STATUS_RCVD = 1005
ABNORMAL_CLOSURE = 1006
UNSUPPORTED = 127

_lock = threading.RLock()
_closed = False


def emit(event: str, **fields: Any) -> None:
    """Print one event; nothing after the close event (the watchdog may race a late close)."""
    global _closed
    with _lock:
        if _closed:
            return
        _closed = event == "close"
        print(json.dumps({"event": event, **fields}), flush=True)


def emit_message(kind: str, data: bytes) -> None:
    emit("message", type=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest())


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


def fail(message: str | None) -> None:
    """Error (unless one was already reported: message None), then close 1006, never split."""
    with _lock:
        if message is not None:
            emit("error", message=message)
        emit("close", code=ABNORMAL_CLOSURE, reason="", wasClean=False)


def watchdog() -> None:
    fail(f"adapter safety timeout ({SAFETY_TIMEOUT:g} s)")
    os._exit(0)


def close_info(frame: ABNF) -> tuple[int, str]:
    """Code and reason of a Close frame as the API receives it (1005 without a status code)."""
    data = frame.data if isinstance(frame.data, bytes) else str(frame.data).encode("utf-8")
    if len(data) < 2:
        return NO_STATUS_RCVD, ""
    return struct.unpack("!H", data[:2])[0], data[2:].decode("utf-8", "replace")


def wait_for_tcp_close(ws: websocket.WebSocket) -> None:
    deadline = time.monotonic() + CLOSE_TIMEOUT
    sock = ws.sock
    try:
        while sock is not None and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                break
    except OSError:
        pass
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]


def run(url: str, protocols: list[str], delay: float = 0.0) -> None:
    try:
        ws = websocket.create_connection(url, subprotocols=protocols or None, timeout=CONNECT_TIMEOUT)
    except (websocket.WebSocketException, OSError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
        return
    headers = ws.getheaders() or {}
    emit("open", protocol=ws.getsubprotocol() or "", extensions=headers.get("sec-websocket-extensions", ""))
    ws.settimeout(SAFETY_TIMEOUT)
    try:
        while True:
            opcode, frame = ws.recv_data_frame(control_frame=True)
            if delay and opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                time.sleep(delay)  # a slow consumer: nothing is read meanwhile (a synchronous client)
            if opcode == ABNF.OPCODE_TEXT:
                emit_message("text", bytes(frame.data))
                ws.send(frame.data, ABNF.OPCODE_TEXT)
            elif opcode == ABNF.OPCODE_BINARY:
                emit_message("binary", bytes(frame.data))
                ws.send(frame.data, ABNF.OPCODE_BINARY)
            elif opcode == ABNF.OPCODE_CLOSE:
                # recv_data_frame has already answered with send_close() (1000).
                code, reason = close_info(frame)
                emit("close", code=code, reason=reason, wasClean=True)
                wait_for_tcp_close(ws)
                return
            # PING (already answered by the library) and PONG: nothing to report.
    except (websocket.WebSocketException, OSError) as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
    # What WebSocketApp's teardown does: a 1000 Close, then up to 3 s for the server's Close frame.
    try:
        ws.close()
    except (websocket.WebSocketException, OSError):
        pass
    finally:
        ws.shutdown()  # type: ignore[no-untyped-call]
    close_frame = getattr(ws, "close_frame", None)  # the server's answer to ws.close(), if any
    if close_frame is not None:
        code, reason = close_info(close_frame)
        emit("close", code=code, reason=reason, wasClean=True)
    else:
        fail(None)


def main() -> None:
    delay = slow_reader_delay()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--url", required=True)
    ap.add_argument("--protocols", default="")
    ap.add_argument("--max-size", type=int, default=None, help="unsupported by websocket-client (exit 127)")
    args = ap.parse_args()
    if args.max_size is not None:
        print("websocket-client has no maximum message size", file=sys.stderr)
        sys.exit(UNSUPPORTED)
    protocols = [p for p in args.protocols.split(",") if p]
    timer = threading.Timer(SAFETY_TIMEOUT, watchdog)
    timer.daemon = True
    timer.start()
    run(args.url, protocols, delay)
    timer.cancel()
    sys.exit(0)


if __name__ == "__main__":
    main()
