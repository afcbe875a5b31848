"""wsconform server target: Tornado (tornado.websocket.WebSocketHandler).

Why this adapter is shaped the way it is:

* A single ``WebSocketHandler`` on the catch-all route ``r"/.*"`` so any path
  and query string is accepted (Tornado routes on the path only).
* ``on_message`` is a coroutine that awaits ``write_message``: Tornado does not
  deliver the next message until the coroutine returned by ``on_message``
  finishes, so echoes keep their order and Tornado's write flow control
  applies. Text arrives as ``str`` and is written back as text (UTF-8);
  binary arrives as ``bytes`` and is written back with ``binary=True``.
* ``select_subprotocol`` returns the first protocol in the *client's* order that
  is in ``--subprotocols``, or None (Tornado then sends no header). Tornado's
  default selects nothing.
* ``check_origin`` returns True: Tornado's default rejects (403) any Origin
  whose host differs from the Host header, which would reject browser-like
  conformance clients; origin policy is not what we test.
* ``get_compression_options`` returns ``{}``: permessage-deflate is enabled
  with Tornado's default compression settings (the default, None, disables
  it). Tornado only negotiates it when the client offers it.
* Application settings: ``websocket_max_message_size`` from ``--max-size``
  (default 10 MiB) and ``websocket_ping_interval=0`` (explicitly no keepalive
  pings; same effect as the default None).
* The close trigger (docs/adapter-protocol.md §2.3): the text message
  ``wsconform:close <code> <reason>`` is not echoed; ``self.close(code, reason)``
  closes the connection with that code and reason instead.
* No other validation or close handling is added: Tornado answers pings, echoes
  the close code on a client close, and on protocol errors mostly *aborts* the
  TCP connection without a close frame; that is the library's behaviour and
  is what the harness should observe.

It listens on 127.0.0.1 only, prints ``ready`` once listening, logs to stderr
and exits with status 0 on SIGTERM/SIGINT (open connections are sent 1001).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import tornado.web
from tornado.websocket import WebSocketClosedError, WebSocketHandler

HOST = "127.0.0.1"
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
SHUTDOWN_GRACE = 1.0  # seconds given to open connections to close on SIGTERM

log = logging.getLogger("wsconform.target.tornado")
TRIGGER = "wsconform:close "


def close_trigger(message: str | bytes) -> tuple[int, str] | None:
    """``(code, reason)`` of the close trigger, ``wsconform:close <code> <reason>`` (a text message;
    the reason is the rest after one space, possibly empty); None for any other message."""
    if not isinstance(message, str) or not message.startswith(TRIGGER):
        return None
    code, _, reason = message[len(TRIGGER) :].partition(" ")
    return (int(code), reason) if code.isascii() and code.isdigit() else None


class EchoHandler(WebSocketHandler):
    supported: tuple[str, ...]
    live: set[EchoHandler]

    def initialize(self, supported: tuple[str, ...], live: set[EchoHandler]) -> None:
        self.supported = supported
        self.live = live

    def check_origin(self, origin: str) -> bool:
        return True

    def get_compression_options(self) -> dict[str, Any] | None:
        # {} = permessage-deflate with Tornado's defaults; None (the default) disables it.
        return {}

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        for protocol in subprotocols:
            if protocol in self.supported:
                return protocol
        return None

    def open(self, *args: str, **kwargs: str) -> None:
        self.live.add(self)

    async def on_message(self, message: str | bytes) -> None:
        if (trigger := close_trigger(message)) is not None:
            self.close(*trigger)
            return
        try:
            await self.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            # The connection started closing (or was aborted) while we echoed.
            log.info("connection closed before echo could be written")

    def on_close(self) -> None:
        self.live.discard(self)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Tornado echo server for wsconform")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subprotocols", default="", help="comma separated, may be empty")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    return parser.parse_args(argv)


def split_subprotocols(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    live: set[EchoHandler] = set()
    app = tornado.web.Application(
        [(r"/.*", EchoHandler, {"supported": split_subprotocols(args.subprotocols), "live": live})],
        websocket_max_message_size=args.max_size,
        websocket_ping_interval=0,
    )
    server = app.listen(args.port, address=HOST)
    log.info("listening on %s:%d", HOST, args.port)
    print("ready", flush=True)

    await stop.wait()
    log.info("shutting down")
    server.stop()
    for handler in list(live):
        handler.close(1001, "server shutdown")
    deadline = loop.time() + SHUTDOWN_GRACE
    while live and loop.time() < deadline:
        await asyncio.sleep(0.02)
    if live:
        log.warning("%d connection(s) still open after %.1fs; exiting anyway", len(live), SHUTDOWN_GRACE)
    await server.close_all_connections()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
