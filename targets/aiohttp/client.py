"""wsconform client adapter for aiohttp (``ClientSession.ws_connect``).

The harness runs the peer as a server and starts this program once per case. It connects to the
given URL offering the given subprotocols, echoes every message with the same type, completes the
closing handshake, and reports what aiohttp's API saw as JSON lines on stdout. Contract
(docs/architecture.md): events ``open``, ``message``, ``error``, ``close``; exit 0 after ``close``;
exit 127 for an unsupported feature.

How aiohttp's API maps onto the events:

* ``ws_connect(url, protocols=..., autoping=True, autoclose=True, compress=0, max_msg_size=...)``:
  no permessage-deflate offer; aiohttp answers pings and a server Close itself (defaults, spelled
  out). A failed handshake raises ``WSServerHandshakeError`` (a ``ClientError``); a refused or dropped
  TCP connection raises another ``ClientError``/``OSError``: error, then close 1006.
* ``receive()`` returns TEXT/BINARY (echoed with ``send_str``/``send_bytes``, awaited before the next
  ``receive``), CLOSE (the server's Close frame: ``data`` is its code, ``extra`` its reason; aiohttp
  has already answered it), ERROR (aiohttp failed the connection: it sent a Close with 1002/1007/1009
  and dropped TCP without reading the server's answer), or CLOSED (TCP ended without a Close frame).
* A Close frame without a status code is delivered as CLOSE with ``data`` 0; reported as 1005.
* A TCP close without a Close frame is delivered as CLOSED, and aiohttp then sets ``close_code``
  to 1000 (EofStream) or 1006 (ClientError); neither is a received Close frame, so the adapter
  reports 1006, wasClean false, after an error event.

The extended contract (docs/adapter-protocol.md; shared parts in wsconform_adapter.py and
wsconform_interop.py): ``--persistent`` (or WSCONFORM_PERSISTENT=1) runs many cases in one process,
each with its own ClientSession and event loop (§1); interop mode (WSCONFORM_INTEROP/WSCONFORM_PLAN, §2)
originates the plan's messages. In interop mode ``ws.ping(payload)`` sends the ping (aiohttp hides the
pong with autoping, so it is not awaited); permessage-deflate is offered only when the plan asks
(``compress=15``, or the offer's ``server_max_window_bits``: aiohttp's client has no other setting);
``ws.close(code=..., message=...)`` closes, and since aiohttp keeps only the *code* of the server's
answer to it, that close event reports an empty reason.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from functools import partial

import aiohttp
from aiohttp import WSMsgType

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
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
NO_STATUS_RCVD = 1005
ABNORMAL_CLOSURE = 1006


async def run(url: str, protocols: list[str], max_size: int, delay: float = 0.0) -> None:
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                url, protocols=protocols, autoping=True, autoclose=True, compress=0, max_msg_size=max_size
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            fail(f"{type(exc).__name__}: {exc}")
            return
        # aiohttp has no public accessor for the 101 response's headers; _response is the ClientResponse.
        emit(
            "open",
            protocol=ws.protocol or "",
            extensions=ws._response.headers.get("Sec-WebSocket-Extensions", ""),
        )
        error: str | None = None
        try:
            while True:
                msg = await ws.receive()
                if delay and msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await asyncio.sleep(delay)  # a slow consumer
                if msg.type is WSMsgType.TEXT:
                    emit_message("text", msg.data.encode("utf-8"))
                    await ws.send_str(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    emit_message("binary", msg.data)
                    await ws.send_bytes(msg.data)
                elif msg.type is WSMsgType.CLOSE:
                    # autoclose: aiohttp has already sent its Close answer (1000) inside receive().
                    code = msg.data or NO_STATUS_RCVD
                    emit("close", code=code, reason=msg.extra or "", wasClean=True)
                    return
                elif msg.type is WSMsgType.ERROR:
                    error = f"{type(msg.data).__name__}: {msg.data} (aiohttp close code {ws.close_code})"
                    break
                else:  # CLOSED / CLOSING: the TCP connection ended without a Close frame.
                    error = f"connection closed without a close frame (aiohttp close code {ws.close_code})"
                    break
        except (aiohttp.ClientError, OSError) as exc:  # sending the echo failed
            error = f"{type(exc).__name__}: {exc}"
        await ws.close()
        fail(error)


# -- interop mode (docs/adapter-protocol.md §2) ------------------------------------------------------


def window_bits(plan: Plan) -> int:
    """aiohttp's ``compress`` for the plan: 0 (no offer) unless the plan asks; aiohttp's client offer is
    ``permessage-deflate; client_max_window_bits`` plus ``server_max_window_bits=N`` for N < 15."""
    if not plan.deflate:
        return 0
    bits = (plan.offer_parameters() or {}).get("server_max_window_bits")
    return int(bits) if bits and bits.isdigit() and 9 <= int(bits) <= 15 else 15


class Interop:
    """aiohttp's connection as the ``wsconform_interop.Connection`` that ``play`` drives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.close_frame: tuple[int, str] | None = None  # the server's Close (its own, not an answer)
        self.error: str | None = None
        self.closed_by_us = False

    async def send(self, message: PlannedMessage) -> None:
        try:
            if message.type == "text":
                await self.ws.send_str(message.payload.decode())
            else:
                await self.ws.send_bytes(message.payload)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise ConnectionEnded from exc

    async def receive(self) -> tuple[str, bytes] | None:
        msg = await self.ws.receive()
        if msg.type is WSMsgType.TEXT:
            return "text", msg.data.encode("utf-8")
        if msg.type is WSMsgType.BINARY:
            return "binary", msg.data
        if msg.type is WSMsgType.CLOSE:  # autoclose: aiohttp has answered it inside receive()
            self.close_frame = (msg.data or NO_STATUS_RCVD, msg.extra or "")
        elif msg.type is WSMsgType.ERROR:
            self.error = f"{type(msg.data).__name__}: {msg.data} (aiohttp close code {self.ws.close_code})"
        elif msg.type is not WSMsgType.CLOSING or not self.closed_by_us:
            self.error = f"connection closed without a close frame (aiohttp close code {self.ws.close_code})"
        return None

    async def ping(self, payload: bytes) -> None:
        try:
            await self.ws.ping(payload)
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise ConnectionEnded from exc

    async def close(self, code: int, reason: str) -> None:
        self.closed_by_us = True
        await self.ws.close(code=code, message=reason.encode())

    def report_close(self) -> None:
        if self.close_frame is not None:
            emit("close", code=self.close_frame[0], reason=self.close_frame[1], wasClean=True)
        elif self.closed_by_us and self.ws.close_code not in (None, ABNORMAL_CLOSURE) and self.error is None:
            emit("close", code=self.ws.close_code, reason="", wasClean=True)  # aiohttp keeps no reason
        else:
            fail(self.error or f"connection failed (aiohttp close code {self.ws.close_code})")


async def run_interop(url: str, protocols: list[str], plan: Plan, max_size: int) -> None:
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                url, protocols=protocols, autoping=True, autoclose=True, compress=window_bits(plan),
                max_msg_size=max_size,
            )  # fmt: skip
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            fail(f"{type(exc).__name__}: {exc}")
            return
        emit(
            "open",
            protocol=ws.protocol or "",
            extensions=ws._response.headers.get("Sec-WebSocket-Extensions", ""),
        )
        conn = Interop(ws)
        await play(plan, conn, emit_message)
        conn.report_close()


# -- one case, either mode ---------------------------------------------------------------------------


def run_request(request: CaseRequest, max_size: int) -> None:
    """One case (per-case process or persistent line): the echo client, or the interop plan."""
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
