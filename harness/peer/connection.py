"""One TCP connection of the scripted peer after the handshake: a reader task and scripted writes.

The reader runs concurrently with the script, so that echoes of a 16 MiB message are drained while it
is still being written, and so that the peer behaves like a correct endpoint wherever the script does
not say otherwise: it answers pings, answers a close frame with a close frame, and notices when the
target drops TCP. Every state change wakes ``wait_until`` waiters; nothing here sleeps on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable

from harness.observed import MessageBuilder, Observed, parse_close
from harness.peer.trace import Trace
from harness.wire.frames import Frame, FrameParser, Opcode, build_frame, close_payload, is_control

READ_SIZE = 256 * 1024
SLICE = 256 * 1024
FAST_DRAIN = 32 * 1024  # below asyncio's default high-water mark (64 KiB): drain returns at once


class PeerConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        trace: Trace,
        observed: Observed,
        *,
        we_mask: bool,
        auto_pong: bool = True,
        auto_close_reply: bool = True,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.trace, self.obs = trace, observed
        self.we_mask = we_mask
        self.auto_pong, self.auto_close_reply = auto_pong, auto_close_reply
        self.parser = FrameParser(expect_masked=not we_mask)
        self._changed = asyncio.Event()
        self._building: MessageBuilder | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.eof = False
        self.write_failed = False
        self.deadline = float("inf")
        # Counters for resource sampling (harness.sampling reads them from its thread): bytes handed
        # to the transport, data payload among them, the payload share the kernel has accepted
        # (published by ``publish_accepted``), and data payload received back.
        self.bytes_written = 0
        self.payload_written = 0
        self.payload_accepted = 0
        self.bytes_received = 0
        self.payload_received = 0
        self.endpoints: tuple[tuple[str, int], tuple[str, int]] | None = None
        with contextlib.suppress(TypeError, ValueError, IndexError):
            here, there = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
            self.endpoints = ((str(here[0]), int(here[1])), (str(there[0]), int(there[1])))
        self._reading = asyncio.Event()
        self._reading.set()
        self.paused_at: float | None = None
        self.resumed_at: float | None = None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- reading ---------------------------------------------------------------------------------

    def start(self, initial: bytes = b"") -> None:
        if initial:
            self._feed(initial)
        self._reader_task = asyncio.ensure_future(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            while True:
                if not self._reading.is_set():
                    await self._reading.wait()
                data = await self.reader.read(READ_SIZE)
                if not data:
                    break
                self._feed(data)
        except (ConnectionError, OSError) as exc:
            self.trace.note("tcp", "read-error", error=repr(exc))
        self._on_eof()

    def _on_eof(self) -> None:
        self.eof = True
        if self.obs.tcp_closed_by is None:
            self.obs.tcp_closed_by = "target"
            self.obs.tcp_closed_at = self.trace.now()
            self.trace.note("tcp", "closed-by-target", buffered=self.parser.buffered)
            if self.parser.buffered:
                self.obs.violations.append(f"tcp-closed-mid-frame ({self.parser.buffered} bytes)")
        self._wake()

    def _wake(self) -> None:
        self._changed.set()

    def pause_reading(self) -> None:
        """Stop draining the socket, so the kernel's receive buffer fills and the target's writes back up.

        Both the read loop and the transport stop: the StreamReader would otherwise keep buffering
        up to twice its limit in user space, which would blur what the target had to hold.
        """
        if not self._reading.is_set():
            return
        self._reading.clear()
        transport = self.writer.transport
        if isinstance(transport, asyncio.ReadTransport):
            transport.pause_reading()
        self.paused_at = self.trace.now()
        self.trace.note("note", "pause-reading")

    def resume_reading(self) -> None:
        if self._reading.is_set():
            return
        transport = self.writer.transport
        if isinstance(transport, asyncio.ReadTransport):
            transport.resume_reading()
        self._reading.set()
        self.resumed_at = self.trace.now()
        self.trace.note("note", "resume-reading")

    @property
    def reading(self) -> bool:
        return self._reading.is_set()

    def unparsed(self) -> int:
        """Bytes the peer has read from its socket but not parsed into whole frames yet.

        Read from the sampler's thread: lengths of bytearrays, safe to read without the loop. The
        StreamReader's buffer is private API, read here only for this figure (it holds up to twice
        its limit while reading is paused).
        """
        buffered = getattr(self.reader, "_buffer", b"")
        return self.parser.buffered + len(buffered)

    def publish_accepted(self) -> None:
        """Payload the kernel has taken so far (what left the transport's buffer), for the sampler."""
        if self.bytes_written:
            accepted = self.bytes_written - self.writer.transport.get_write_buffer_size()
            self.payload_accepted = accepted * self.payload_written // self.bytes_written

    def set_socket_buffers(self, size: int) -> tuple[int, int]:
        """Small SO_SNDBUF/SO_RCVBUF on the peer's side; returns what the kernel granted (Linux doubles).

        Resource cases measure what the *target* holds; the peer's own kernel buffers count in
        "absorbed" too, so they are kept small (and reported) for sharper figures.
        """
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return (0, 0)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
        return (
            int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)),
            int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)),
        )

    def _feed(self, data: bytes) -> None:
        self.bytes_received += len(data)
        for frame in self.parser.feed(data):
            self._on_frame(frame)
        if self.parser.oversized is not None and "oversized" not in " ".join(self.obs.violations):
            self.obs.violations.append(f"oversized-frame-declared ({self.parser.oversized} bytes)")
            self.trace.note("in", "oversized", length=self.parser.oversized)
        self._wake()

    def _on_frame(self, frame: Frame) -> None:
        obs = self.obs
        if obs.close is not None:
            frame.violations.append("frame-after-close")
        if not is_control(frame.opcode) and frame.opcode in (0, 1, 2):
            self._on_data(frame)
        elif frame.opcode == Opcode.PING:
            if self.auto_pong and obs.close is None and obs.close_sent is None:
                self.send_nowait(build_frame(Opcode.PONG, frame.payload, mask=self.we_mask), "auto-pong")
        elif frame.opcode == Opcode.PONG:
            obs.pongs.append(frame.payload)
        elif frame.opcode == Opcode.CLOSE and obs.close is None:
            info = parse_close(frame.payload, self.trace.now())
            frame.violations.extend(info.problems)
            obs.close = info
            if self.auto_close_reply and obs.close_sent is None:
                code = info.code if info.code is not None and not info.problems else None
                reply = close_payload(code) if code is not None else b""
                obs.close_sent = parse_close(reply, self.trace.now())
                self.send_nowait(build_frame(Opcode.CLOSE, reply, mask=self.we_mask), "close-reply")
        self.trace.frame("in", frame)
        if frame.violations:  # a flood's echoes are 100 000 frames: no generator per clean frame
            obs.violations.extend(f"{v} ({frame.name})" for v in frame.violations)

    def _on_data(self, frame: Frame) -> None:
        now = self.trace.now()
        if frame.opcode == 0:
            if self._building is None:
                frame.violations.append("continuation-without-start")
                return
        else:
            if self._building is not None:
                frame.violations.append("new-message-inside-fragmented-message")
            self._building = MessageBuilder(frame.opcode, now)
        builder = self._building
        builder.add(frame.payload, final=frame.fin)
        self.payload_received += len(frame.payload)
        if builder.utf8 is not None and not builder.utf8.valid and "invalid-utf8" not in frame.violations:
            frame.violations.append("invalid-utf8")
        if frame.fin:
            self.obs.messages.append(builder.finish())
            self._building = None

    # -- writing ---------------------------------------------------------------------------------

    def send_nowait(self, data: bytes, label: str) -> None:
        """Queue bytes from the reader side (auto replies); errors surface at the next drain."""
        if self.writer.is_closing():
            return
        self.writer.write(data)
        self.bytes_written += len(data)
        self.trace.note("out", label, length=len(data), hex=data[:16].hex())

    async def write(
        self, data: bytes, *, chop: int | None = None, delay: float = 0.0, timeout: float = 30.0
    ) -> bool:
        """Write bytes whole or in ``chop``-sized TCP writes; False when the target has gone.

        Large unchopped buffers go out in SLICE-sized writes so that the peer stops as soon as the
        target ends the connection (a target that refused a 4 MiB message after 64 KiB should not
        have the rest queued in front of our close reply); each drain is bounded by ``timeout``.
        """
        if self.write_failed or self.writer.is_closing():
            return False
        if delay and (not chop or chop >= len(data)):
            await asyncio.sleep(delay)
        size = chop if chop else SLICE
        try:
            for start in range(0, max(len(data), 1), size):
                if start and self.obs.target_ended:
                    self.trace.note(
                        "note",
                        "write-stopped",
                        unsent=len(data) - start,
                        why="the target ended the connection",
                    )
                    return False
                self.writer.write(data[start : start + size])
                self.bytes_written += min(size, len(data) - start)
                if not await self._drain(timeout):
                    self.write_failed = True
                    self.trace.note(
                        "note",
                        "write-stopped",
                        unsent=len(data) - start - size,
                        why="the target ended the connection while we were writing",
                    )
                    return False
                if chop and delay:
                    await asyncio.sleep(delay)
                elif chop:
                    # Let the reader run between chops: a target that fails the connection mid-way must
                    # have its close frame read before our next write meets a reset and discards it.
                    await asyncio.sleep(0)
        except TimeoutError:
            self.write_failed = True
            self.trace.note("tcp", "write-stalled", seconds=timeout)
            return False
        except (ConnectionError, OSError) as exc:
            self.write_failed = True
            self.trace.note("tcp", "write-error", error=type(exc).__name__)
            return False
        return True

    async def _drain(self, timeout: float) -> bool:
        """Drain, unless the target ends the connection first (False) or ``timeout`` passes (raises).

        The fast path matters: a 1 MiB message in 64-byte chops is 16 384 drains, and a drain
        below the transport's high-water mark does not block, so it needs no watchdog task.
        """
        transport = self.writer.transport
        if transport.get_write_buffer_size() < FAST_DRAIN:
            await self.writer.drain()
            return True
        drain = asyncio.ensure_future(self.writer.drain())
        ended = asyncio.ensure_future(self.wait_until(lambda: self.obs.target_ended, timeout))
        try:
            done, _ = await asyncio.wait({drain, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        if drain in done:
            drain.result()
            return True
        drain.cancel()
        with contextlib.suppress(BaseException):
            await drain
        if self.obs.target_ended:
            return False
        raise TimeoutError

    # -- waiting ---------------------------------------------------------------------------------

    def set_budget(self, seconds: float) -> None:
        """The case's time budget, shared by every wait of the script."""
        self.deadline = asyncio.get_running_loop().time() + seconds

    def remaining(self, floor: float = 0.0) -> float:
        return max(floor, self.deadline - asyncio.get_running_loop().time())

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds or TCP is gone; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if self.eof:
                return predicate()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return predicate()
        return True

    async def close_tcp(self) -> None:
        if self.obs.tcp_closed_by is None:
            self.obs.tcp_closed_by = "peer"
            self.obs.tcp_closed_at = self.trace.now()
            self.trace.note("tcp", "closed-by-peer")
        if self.write_failed:
            self.writer.transport.abort()  # unsent bytes would only delay the close
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
