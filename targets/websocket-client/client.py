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

The extended contract (docs/adapter-protocol.md; shared parts in wsconform_adapter.py and
wsconform_interop.py): ``--persistent`` (or WSCONFORM_PERSISTENT=1) runs many cases in one process, a
fresh connection each (§1); there the watchdog shuts the case's socket down (the blocked read fails and
the case ends with its close event) instead of ending the process. Interop mode
(WSCONFORM_INTEROP/WSCONFORM_PLAN, §2) originates the plan's messages: a reader thread receives the
echoes while the main thread sends, ``ws.ping(payload)`` pings, ``ws.close(status, reason)`` closes (it
reads until the server's Close itself, so the reader stops after the last echo); a plan that asks for
permessage-deflate exits 127, websocket-client has no implementation of it.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import threading
import time

import websocket
from websocket import ABNF

# The shared halves of the adapter (targets/_python/, linked here), found beside this file however it
# is started (python client.py, runpy, another working directory).
sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from wsconform_adapter import (
    CaseRequest,
    Unsupported,
    emit,
    emit_message,
    fail,
    persistent_requested,
    run_per_case,
    serve_persistent,
)
from wsconform_interop import ConnectionEnded, Plan, PlannedMessage, play_sync

SAFETY_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0  # seconds to wait for the server's TCP close after the closing handshake
NO_STATUS_RCVD = 1005
ABNORMAL_CLOSURE = 1006
UNSUPPORTED = 127
CANNOT = {"permessage-deflate"}  # interop capabilities the library lacks (target.yaml interop.unsupported)

class Live:
    """The connection of the case in flight, for the watchdog (None between cases)."""

    ws: websocket.WebSocket | None = None


def watchdog(budget: float, persistent: bool) -> None:
    fail(f"adapter safety timeout ({budget:g} s)")
    if not persistent:
        os._exit(0)
    ws = Live.ws
    if ws is not None:  # the blocked read fails, and the case ends (nothing more is printed for it)
        ws.shutdown()  # type: ignore[no-untyped-call]


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
    Live.ws = ws
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


# -- interop mode (docs/adapter-protocol.md §2) ------------------------------------------------------


class Interop:
    """websocket-client's connection as the ``wsconform_interop.SyncConnection`` that ``play_sync``
    drives."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self.close_frame: tuple[int, str] | None = None  # the server's own Close (already answered)
        self.error: str | None = None

    def send(self, message: PlannedMessage) -> None:
        opcode = ABNF.OPCODE_TEXT if message.type == "text" else ABNF.OPCODE_BINARY
        try:
            self.ws.send(message.payload, opcode)
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionEnded from exc

    def _next(self, *, data: bool) -> tuple[str, bytes] | None:
        """The next data message (``data``), or None at the server's Close or a failure."""
        try:
            while True:
                opcode, frame = self.ws.recv_data_frame(control_frame=True)
                if data and opcode in (ABNF.OPCODE_TEXT, ABNF.OPCODE_BINARY):
                    return ("text" if opcode == ABNF.OPCODE_TEXT else "binary"), bytes(frame.data)
                if opcode == ABNF.OPCODE_CLOSE:  # recv_data_frame has answered it (send_close)
                    self.close_frame = close_info(frame)
                    return None
        except (websocket.WebSocketException, OSError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return None

    def receive(self) -> tuple[str, bytes] | None:
        return self._next(data=True)

    def ping(self, payload: bytes) -> None:
        try:
            self.ws.ping(payload)
        except (websocket.WebSocketException, OSError) as exc:
            raise ConnectionEnded from exc

    def close(self, code: int, reason: str) -> None:
        try:
            self.ws.close(status=code, reason=reason.encode())  # reads until the server's answer (3 s)
        except (websocket.WebSocketException, OSError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def wait_close(self) -> None:
        self._next(data=False)

    def report_close(self) -> None:
        answer = getattr(self.ws, "close_frame", None)  # the server's answer to ws.close(), if any
        if self.close_frame is not None:
            emit("close", code=self.close_frame[0], reason=self.close_frame[1], wasClean=True)
            wait_for_tcp_close(self.ws)
            return
        self.ws.shutdown()  # type: ignore[no-untyped-call]
        if answer is not None and self.error is None:
            code, reason = close_info(answer)
            emit("close", code=code, reason=reason, wasClean=True)
        else:
            fail(self.error or "connection closed without a close frame")


def run_interop(url: str, protocols: list[str], plan: Plan, budget: float) -> None:
    if plan.needs() & CANNOT:
        raise Unsupported(f"websocket-client cannot do {sorted(plan.needs() & CANNOT)}")
    try:
        ws = websocket.create_connection(url, subprotocols=protocols or None, timeout=CONNECT_TIMEOUT)
    except (websocket.WebSocketException, OSError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
        return
    Live.ws = ws
    headers = ws.getheaders() or {}
    emit("open", protocol=ws.getsubprotocol() or "", extensions=headers.get("sec-websocket-extensions", ""))
    ws.settimeout(budget)
    interop = Interop(ws)
    play_sync(plan, interop, emit_message, timeout=budget)
    interop.report_close()


# -- one case, either mode ---------------------------------------------------------------------------


def run_request(request: CaseRequest, persistent: bool = False) -> None:
    """One case (per-case process or persistent line): the echo client, or the interop plan, under the
    watchdog."""
    plan = request.interop
    budget = plan.budget(SAFETY_TIMEOUT) if plan is not None else SAFETY_TIMEOUT
    delay = request.echo_delay() if plan is None else 0.0  # slow-reader only; any other scenario: 127
    timer = threading.Timer(budget, watchdog, (budget, persistent))
    timer.daemon = True
    timer.start()
    try:
        if plan is not None:
            run_interop(request.url, request.protocols, plan, budget)
        else:
            run(request.url, request.protocols, delay)
    finally:
        timer.cancel()
        Live.ws = None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--url")
    ap.add_argument("--protocols", default="")
    ap.add_argument("--max-size", type=int, default=None, help="unsupported by websocket-client (exit 127)")
    ap.add_argument("--persistent", action="store_true", help="cases on stdin (adapter-protocol §1)")
    args = ap.parse_args()
    if args.max_size is not None:
        print("websocket-client has no maximum message size", file=sys.stderr)
        sys.exit(UNSUPPORTED)
    if persistent_requested():
        sys.exit(serve_persistent(lambda request: run_request(request, persistent=True)))
    sys.exit(run_per_case(run_request, args.url, args.protocols))


if __name__ == "__main__":
    main()
