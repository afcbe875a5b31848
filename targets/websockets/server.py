"""wsconform server target: websockets (new asyncio implementation).

Why this adapter is shaped the way it is:

* It uses ``websockets.asyncio.server.serve``, the maintained asyncio
  implementation, not the deprecated ``websockets.legacy`` one.
* The handler is ``async for message in ws: await ws.send(message)``: text
  frames arrive as ``str`` and binary frames as ``bytes``, and ``send`` keeps
  the type, so every message is echoed byte-exact with its own opcode. Each
  send is awaited before the next message is read, so order is kept and the
  library's own write back-pressure applies.
* ``select_subprotocol`` is replaced: websockets' default picks in *server*
  preference order and rejects the handshake (HTTP 400) when the client offers
  none or none matches. The harness contract is "first protocol offered by the
  client that we support, otherwise no Sec-WebSocket-Protocol header".
* ``compression="deflate"`` (the library default, spelled out) enables
  permessage-deflate with websockets' default server settings
  (server_max_window_bits=12, client_max_window_bits=12, memLevel 5). It is
  only negotiated when the client offers it; websockets picks the first
  acceptable permessage-deflate offer and declines the others.
* ``ping_interval=None`` disables keepalive pings (the default 20 s ping and
  20 s pong timeout could close a slow 60 s case).
* ``max_size`` comes from ``--max-size`` (library default is 1 MiB).
* The close trigger (docs/adapter-protocol.md §2.3): the text message
  ``wsconform:close <code> <reason>`` is not echoed; ``ws.close(code, reason)``
  closes the connection with that code and reason instead.
* Everything else (open_timeout, close_timeout, max_queue, origins, frame and
  UTF-8 validation, closing behaviour) is left at the library defaults: we
  test the library, not the adapter.

It listens on 127.0.0.1 only, prints ``ready`` once listening, logs to stderr
and exits with status 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

HOST = "127.0.0.1"
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
SHUTDOWN_GRACE = 1.0  # seconds given to open connections to close on SIGTERM

log = logging.getLogger("wsconform.target.websockets")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="websockets echo server for wsconform")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subprotocols", default="", help="comma separated, may be empty")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    return parser.parse_args(argv)


def split_subprotocols(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def make_selector(
    supported: Sequence[str],
) -> Callable[[ServerConnection, Sequence[Subprotocol]], Subprotocol | None]:
    def select(_conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        # First protocol in the *client's* order that we support; None means
        # "no Sec-WebSocket-Protocol header" instead of websockets' HTTP 400.
        for protocol in offered:
            if protocol in supported:
                return protocol
        return None

    return select


LIVE: set[ServerConnection] = set()
TRIGGER = "wsconform:close "


def close_trigger(message: str | bytes) -> tuple[int, str] | None:
    """``(code, reason)`` of the close trigger, ``wsconform:close <code> <reason>`` (a text message;
    the reason is the rest after one space, possibly empty); None for any other message."""
    if not isinstance(message, str) or not message.startswith(TRIGGER):
        return None
    code, _, reason = message[len(TRIGGER) :].partition(" ")
    return (int(code), reason) if code.isascii() and code.isdigit() else None


async def echo(ws: ServerConnection) -> None:
    LIVE.add(ws)
    try:
        async for message in ws:
            if (trigger := close_trigger(message)) is not None:
                await ws.close(*trigger)
                break
            await ws.send(message)
    except ConnectionClosed:
        # Abnormal closure (protocol error, dropped TCP...): the library has
        # already done the closing work; nothing left to do here.
        pass
    finally:
        LIVE.discard(ws)


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    server = await serve(
        echo,
        HOST,
        args.port,
        select_subprotocol=make_selector(split_subprotocols(args.subprotocols)),
        compression="deflate",
        max_size=args.max_size,
        ping_interval=None,
    )
    log.info("listening on %s:%d", HOST, args.port)
    print("ready", flush=True)

    await stop.wait()
    log.info("shutting down")
    server.close()  # stop listening, close open connections with 1001
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE):
            await server.wait_closed()
    except TimeoutError:
        # A peer that never answers the 1001 would otherwise hold us for
        # close_timeout (10 s); drop its TCP connection instead.
        log.warning("%d connection(s) still open after %.1fs; dropping them", len(LIVE), SHUTDOWN_GRACE)
        for ws in list(LIVE):
            ws.transport.abort()
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE):
                await server.wait_closed()
        except TimeoutError:
            log.warning("server did not finish closing; exiting anyway")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
