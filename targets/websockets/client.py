"""wsconform client adapter for the `websockets` library (asyncio client).

The harness runs the peer as a server and starts this program once per case. It connects to the
given URL offering the given subprotocols, echoes every message with the same type, completes the
closing handshake, and reports what the library's API saw as JSON lines on stdout, so the harness can
judge the API (which close code and reason did the application see? was an error reported before the
close?) and not only the bytes. Contract (docs/architecture.md): events `open`, `message`, `error`,
`close`; exit 0 after `close`; exit 127 for an unsupported feature.

The extended contract (docs/adapter-protocol.md), with the shared parts in wsconform_adapter.py and
wsconform_interop.py:

* `--persistent` (or WSCONFORM_PERSISTENT=1): one process for many cases, a JSON case line per case on
  stdin, its events, then a `done` line (§1). Every case gets its own connection and event loop.
* Interop mode (WSCONFORM_INTEROP / WSCONFORM_PLAN, §2): the adapter originates the plan's messages
  instead of echoing; `ws.ping(payload)` sends the ping (and its pong is awaited); permessage-deflate is
  offered only when the plan asks, with the offer's parameters mapped onto
  `ClientPerMessageDeflateFactory` (websockets' default offer for a parameter it has no setting for).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
from functools import partial

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.extensions.base import ClientExtensionFactory
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.typing import Subprotocol

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
from wsconform_interop import PONG_TIMEOUT, ConnectionEnded, Plan, PlannedMessage, play

SAFETY_TIMEOUT = 30.0
DEFAULT_MAX_SIZE = 64 * 1024 * 1024


async def run(url: str, protocols: list[str], max_size: int, delay: float = 0.0) -> None:
    try:
        ws = await connect(
            url,
            subprotocols=[Subprotocol(p) for p in protocols] or None,
            compression="deflate",  # offers permessage-deflate (RFC 7692); the peer inflates
            max_size=max_size,
            ping_interval=None,
            open_timeout=10,
        )
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        emit("close", code=1006, reason="", wasClean=False)
        return
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
    emit("open", protocol=ws.subprotocol or "", extensions=extensions)
    try:
        async for message in ws:
            if delay:
                await asyncio.sleep(delay)  # a slow consumer: the library's queue fills, then the socket
            data = message.encode() if isinstance(message, str) else message
            emit(
                "message",
                type="text" if isinstance(message, str) else "binary",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            await ws.send(message)
    except ConnectionClosed:
        pass
    report_close(ws)


def report_close(ws: ClientConnection) -> None:
    """The close event as the API shows it: the server's Close frame, clean when Close went both ways."""
    received = ws.protocol.close_rcvd
    clean = received is not None and ws.protocol.close_sent is not None
    if not clean:
        emit("error", message=f"connection closed abnormally: {ws.close_reason or 'no close frame'}")
    code = received.code if received is not None else 1006
    emit("close", code=code, reason=received.reason if received is not None else "", wasClean=clean)


# -- interop mode (docs/adapter-protocol.md §2) ------------------------------------------------------


def deflate_offer(plan: Plan) -> list[ClientExtensionFactory] | None:
    """The permessage-deflate offer the plan asks for (None: offer nothing). websockets can make every
    parameter of RFC 7692 §7.1; an offer with any other parameter gets websockets' default offer."""
    if not plan.deflate:
        return None
    params = plan.offer_parameters() or {}
    known = {"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits",
             "client_max_window_bits"}  # fmt: skip
    if plan.deflate_offer is None or set(params) - known:
        return [ClientPerMessageDeflateFactory(compress_settings={"memLevel": 5})]  # the default offer
    client_bits = params.get("client_max_window_bits", "")
    server_bits = params.get("server_max_window_bits")
    return [
        ClientPerMessageDeflateFactory(
            server_no_context_takeover="server_no_context_takeover" in params,
            client_no_context_takeover="client_no_context_takeover" in params,
            server_max_window_bits=int(server_bits) if server_bits else None,
            client_max_window_bits=None if client_bits == "" else (int(client_bits) if client_bits else True),
            compress_settings={"memLevel": 5},
        )
    ]


class Interop:
    """websockets' connection as the ``wsconform_interop.Connection`` that ``play`` drives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: PlannedMessage) -> None:
        try:
            await self.ws.send(message.data)
        except ConnectionClosed as exc:
            raise ConnectionEnded from exc

    async def receive(self) -> tuple[str, bytes] | None:
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
            return None
        return ("text", message.encode()) if isinstance(message, str) else ("binary", message)

    async def ping(self, payload: bytes) -> None:
        try:
            pong = await self.ws.ping(payload)
            await asyncio.wait_for(pong, PONG_TIMEOUT)
        except ConnectionClosed as exc:
            raise ConnectionEnded from exc
        except TimeoutError:
            print("no pong within the timeout", file=sys.stderr)

    async def close(self, code: int, reason: str) -> None:
        await self.ws.close(code, reason)  # waits for the server's Close and the end of TCP


async def run_interop(url: str, protocols: list[str], plan: Plan, max_size: int) -> None:
    try:
        ws = await connect(
            url,
            subprotocols=[Subprotocol(p) for p in protocols] or None,
            compression=None,  # interop: permessage-deflate only when the plan asks (deflate_offer)
            extensions=deflate_offer(plan),
            max_size=max_size,
            ping_interval=None,
            open_timeout=10,
        )
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
        return
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
    emit("open", protocol=ws.subprotocol or "", extensions=extensions)
    await play(plan, Interop(ws), emit_message)
    report_close(ws)


# -- one case, either mode ---------------------------------------------------------------------------


def run_request(request: CaseRequest, max_size: int) -> None:
    """One case (per-case process or persistent line): the echo client, or the interop plan."""
    if request.interop is not None:
        plan = request.interop
        budget = plan.budget(SAFETY_TIMEOUT)
        coro = run_interop(request.url, request.protocols, plan, max_size)
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
