"""wsconform server target: wsproto (sans-I/O) driven by a small asyncio loop.

wsproto has no server of its own, so this adapter is the minimal I/O glue
around ``WSConnection(ConnectionType.SERVER)`` that wsproto's documentation
describes, written with asyncio streams:

* Bytes read from the socket go to ``receive_data`` (``None`` on EOF) and the
  resulting events are handled in order:
  - ``Request`` -> ``AcceptConnection(subprotocol=..., extensions=[PerMessageDeflate()])``
    choosing the first protocol in the *client's* order that is in
    ``--subprotocols`` (None means no Sec-WebSocket-Protocol header). A fresh
    ``PerMessageDeflate()`` with wsproto's defaults is passed per connection
    (the object keeps per-connection state); wsproto matches it against the
    client's offers itself, so permessage-deflate is only used when offered.
  - ``TextMessage`` / ``BytesMessage`` -> buffered until ``message_finished``,
    then echoed as one message of the same type. Each echo is written and
    drained before more input is processed, so order is kept.
  - ``Ping`` -> ``event.response()`` (the Pong); ``Pong`` is ignored.
  - The close trigger (docs/adapter-protocol.md §2.3): the text message
    ``wsconform:close <code> <reason>`` is not echoed; ``CloseConnection(code,
    reason)`` is sent instead and the client's answer awaited as for any close.
  - ``CloseConnection`` -> ``event.response()`` is sent when wsproto's state
    still allows sending a close (peer close or a frame error that wsproto
    reports as a CloseConnection with 1002/1007...), then the TCP connection
    is closed; on EOF (wsproto reports 1006 and is already CLOSED) the
    transport is simply closed.
  - ``RemoteProtocolError`` during the HTTP handshake -> the rejection wsproto
    asks for (``exc.event_hint``) is sent, then the connection is closed.
* wsproto's defaults are kept. wsproto has **no maximum message size**: the
  ``--max-size`` option is accepted for interface compatibility and logged,
  but not enforced (the adapter adds no validation of its own; we test the
  library, not the adapter). wsproto also has no keepalive pings or timeouts.

It listens on 127.0.0.1 only, prints ``ready`` once listening, logs to stderr
and exits with status 0 on SIGTERM/SIGINT (open connections are sent a 1001
close frame, then dropped if they have not closed within a short grace).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

HOST = "127.0.0.1"
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
READ_SIZE = 65536
SHUTDOWN_GRACE = 1.0  # seconds given to connection tasks to finish on SIGTERM

log = logging.getLogger("wsconform.target.wsproto")
TRIGGER = "wsconform:close "


def close_trigger(message: str) -> tuple[int, str] | None:
    """``(code, reason)`` of the close trigger, ``wsconform:close <code> <reason>`` (a text message;
    the reason is the rest after one space, possibly empty); None for any other message."""
    if not message.startswith(TRIGGER):
        return None
    code, _, reason = message[len(TRIGGER) :].partition(" ")
    return (int(code), reason) if code.isascii() and code.isdigit() else None


class EchoConnection:
    """One TCP connection: feeds wsproto and writes what it produces."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, supported: tuple[str, ...]
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.supported = supported
        self.ws = WSConnection(ConnectionType.SERVER)
        self.text_parts: list[str] = []
        self.binary_parts: list[bytes] = []

    async def send(self, data: bytes) -> None:
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def run(self) -> None:
        try:
            while True:
                data = await self.reader.read(READ_SIZE)
                try:
                    self.ws.receive_data(data or None)
                except RemoteProtocolError as exc:
                    log.info("handshake rejected by wsproto: %s", exc)
                    if exc.event_hint is not None:
                        await self.send(self.ws.send(exc.event_hint))
                    return
                if not await self.handle_events() or not data:
                    return
        except ConnectionError as exc:
            log.info("connection lost: %r", exc)
        except LocalProtocolError as exc:
            # Only reachable after shutdown() started a close: wsproto refuses to
            # send further messages in LOCAL_CLOSING, so stop echoing.
            log.info("connection closing: %s", exc)
        finally:
            self.writer.close()
            with contextlib.suppress(ConnectionError):
                await self.writer.wait_closed()

    def shutdown(self) -> None:
        """Start a server-initiated close (1001) if the connection is open."""
        if self.ws.state is ConnectionState.OPEN:
            self.writer.write(self.ws.send(CloseConnection(code=1001, reason="server shutdown")))

    def abort(self) -> None:
        self.writer.transport.abort()

    async def handle_events(self) -> bool:
        """Handle pending wsproto events; return False once the connection must be closed."""
        for event in self.ws.events():
            if isinstance(event, Request):
                subprotocol = next((p for p in event.subprotocols if p in self.supported), None)
                accept = AcceptConnection(subprotocol=subprotocol, extensions=[PerMessageDeflate()])
                await self.send(self.ws.send(accept))
            elif isinstance(event, TextMessage):
                self.text_parts.append(event.data)
                if event.message_finished:
                    message = "".join(self.text_parts)
                    self.text_parts.clear()
                    if (trigger := close_trigger(message)) is not None:
                        await self.send(self.ws.send(CloseConnection(code=trigger[0], reason=trigger[1])))
                        continue
                    await self.send(self.ws.send(TextMessage(data=message)))
            elif isinstance(event, BytesMessage):
                self.binary_parts.append(bytes(event.data))
                if event.message_finished:
                    payload = b"".join(self.binary_parts)
                    self.binary_parts.clear()
                    await self.send(self.ws.send(BytesMessage(data=payload)))
            elif isinstance(event, Ping):
                await self.send(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                log.info("close: code=%s reason=%r state=%s", event.code, event.reason, self.ws.state.name)
                if self.ws.state is not ConnectionState.CLOSED:
                    await self.send(self.ws.send(event.response()))
                return False
            # Pong and anything else: nothing to do.
        return True


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="wsproto echo server for wsconform")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subprotocols", default="", help="comma separated, may be empty")
    parser.add_argument(
        "--max-size", type=int, default=DEFAULT_MAX_SIZE, help="accepted but not enforced: wsproto has none"
    )
    return parser.parse_args(argv)


def split_subprotocols(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    supported = split_subprotocols(args.subprotocols)
    live: set[EchoConnection] = set()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = EchoConnection(reader, writer, supported)
        live.add(conn)
        try:
            await conn.run()
        finally:
            live.discard(conn)

    server = await asyncio.start_server(on_client, HOST, args.port)
    log.info(
        "listening on %s:%d (wsproto has no max message size; --max-size %d not enforced)",
        HOST,
        args.port,
        args.max_size,
    )
    print("ready", flush=True)

    await stop.wait()
    log.info("shutting down")
    server.close()
    for conn in list(live):
        conn.shutdown()
    deadline = loop.time() + SHUTDOWN_GRACE
    while live and loop.time() < deadline:
        await asyncio.sleep(0.02)
    if live:
        log.warning("%d connection(s) still open after %.1fs; dropping them", len(live), SHUTDOWN_GRACE)
        for conn in list(live):
            conn.abort()
        await asyncio.sleep(0.05)  # let the connection tasks observe EOF and finish


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
