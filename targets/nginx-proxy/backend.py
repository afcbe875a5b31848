"""The backend behind nginx in the nginx-proxy target: a websockets echo server.

It is configured exactly like the ``websockets`` target's server (targets/websockets/server.py) and
runs the same websockets version, so that comparing the two targets shows what the proxy changes:

* ``websockets.asyncio.server.serve`` with ``async for message in ws: await ws.send(message)``;
* subprotocol: the first one in the client's order that is supported, else no header;
* ``compression="deflate"`` (the library default, spelled out), ``max_size=--max-size``,
  ``ping_interval=None``; everything else at the library defaults;
* the close trigger (docs/adapter-protocol.md §2.3): the text message ``wsconform:close <code>
  <reason>`` is not echoed; ``ws.close(code, reason)`` closes with that code and reason instead (the
  Close frames pass through nginx like any other frame).

It listens on 127.0.0.1 only, logs to stderr and prints nothing on stdout (the entry script alone
says "ready", once nginx listens too). SIGTERM/SIGINT close open connections with 1001 and exit 0.
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
SHUTDOWN_GRACE = 1.0
TRIGGER = "wsconform:close "


def make_selector(
    supported: Sequence[str],
) -> Callable[[ServerConnection, Sequence[Subprotocol]], Subprotocol | None]:
    def select(_conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        return next((p for p in offered if p in supported), None)

    return select


def close_trigger(message: str | bytes) -> tuple[int, str] | None:
    """``(code, reason)`` of the close trigger, ``wsconform:close <code> <reason>`` (a text message;
    the reason is the rest after one space, possibly empty); None for any other message."""
    if not isinstance(message, str) or not message.startswith(TRIGGER):
        return None
    code, _, reason = message[len(TRIGGER) :].partition(" ")
    return (int(code), reason) if code.isascii() and code.isdigit() else None


async def echo(ws: ServerConnection) -> None:
    try:
        async for message in ws:
            if (trigger := close_trigger(message)) is not None:
                await ws.close(*trigger)
                break
            await ws.send(message)
    except ConnectionClosed:
        pass


async def run(port: int, subprotocols: list[str], max_size: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await serve(
        echo,
        HOST,
        port,
        select_subprotocol=make_selector(subprotocols),
        compression="deflate",
        max_size=max_size,
        ping_interval=None,
    )
    logging.info("backend listening on %s:%d", HOST, port)
    await stop.wait()
    server.close()
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE):
            await server.wait_closed()
    except TimeoutError:
        logging.warning("backend: connections still open after %.1f s; exiting", SHUTDOWN_GRACE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="websockets echo backend for the nginx-proxy target")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subprotocols", default="")
    parser.add_argument("--max-size", type=int, default=64 * 1024 * 1024)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s backend: %(message)s"
    )
    protocols = [p.strip() for p in args.subprotocols.split(",") if p.strip()]
    asyncio.run(run(args.port, protocols, args.max_size or 64 * 1024 * 1024))
    return 0


if __name__ == "__main__":
    sys.exit(main())
