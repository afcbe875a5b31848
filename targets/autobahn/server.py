"""wsconform server target: Autobahn|Python, asyncio flavour.

Why this adapter is shaped the way it is:

* ``autobahn.asyncio.websocket.WebSocketServerProtocol`` served by
  ``loop.create_server`` on 127.0.0.1 with a ``WebSocketServerFactory``.
  The factory gets no URL and no ``externalPort``, so Autobahn skips its
  Host-header port check and accepts any request path and query string.
* ``onConnect`` returns the first protocol in the *client's* order
  (``request.protocols``) that is in ``--subprotocols``, else None (no
  Sec-WebSocket-Protocol header). Autobahn's default selects nothing.
* ``onMessage`` calls ``sendMessage(payload, isBinary)``. Autobahn hands text
  messages over as the raw UTF-8 bytes (already validated because
  ``utf8validateIncoming`` stays on), so the echo is byte-exact and keeps the
  opcode. ``sendMessage`` is synchronous (it writes to the transport before
  returning) and Autobahn delivers messages one at a time, so order is kept.
  Autobahn's asyncio flavour has no producer/back-pressure API.
* Factory options changed from the defaults (all also listed in target.yaml):
  - ``maxFramePayloadSize`` / ``maxMessagePayloadSize`` = ``--max-size``
    (default 0 = unlimited), so the harness's size policy applies;
  - ``autoFragmentSize=0`` (the default, spelled out): echoes go out as one
    frame;
  - ``perMessageCompressionAccept=accept_deflate``: the default refuses
    every offer; this one accepts the first ``PerMessageDeflateOffer`` with
    ``PerMessageDeflateOfferAccept(offer)`` and the library's defaults for
    every other setting (Autobahn's documented pattern), so
    permessage-deflate is negotiated when the client offers it. Parsing and
    validating the offers stays Autobahn's;
  - ``allowNullOrigin=True``: this *is* the factory default, but
    ``setProtocolOptions()`` resets it to False whenever it is called without
    it, so it must be passed to keep the default;
  - autoPingInterval stays 0 (no keepalive); openHandshakeTimeout (5 s),
    closeHandshakeTimeout (1 s), failByDrop, requireMaskedClientFrames,
    utf8validateIncoming, echoCloseCodeReason... all stay at their defaults.
* No extra validation: Autobahn answers pings, replies to Close frames and
  fails the connection on protocol errors by itself.
* The close trigger (docs/adapter-protocol.md §2.3): the text message
  ``wsconform:close <code> <reason>`` is not echoed; ``sendClose(code, reason)``
  closes with that code and reason instead. Autobahn's ``sendClose`` accepts
  only 1000 and 3000-4999 (the codes an application may choose, as in the
  WHATWG API); for any other code the adapter logs the refusal and sends the
  Close frame with ``sendCloseFrame``, the internal method ``sendClose`` itself
  ends in (same state change and close-handshake timer), so an interop scenario
  still sees the code it asked for.

It prints ``ready`` once listening, logs to stderr (txaio loggers go through
the standard ``logging`` module; ``txaio.start_logging`` is not called because
it defaults to stdout) and exits with status 0 on SIGTERM/SIGINT after sending
a close frame to open connections (code 1000: Autobahn's public ``sendClose``
refuses 1001).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

# autobahn.asyncio.websocket calls txaio.use_asyncio() itself on import.
from autobahn.asyncio.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.types import ConnectionRequest

HOST = "127.0.0.1"
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
SHUTDOWN_GRACE = 1.0  # seconds given to open connections to close on SIGTERM

log = logging.getLogger("wsconform.target.autobahn")
TRIGGER = b"wsconform:close "


def close_trigger(payload: bytes, is_binary: bool) -> tuple[int, str] | None:
    """``(code, reason)`` of the close trigger, ``wsconform:close <code> <reason>`` (a text message;
    the reason is the rest after one space, possibly empty); None for any other message."""
    if is_binary or not payload.startswith(TRIGGER):
        return None
    code, _, reason = payload[len(TRIGGER) :].partition(b" ")
    return (int(code), reason.decode("utf-8")) if code.isdigit() else None


def accept_deflate(offers: Sequence[object]) -> PerMessageDeflateOfferAccept | None:
    """Accept the client's first permessage-deflate offer with Autobahn's defaults."""
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)  # type: ignore[no-untyped-call]
    return None


class EchoProtocol(WebSocketServerProtocol):
    factory: EchoFactory

    def onConnect(self, request: ConnectionRequest) -> str | None:
        for protocol in request.protocols:
            if protocol in self.factory.supported:
                return str(protocol)
        return None

    def onOpen(self) -> None:
        self.factory.live.add(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        trigger = close_trigger(payload, isBinary)
        if trigger is not None:
            self.close_as_asked(*trigger)
            return
        self.sendMessage(payload, isBinary)  # type: ignore[no-untyped-call]

    def close_as_asked(self, code: int, reason: str) -> None:
        try:
            self.sendClose(code=code, reason=reason)
        except Exception as exc:  # Autobahn raises a bare Exception for a code it refuses
            log.info("sendClose(%d) refused (%s); sending the Close frame with sendCloseFrame", code, exc)
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8"), isReply=False)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.live.discard(self)


class EchoFactory(WebSocketServerFactory):
    """Factory carrying the adapter's configuration and the set of open connections."""

    protocol = EchoProtocol

    def __init__(self, supported: tuple[str, ...]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.supported = supported
        self.live: set[EchoProtocol] = set()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Autobahn|Python (asyncio) echo server for wsconform")
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

    factory = EchoFactory(split_subprotocols(args.subprotocols))
    factory.setProtocolOptions(  # type: ignore[no-untyped-call]
        maxFramePayloadSize=args.max_size,
        maxMessagePayloadSize=args.max_size,
        autoFragmentSize=0,
        allowNullOrigin=True,
        perMessageCompressionAccept=accept_deflate,
    )
    server = await loop.create_server(factory, HOST, args.port)
    log.info("listening on %s:%d", HOST, args.port)
    print("ready", flush=True)

    await stop.wait()
    log.info("shutting down")
    server.close()
    for proto in list(factory.live):
        # Autobahn's public sendClose() only accepts 1000 or 3000-4999 (no 1001 "going away").
        proto.sendClose(code=1000, reason="server shutdown")
    deadline = loop.time() + SHUTDOWN_GRACE
    while factory.live and loop.time() < deadline:
        await asyncio.sleep(0.02)
    if factory.live:
        log.warning(
            "%d connection(s) still open after %.1fs; exiting anyway", len(factory.live), SHUTDOWN_GRACE
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
