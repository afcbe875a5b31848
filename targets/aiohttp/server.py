"""wsconform server target: aiohttp (aiohttp.web WebSocketResponse).

Why this adapter is shaped the way it is:

* One catch-all GET route (``/{tail:.*}``) so any request path and query string
  reaches the WebSocket handler; non-upgrade requests get whatever aiohttp's
  ``WebSocketResponse.prepare`` does with them (HTTP 400).
* ``WebSocketResponse`` options:
  - ``protocols`` from ``--subprotocols``; aiohttp itself picks the first
    protocol in the *client's* order that is in this list and omits the header
    when none matches, which is exactly the harness contract;
  - ``compress=True`` (the default, spelled out): aiohttp negotiates
    permessage-deflate when the client offers it;
  - ``max_msg_size`` from ``--max-size`` (aiohttp default is 4 MiB);
  - ``heartbeat=None`` (no server pings) and ``autoping=True`` (aiohttp
    answers pings with pongs itself); both are the defaults, spelled out.
  - ``autoclose=True`` (default): aiohttp answers a Close frame itself.
* The close trigger (docs/adapter-protocol.md §2.3): the text message
  ``wsconform:close <code> <reason>`` is not echoed; ``ws.close(code=...,
  message=...)`` closes the connection with that code and reason instead.
* The loop calls ``receive()`` and echoes TEXT with ``send_str`` and BINARY
  with ``send_bytes``, awaiting each send before the next receive so order is
  kept. CLOSE/CLOSING/CLOSED/ERROR end the loop; aiohttp has already sent the
  close frame (with 1002/1007/1009... on protocol errors) by then. No extra
  validation is done here: we test the library, not the adapter.
* The server is run with ``web.AppRunner`` + ``web.TCPSite(host="127.0.0.1")``
  (not ``web.run_app``, which prints a banner to stdout and binds all
  interfaces by default). On SIGTERM/SIGINT open WebSockets are closed with
  1001 (aiohttp's documented graceful-shutdown pattern) within a short grace
  period and the process exits 0.

It prints ``ready`` once listening and logs to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import weakref
from collections.abc import Sequence

from aiohttp import WSCloseCode, WSMsgType, web

HOST = "127.0.0.1"
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
SHUTDOWN_GRACE = 0.5  # seconds for closing open WebSockets, then for handlers to finish

log = logging.getLogger("wsconform.target.aiohttp")

SUBPROTOCOLS: web.AppKey[tuple[str, ...]] = web.AppKey("subprotocols", tuple)
MAX_SIZE: web.AppKey[int] = web.AppKey("max_size", int)
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets", weakref.WeakSet)
TRIGGER = "wsconform:close "


def close_trigger(message: str) -> tuple[int, str] | None:
    """``(code, reason)`` of the close trigger, ``wsconform:close <code> <reason>`` (a text message;
    the reason is the rest after one space, possibly empty); None for any other message."""
    if not message.startswith(TRIGGER):
        return None
    code, _, reason = message[len(TRIGGER) :].partition(" ")
    return (int(code), reason) if code.isascii() and code.isdigit() else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="aiohttp echo server for wsconform")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subprotocols", default="", help="comma separated, may be empty")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    return parser.parse_args(argv)


def split_subprotocols(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


async def echo(request: web.Request) -> web.StreamResponse:
    subprotocols = request.app[SUBPROTOCOLS]
    # aiohttp refuses a message whose size is >= max_msg_size: + 1 accepts exactly --max-size bytes
    ws = web.WebSocketResponse(
        protocols=subprotocols,
        max_msg_size=request.app[MAX_SIZE] + 1,
        compress=True,
        autoping=True,
        heartbeat=None,
    )
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    try:
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT and (trigger := close_trigger(msg.data)) is not None:
                await ws.close(code=trigger[0], message=trigger[1].encode())
                break
            if msg.type is WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type is WSMsgType.ERROR:
                log.info("connection failed by aiohttp: %r (close code %s)", msg.data, ws.close_code)
                break
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
    except ConnectionError as exc:
        # The peer went away while we were sending; aiohttp already tore down the transport.
        log.info("connection lost while echoing: %r", exc)
    finally:
        sockets.discard(ws)
    return ws


async def close_open_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS]
    if not sockets:
        return
    tasks = [
        asyncio.create_task(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown"))
        for ws in list(sockets)
    ]
    _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)
    for task in pending:
        task.cancel()


def make_app(subprotocols: tuple[str, ...], max_size: int) -> web.Application:
    app = web.Application()
    app[SUBPROTOCOLS] = subprotocols
    app[MAX_SIZE] = max_size
    app[SOCKETS] = weakref.WeakSet()
    app.router.add_route("GET", "/{tail:.*}", echo)
    app.on_shutdown.append(close_open_sockets)
    return app


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    app = make_app(split_subprotocols(args.subprotocols), args.max_size)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    site = web.TCPSite(runner, host=HOST, port=args.port)
    await site.start()
    log.info("listening on %s:%d", HOST, args.port)
    print("ready", flush=True)

    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
