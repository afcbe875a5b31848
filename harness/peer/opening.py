"""Write the opening request and read the response head at the same time, timing the answer.

Two things need both directions at once. A server that refuses a head it will not read to the end
(431 for 10 000 header fields) answers while the peer is still writing, then closes with the rest
unread, so the kernel resets the connection: reading only after the write would lose the answer to
that reset (asyncio drops what it had buffered, and a failed write closes the transport). And the
robustness cases grade the time from the end of the request to the first response byte or the drop
(``expect.respond_within``), which is only exact when the read is already waiting when the last
byte goes out.

The response head's own timeout starts when the request is written, as it always has: a request
trickled over 8 s still has the whole case timeout for its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import time

from harness.observed import Observed
from harness.peer.connection import PeerConnection
from harness.wire import handshake as hs

SALVAGE_TIME = 0.5  # after a reset: how long to read what the kernel had received before it


class HeadReader:
    """Reads one response head; remembers how much came and when the first byte (or the drop) did."""

    def __init__(self, reader: asyncio.StreamReader, conn: PeerConnection, fd: int | None) -> None:
        self.reader, self.conn, self.fd = reader, conn, fd
        self.buf = bytearray()
        self.ended: str | None = None  # why no more bytes can come: "closed" | "reset"

    def _arrived(self) -> None:
        obs = self.conn.obs
        if obs.answer_t is None:
            obs.answer_t = self.conn.trace.now()

    async def read(self) -> tuple[bytes, bytes]:
        """The head and what followed it; raises ConnectionError (drop) or ValueError (too long)."""
        while True:
            end = hs.find_head_end(self.buf)
            if end >= 0:
                return bytes(self.buf[:end]), bytes(self.buf[end:])
            if len(self.buf) > hs.MAX_HEAD:
                raise ValueError(f"response head exceeds {hs.MAX_HEAD} bytes")
            try:
                chunk = await self.reader.read(65536)
            except (ConnectionError, OSError):
                chunk = self._salvage()  # a reset after the answer: read what came before it
                if not chunk:
                    self.ended = "reset"
            if not chunk:
                self._arrived()
                self.ended = self.ended or "closed"
                raise ConnectionError(f"connection closed after {len(self.buf)} bytes of response head")
            self._arrived()
            self.buf += chunk

    def _salvage(self) -> bytes:
        """What the StreamReader had buffered and what the kernel still holds, after a reset."""
        out = bytearray(getattr(self.reader, "_buffer", b""))
        if out:
            self.reader._buffer.clear()  # type: ignore[attr-defined]
        if self.fd is None:
            return bytes(out)
        deadline = time.monotonic() + SALVAGE_TIME
        with contextlib.suppress(OSError):
            os.set_blocking(self.fd, False)
            while len(out) <= hs.MAX_HEAD:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([self.fd], [], [], min(wait, 0.05))[0]:
                    break
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                out += chunk
        fd, self.fd = self.fd, None  # one salvage: after it the queue is empty
        os.close(fd)
        return bytes(out)


async def send_request(
    conn: PeerConnection,
    reader: asyncio.StreamReader,
    data: bytes,
    *,
    chop: int | None,
    delay: float,
    timeout: float,
) -> tuple[bytes, bytes]:
    """Write the request while reading the response head; return (head, rest).

    Raises TimeoutError(bytes of head received) when no complete head came within ``timeout`` s of
    the end of the request, ConnectionError when the server dropped the connection first, ValueError
    for an endless head. Sets ``obs.head_sent_t`` (unless the server answered or dropped before the
    request was taken whole) and ``obs.answer_t``.
    """
    obs: Observed = conn.obs
    trace = conn.trace
    fd = _dup(conn)
    head = HeadReader(reader, conn, fd)
    obs.answer_started_t = trace.now()
    reading = asyncio.ensure_future(head.read())

    async def write_all() -> bool:
        written = await conn.write(data, chop=chop, delay=delay, timeout=timeout)
        if written:
            obs.head_sent_t = trace.now()
        return written

    writing = asyncio.ensure_future(write_all())
    try:
        await asyncio.wait({reading, writing}, return_when=asyncio.FIRST_COMPLETED)
        if not writing.done():
            # The server answered (or dropped) before it took the whole request: stop writing.
            await asyncio.wait({writing}, timeout=0.05)
        wait = timeout
        if not writing.done() or writing.cancelled() or not writing.result():
            writing.cancel()
            wait = min(timeout, 1.0)  # a reset or a stalled write: the answer, if any, is there already
            trace.note("note", "request-unfinished", why="the target answered, dropped or stopped reading")
        try:
            return await asyncio.wait_for(asyncio.shield(reading), wait)
        except TimeoutError:
            raise TimeoutError(len(head.buf)) from None
    finally:
        for task in (reading, writing):
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if head.fd is not None:
            with contextlib.suppress(OSError):
                os.close(head.fd)
        if obs.response_s is not None:
            trace.note("in", "answer", response_ms=round(obs.response_s * 1000, 2))


def _dup(conn: PeerConnection) -> int | None:
    """A duplicate descriptor: it keeps the kernel's receive queue readable after asyncio closed it."""
    sock = conn.writer.get_extra_info("socket")
    if sock is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        return os.dup(sock.fileno())
    return None
