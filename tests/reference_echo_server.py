"""A reference echo server for testing client adapters in interop mode, which records what it saw.

The client adapters' interop mode (docs/adapter-protocol.md §2) originates traffic against a server
target; to test an adapter on its own, this server plays that target: it echoes every message, answers
pings, honours the close trigger (``wsconform:close <code> <reason>``, §2.3) and, unlike a library's
echo server, *records* what a test must check and a client's events cannot show: the subprotocols and
extensions offered, the payload of every ping, the Close frame the client sent, how many messages
arrived. It is written on wsproto (sans-I/O, every frame an event), on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

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
from wsproto.utilities import RemoteProtocolError

SUPPORTED_PROTOCOLS = ("chat", "superchat")
TRIGGER = "wsconform:close "
READ_SIZE = 65536
IDLE_TIMEOUT = 60.0


@dataclass
class Seen:
    """What one connection showed the server."""

    path: str = ""
    offered_protocols: list[str] = field(default_factory=list)
    offered_extensions: list[str] = field(default_factory=list)
    selected_protocol: str | None = None
    messages: int = 0  # data messages received (the trigger included)
    pings: list[bytes] = field(default_factory=list)
    trigger: tuple[int, str] | None = None  # the close trigger the server acted on
    client_close: tuple[int | None, str] | None = (
        None  # the Close frame the client sent (its own, or its answer)
    )
    closed_by_client_first: bool = False


class ReferenceEchoServer:
    """``async with ReferenceEchoServer() as server``: ``server.url(path)``, then ``server.seen``."""

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ReferenceEchoServer:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, path: str = "case") -> str:
        return f"ws://127.0.0.1:{self.port}/{path}"

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        seen = Seen()
        self.seen.append(seen)
        try:
            await _serve(reader, writer, seen)
        except (ConnectionError, TimeoutError, RemoteProtocolError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
    ws = WSConnection(ConnectionType.SERVER)
    text: list[str] = []
    binary: list[bytes] = []

    async def send(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    while True:
        data = await asyncio.wait_for(reader.read(READ_SIZE), IDLE_TIMEOUT)
        ws.receive_data(data or None)
        for event in ws.events():
            if isinstance(event, Request):
                seen.path = event.target
                seen.offered_protocols = list(event.subprotocols)
                seen.offered_extensions = [str(e) for e in event.extensions]
                seen.selected_protocol = next(
                    (p for p in event.subprotocols if p in SUPPORTED_PROTOCOLS), None
                )
                accept = AcceptConnection(
                    subprotocol=seen.selected_protocol, extensions=[PerMessageDeflate()]
                )
                await send(ws.send(accept))
            elif isinstance(event, TextMessage):
                text.append(event.data)
                if event.message_finished:
                    message, text = "".join(text), []
                    seen.messages += 1
                    trigger = _trigger(message)
                    if trigger is not None:
                        seen.trigger = trigger
                        await send(ws.send(CloseConnection(code=trigger[0], reason=trigger[1])))
                    elif ws.state is ConnectionState.OPEN:
                        await send(ws.send(TextMessage(data=message)))
            elif isinstance(event, BytesMessage):
                binary.append(bytes(event.data))
                if event.message_finished:
                    payload, binary = b"".join(binary), []
                    seen.messages += 1
                    if ws.state is ConnectionState.OPEN:
                        await send(ws.send(BytesMessage(data=payload)))
            elif isinstance(event, Ping):
                seen.pings.append(bytes(event.payload))
                await send(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if seen.client_close is None:
                    seen.client_close = (event.code, event.reason or "")
                    seen.closed_by_client_first = ws.state is ConnectionState.REMOTE_CLOSING
                if ws.state is ConnectionState.REMOTE_CLOSING:
                    await send(ws.send(event.response()))
                return  # the server closes TCP first (RFC 6455 §7.1.1)
        if not data:
            return


def _trigger(message: str) -> tuple[int, str] | None:
    if not message.startswith(TRIGGER):
        return None
    code, _, reason = message[len(TRIGGER) :].partition(" ")
    return (int(code), reason) if code.isdigit() else None
