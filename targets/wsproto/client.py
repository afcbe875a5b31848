"""wsconform client adapter for wsproto (sans-I/O) driven by a small asyncio loop.

The harness runs the peer as a server and starts this program once per case. It connects to the
given URL offering the given subprotocols, echoes every message with the same type, completes the
closing handshake, and reports what wsproto's events said as JSON lines on stdout. Contract
(docs/architecture.md): events ``open``, ``message``, ``error``, ``close``; exit 0 after ``close``;
exit 127 for an unsupported feature.

wsproto has no client of its own, so this is the minimal I/O glue around
``WSConnection(ConnectionType.CLIENT)`` that wsproto's documentation describes:

* ``Request(host="127.0.0.1:PORT", target=path?query, subprotocols=[...], extensions=[])``: no
  permessage-deflate offer. Bytes read from the socket go to ``receive_data`` (``None`` on EOF)
  and the resulting events are handled in order:
  - ``AcceptConnection`` -> open (``subprotocol``; wsproto keeps no raw extensions header, it
    returns the accepted extension objects, and with nothing offered there are none);
  - ``RejectConnection`` (non-101 status) / ``RemoteProtocolError`` (invalid 101: wsproto checks
    Upgrade, Connection, Sec-WebSocket-Accept, the subprotocol and the extensions) -> error, then
    close 1006;
  - ``TextMessage`` / ``BytesMessage`` -> buffered until ``message_finished``, then reported and
    echoed as one message of the same type, written and drained before more input is handled;
  - ``Ping`` -> ``event.response()`` (the Pong);
  - ``CloseConnection`` -> ``event.response()`` is sent when wsproto's state still allows it.
    wsproto uses this one event for three things: the server's Close frame (state becomes
    REMOTE_CLOSING, or CLOSED after our own Close), a frame it could not accept (``ParseFailed``:
    1002/1007/1009 and the state stays OPEN, i.e. no Close frame was received; we send the Close it
    asks for and keep reading for the server's answer), and EOF (1006, state CLOSED).
* A Close frame without a status code is reported by wsproto as 1005 (NO_STATUS_RCVD).
* The close event is clean (the server's code and reason, wasClean true) only when a Close frame
  was both received and sent; otherwise error, then close 1006, wasClean false.
* wsproto has no maximum message size: ``--max-size`` is unsupported (exit 127 when given).

The extended contract (docs/adapter-protocol.md; shared parts in wsconform_adapter.py and
wsconform_interop.py): ``--persistent`` (or WSCONFORM_PERSISTENT=1) runs many cases in one process, a
fresh connection and ``WSConnection`` each (§1). Interop mode (WSCONFORM_INTEROP/WSCONFORM_PLAN, §2):
``InteropClient`` hands complete messages to the plan's reader (a bounded queue, so a slow reader stops
the socket reads) instead of echoing them, sends ``Ping(payload)`` and ``CloseConnection(code, reason)``
itself, and offers ``PerMessageDeflate`` (with the offer's parameters) only when the plan asks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

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
READ_SIZE = 65536
CLOSE_TIMEOUT = 5.0  # seconds to wait for the server's Close frame / TCP close once ours is sent
ABNORMAL_CLOSURE = 1006
UNSUPPORTED = 127

class Client:
    """One WebSocket connection: feeds wsproto and writes what it produces."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float = 0.0
    ) -> None:
        self.delay = delay  # slow-reader scenario: seconds before handling each message
        self.reader = reader
        self.writer = writer
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.text_parts: list[str] = []
        self.binary_parts: list[bytes] = []
        self.close_sent = False
        self.close_received: CloseConnection | None = None
        self.error: str | None = None
        self.finished = False
        self.eof = False
        self.extensions: list[Extension] = []  # offered in the Request (interop mode only)
        self.opened = asyncio.Event()  # the server accepted the opening handshake

    async def send(self, data: bytes) -> None:
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def run(self, host: str, target: str, protocols: list[str]) -> None:
        request = Request(host=host, target=target, subprotocols=protocols, extensions=self.extensions)
        await self.send(self.ws.send(request))
        while not self.finished:
            if self.close_sent:
                # RFC 6455 §7.1.1: after the Close frames the server closes TCP first; wsproto has no
                # timeouts, so the adapter bounds the wait.
                try:
                    data = await asyncio.wait_for(self.reader.read(READ_SIZE), CLOSE_TIMEOUT)
                except TimeoutError:
                    self.error = self.error or f"no close frame from the server within {CLOSE_TIMEOUT:g} s"
                    return
            else:
                data = await self.reader.read(READ_SIZE)
            self.eof = not data
            try:
                self.ws.receive_data(data or None)
                await self.handle_events()
            except RemoteProtocolError as exc:
                # Only raised during the opening handshake (an invalid 101 or HTTP response).
                self.error = f"RemoteProtocolError: {exc}"
                return
            if not data:
                return
        if self.close_received is not None and self.close_sent:
            # Closing handshake done: wait (bounded) for the server to close the TCP connection.
            with contextlib.suppress(TimeoutError, ConnectionError):
                while await asyncio.wait_for(self.reader.read(READ_SIZE), CLOSE_TIMEOUT):
                    pass

    async def handle_events(self) -> None:
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                emit(
                    "open",
                    protocol=event.subprotocol or "",
                    extensions=", ".join(ext.name for ext in event.extensions),
                )
                self.opened.set()
            elif isinstance(event, RejectConnection):
                self.error = f"handshake rejected: HTTP {event.status_code}"
                self.finished = True
            elif isinstance(event, RejectData):
                pass
            elif isinstance(event, TextMessage):
                self.text_parts.append(event.data)
                if event.message_finished:
                    text = "".join(self.text_parts)
                    self.text_parts.clear()
                    await self.on_message(TextMessage(data=text))
            elif isinstance(event, BytesMessage):
                self.binary_parts.append(bytes(event.data))
                if event.message_finished:
                    payload = b"".join(self.binary_parts)
                    self.binary_parts.clear()
                    await self.on_message(BytesMessage(data=payload))
            elif isinstance(event, Ping):
                await self.send(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                await self.handle_close(event)

    async def on_message(self, message: TextMessage | BytesMessage) -> None:
        """A complete message: reported, then echoed with its own type (the echo client)."""
        if self.delay:
            await asyncio.sleep(self.delay)  # a slow consumer: nothing is read meanwhile
        if isinstance(message, TextMessage):
            emit_message("text", message.data.encode("utf-8"))
        else:
            emit_message("binary", bytes(message.data))
        await self.send(self.ws.send(message))

    async def handle_close(self, event: CloseConnection) -> None:
        state = self.ws.state
        if self.eof:
            # receive_data(None): wsproto reports 1006, the TCP connection ended without a Close frame.
            self.error = self.error or "connection closed without a close frame"
            self.finished = True
        elif state is ConnectionState.OPEN:
            # ParseFailed: wsproto failed the connection (the state is unchanged, no Close frame was
            # received); send the Close it asks for, then keep reading for the server's answer.
            self.error = f"wsproto failed the connection: {event.code} {event.reason}"
            await self.send(self.ws.send(event.response()))
            self.close_sent = True
        elif state is ConnectionState.LOCAL_CLOSING:
            # ParseFailed again after our Close: nothing more can be sent; give up.
            self.error = self.error or f"wsproto failed the connection: {event.code} {event.reason}"
            self.finished = True
        else:
            # The server's Close frame: REMOTE_CLOSING (answer it) or CLOSED (it answered ours).
            self.close_received = event
            if state is ConnectionState.REMOTE_CLOSING:
                await self.send(self.ws.send(event.response()))
                self.close_sent = True
            self.finished = True

    def report(self) -> None:
        if self.close_received is not None and self.close_sent:
            if self.error is not None:
                emit("error", message=self.error)
            emit(
                "close",
                code=int(self.close_received.code),
                reason=self.close_received.reason or "",
                wasClean=True,
            )
        else:
            fail(self.error or "connection closed without a close frame")


async def run(url: str, protocols: list[str], delay: float = 0.0) -> None:
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        fail(f"unsupported URL {url!r} (ws:// only)")
        return
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, port)
    except OSError as exc:
        fail(f"{type(exc).__name__}: {exc}")
        return
    client = Client(reader, writer, delay)
    try:
        await client.run(f"{parts.hostname}:{port}", target, protocols)
    except (ConnectionError, LocalProtocolError) as exc:
        client.error = client.error or f"{type(exc).__name__}: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    client.report()


# -- interop mode (docs/adapter-protocol.md §2) ------------------------------------------------------

QUEUE_DEPTH = 16  # complete messages waiting for the plan's reader before the socket reads stop


def deflate_extensions(plan: Plan) -> list[Extension]:
    """``PerMessageDeflate`` with the offer's parameters, only when the plan asks (wsproto's offer always
    names both window sizes: 15 where the plan gives no value)."""
    if not plan.deflate:
        return []
    params = plan.offer_parameters() or {}

    def bits(name: str) -> int | None:
        value = params.get(name)
        return int(value) if value and value.isdigit() else None

    return [
        PerMessageDeflate(
            client_no_context_takeover="client_no_context_takeover" in params,
            client_max_window_bits=bits("client_max_window_bits"),
            server_no_context_takeover="server_no_context_takeover" in params,
            server_max_window_bits=bits("server_max_window_bits"),
        )
    ]


class InteropClient(Client):
    """The wsproto client in interop mode: ``run`` reads (and answers pings and the server's Close) and
    hands complete messages to the plan's reader instead of echoing them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, plan: Plan) -> None:
        super().__init__(reader, writer)
        self.extensions = deflate_extensions(plan)
        self.messages: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(QUEUE_DEPTH)

    async def on_message(self, message: TextMessage | BytesMessage) -> None:
        if isinstance(message, TextMessage):
            await self.messages.put(("text", message.data.encode("utf-8")))
        else:
            await self.messages.put(("binary", bytes(message.data)))


class Interop:
    """``InteropClient`` as the ``wsconform_interop.Connection`` that ``play`` drives."""

    def __init__(self, client: InteropClient) -> None:
        self.client = client

    async def _send(self, event: TextMessage | BytesMessage | Ping | CloseConnection) -> None:
        try:
            await self.client.send(self.client.ws.send(event))
        except (LocalProtocolError, ConnectionError) as exc:
            raise ConnectionEnded from exc

    async def send(self, message: PlannedMessage) -> None:
        data = message.data
        await self._send(TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data))

    async def receive(self) -> tuple[str, bytes] | None:
        return await self.client.messages.get()

    async def ping(self, payload: bytes) -> None:
        await self._send(Ping(payload=payload))

    async def close(self, code: int, reason: str) -> None:
        await self._send(CloseConnection(code=code, reason=reason))
        self.client.close_sent = True  # run() now waits (bounded) for the server's answer


async def run_interop(url: str, protocols: list[str], plan: Plan) -> None:
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        fail(f"unsupported URL {url!r} (ws:// only)")
        return
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, port)
    except OSError as exc:
        fail(f"{type(exc).__name__}: {exc}")
        return
    client = InteropClient(reader, writer, plan)

    async def read_all() -> None:
        try:
            await client.run(f"{parts.hostname}:{port}", target, protocols)
        except (ConnectionError, LocalProtocolError) as exc:
            client.error = client.error or f"{type(exc).__name__}: {exc}"
        finally:
            await client.messages.put(None)

    reading = asyncio.ensure_future(read_all())
    try:
        opened = asyncio.ensure_future(client.opened.wait())
        await asyncio.wait({reading, opened}, return_when=asyncio.FIRST_COMPLETED)
        opened.cancel()
        if client.opened.is_set():
            await play(plan, Interop(client), emit_message)
        await reading
    finally:
        reading.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    client.report()


# -- one case, either mode ---------------------------------------------------------------------------


def run_request(request: CaseRequest) -> None:
    """One case (per-case process or persistent line): the echo client, or the interop plan."""
    if request.interop is not None:
        budget = request.interop.budget(SAFETY_TIMEOUT)
        coro = run_interop(request.url, request.protocols, request.interop)
    else:
        budget = SAFETY_TIMEOUT
        coro = run(request.url, request.protocols, request.echo_delay())
    try:
        asyncio.run(asyncio.wait_for(coro, budget))
    except TimeoutError:
        fail(f"adapter safety timeout ({budget:g} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--url")
    ap.add_argument("--protocols", default="")
    ap.add_argument("--max-size", type=int, default=None, help="unsupported by wsproto (exit 127)")
    ap.add_argument("--persistent", action="store_true", help="cases on stdin (adapter-protocol §1)")
    args = ap.parse_args()
    if args.max_size is not None:
        print("wsproto has no maximum message size", file=sys.stderr)
        sys.exit(UNSUPPORTED)
    if persistent_requested():
        sys.exit(serve_persistent(run_request))
    sys.exit(run_per_case(run_request, args.url, args.protocols))


if __name__ == "__main__":
    main()
