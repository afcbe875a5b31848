"""wsconform server adapter for $name: an echo server the harness starts once per worker.

The contract (docs/targets.md): listen on 127.0.0.1 at --port, accept any path, echo every message
with its own type (text as text, binary as binary), answer pings, complete the closing handshake,
print "ready" on stdout once listening (target.yaml says ready: stdout-line), log to stderr, exit on
SIGTERM. Offer the subprotocols in --subprotocols (the first one the client offers that you support,
none otherwise) and refuse messages larger than --max-size with close code 1009.

This skeleton is a working adapter for the `websockets` library. To test your own implementation,
replace `echo` and `run` with the same few lines written with your library's API; keep everything the
contract asks of the process itself (the port, "ready", SIGTERM, stderr for logs).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

HOST = "127.0.0.1"  # the harness only ever connects to loopback; never listen anywhere else

log = logging.getLogger("wsconform.target.$name")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="$name echo server for wsconform")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subprotocols", default="", help="comma separated, may be empty")
    parser.add_argument("--max-size", type=int, default=0, help="0: the library's default")
    return parser.parse_args(argv)


async def echo(ws: ServerConnection) -> None:
    """Every message back with its own type, in order; the library answers pings and closes."""
    try:
        async for message in ws:
            await ws.send(message)
    except ConnectionClosed:
        pass  # an abnormal closure: the library has done the closing work already


async def run(args: argparse.Namespace) -> None:
    supported = [p for p in args.subprotocols.split(",") if p]

    def select(_conn: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        # The first protocol in the client's order that we support; None sends no header at all.
        return next((p for p in offered if p in supported), None)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await serve(
        echo,
        HOST,
        args.port,
        select_subprotocol=select,
        max_size=args.max_size or 1024 * 1024,
        ping_interval=None,  # no keepalive pings of our own: they would show up in the cases' traces
    )
    print("ready", flush=True)  # target.yaml: ready: stdout-line
    log.info("listening on %s:%d", HOST, args.port)
    await stop.wait()
    server.close()
    try:
        async with asyncio.timeout(1.0):
            await server.wait_closed()
    except TimeoutError:
        log.warning("connections still open after 1 s; exiting anyway")


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run(parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
