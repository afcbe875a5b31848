"""The recording, validating relay between a real client target and a real server target.

It listens on a free 127.0.0.1 port for the client, connects to the server for each client connection,
and forwards every read as one write, unchanged, the moment it arrives: no re-framing, no re-masking,
a client's chops stay chops (a read may still merge two of them, as TCP may anywhere). Only after a
chunk is written does the relay hand a copy to that side's ``Direction`` (parsed and checked there),
so checking never delays the bytes; ``drain()`` after each write keeps the TCP backpressure of a slow
reader across the pair (the relay never buffers more than one read per direction).

When one side closes its half of TCP the relay half-closes towards the other, so each side sees the
closing handshake as it would without the relay. What was seen ends in ``pair`` (``PairSeen``),
including the closing-handshake rule only the two directions together can decide (``close-no-reply``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from types import TracebackType

from harness.interop.direction import Direction
from harness.observed_pair import PairSeen, TraceEvent, other

READ_SIZE = 256 * 1024


class Relay:
    """``async with Relay(host, port) as relay``: ``relay.url(path)`` is where the client connects."""

    def __init__(self, host: str, port: int, *, connect_timeout: float = 10.0) -> None:
        self.upstream = (host, port)
        self.connect_timeout = connect_timeout
        self.pair = PairSeen()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._done = asyncio.Event()
        self._t0: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}/{path.lstrip('/')}"

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def now(self) -> float:
        if self._t0 is None:
            self._t0 = time.monotonic()
        return time.monotonic() - self._t0

    async def wait_done(self, timeout: float) -> bool:
        """True once the first connection has ended in both directions, False on timeout."""
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- one client connection ------------------------------------------------------------------------

    async def _accept(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        pair = self.pair
        pair.connections += 1
        try:
            if pair.connections > 1:  # the scenarios make one connection: a second is recorded, refused
                pair.trace.append(TraceEvent(self.now(), "client", "tcp", "a second connection (refused)"))
                return
            self.now()
            try:
                sreader, swriter = await asyncio.wait_for(
                    asyncio.open_connection(*self.upstream), self.connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                pair.upstream_failed = f"cannot connect to the server at {self.upstream}: {exc!r}"
                return
            try:
                await asyncio.gather(
                    self._pump(creader, swriter, Direction("client", pair)),
                    self._pump(sreader, cwriter, Direction("server", pair)),
                )
            finally:
                swriter.close()
            self._closing_handshake()
        finally:
            cwriter.close()
            if pair.connections == 1:
                self._done.set()
            if task is not None:
                self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        writable = True
        while True:
            try:
                data = await reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                break
            t = self.now()
            if writable:
                try:
                    writer.write(data)
                except (ConnectionError, RuntimeError):
                    writable = False
            direction.feed(data, t)
            if writable:
                try:
                    await writer.drain()
                except (ConnectionError, OSError):
                    writable = False  # the receiver is gone: keep reading what the sender still sends
        direction.eof(self.now())
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()

    def _closing_handshake(self) -> None:
        """§5.5.1: an endpoint that received a Close frame, sent none, and closed TCP broke close-no-reply."""
        pair = self.pair
        first = pair.first_close
        if first is None:
            return
        closer, receiver = pair.side(first), pair.side(other(first))
        assert closer.close is not None
        if receiver.close is None and receiver.eof_t is not None and receiver.eof_t >= closer.close.t:
            if (
                closer.eof_t is not None
                and closer.eof_t <= receiver.eof_t
                and _reset_first(closer.eof_t, closer.close.t)
            ):
                return  # the closer dropped TCP with its close: nothing could be answered
            pair.blame(
                other(first),
                "close-no-reply",
                f"the {first}'s close was not answered before TCP closed",
                receiver.eof_t,
            )


def _reset_first(eof_t: float, close_t: float) -> bool:
    """A close followed by TCP's end in the same instant (under 1 ms): the closer never waited."""
    return eof_t - close_t < 0.001
