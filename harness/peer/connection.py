"""One TCP connection of the scripted peer after the handshake: a reader task and scripted writes.

The reader runs concurrently with the script, so that echoes of a 16 MiB message are drained while it
is still being written, and so that the peer behaves like a correct endpoint wherever the script does
not say otherwise: it answers pings, answers a close frame with a close frame, and notices when the
target drops TCP. Every state change wakes ``wait_until`` waiters; nothing here sleeps on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import select
import socket
import time
from collections.abc import Callable

from harness.observed import MessageBuilder, Observed, parse_close
from harness.peer.compression import DeflateSession
from harness.peer.trace import PREVIEW, TAIL, Trace
from harness.wire import deflate
from harness.wire.frames import (
    DEFAULT_MAX_PAYLOAD,
    Frame,
    FrameParser,
    Opcode,
    build_frame,
    close_payload,
    is_control,
)
from harness.wire.rules import Violation

READ_SIZE = 256 * 1024
SLICE = 256 * 1024
FAST_DRAIN = 32 * 1024  # below asyncio's default high-water mark (64 KiB): drain returns at once
SALVAGE_TIME = 0.5  # after a failed write: how long to read what the target had already sent
SALVAGE_BYTES = 1 << 20
HALF_CLOSE_WAIT = 2.0  # peer as server: after its FIN, how long it reads on until the client's FIN
ZERO_KEY = bytes(4)
AUTO_REPLY_BACKLOG = 1 << 20  # unsent bytes beyond which pings go unanswered (a target that never reads)


def _singles(frame: Frame) -> list[Frame]:
    """The wire frames a run (``Frame.repeat`` > 1) stands for, as the parser would have given them."""
    if frame.repeat == 1:
        return [frame]
    size = frame.length
    return [
        Frame(False, frame.rsv, 0, False, size, frame.payload[i * size : (i + 1) * size], frame.header_size)
        for i in range(frame.repeat)
    ]


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
        max_payload: int | None = None,
    ) -> None:
        self.reader, self.writer = reader, writer
        self.trace, self.obs = trace, observed
        self.we_mask = we_mask
        self.auto_pong, self.auto_close_reply = auto_pong, auto_close_reply
        cap = DEFAULT_MAX_PAYLOAD if max_payload is None else max_payload
        self.parser = FrameParser(expect_masked=not we_mask, max_payload=cap, runs=True)
        observed.frame_cap = cap
        self._last_key: bytes | None = None
        self._changed = asyncio.Event()
        self._building: MessageBuilder | None = None
        self.deflate: DeflateSession | None = None
        self._compressed: list[bytes] | None = None  # payloads of the compressed message being received
        self._compressed_size = 0
        self._reader_task: asyncio.Task[None] | None = None
        self.eof = False
        self.write_failed = False
        self.pongs_withheld = 0
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
        # A duplicate of the socket's descriptor outlives asyncio's transport: when a write fails
        # (EPIPE, ECONNRESET) asyncio closes the transport and drops what the kernel had already
        # received, which is often the target's answer (a 1009 close before it reset the connection).
        # It is taken when the read loop starts (and closed when it ends), so a connection nobody
        # reads is closed by ``writer.close()`` as usual.
        self._salvage_fd: int | None = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def enable_deflate(self, session: DeflateSession) -> None:
        """permessage-deflate was agreed: RSV1 now has a meaning (RFC 7692 §6), and what the target
        compresses is inflated under ``session``'s rules before it counts as a message."""
        self.deflate = session
        self.parser.rsv_allowed = 4
        self.trace.note("note", "permessage-deflate", agreed=session.describe(), header=session.header)

    # -- reading ---------------------------------------------------------------------------------

    def start(self, initial: bytes = b"") -> None:
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError, ValueError):
                self._salvage_fd = os.dup(sock.fileno())
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
            self.salvage()
        finally:
            self._close_salvage_fd()  # nothing more can arrive; the duplicate must not keep TCP open
        self._on_eof()

    def _close_salvage_fd(self) -> None:
        if self._salvage_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._salvage_fd)
            self._salvage_fd = None

    def salvage(self) -> None:
        """Read what the target sent before the connection broke, which asyncio would discard.

        Two places hold it: the StreamReader's buffer (``read()`` raises the connection's exception
        before returning buffered bytes) and the kernel's receive queue (data received before a reset
        stays readable). Both are parsed as if they had been read normally, bounded in time and size.
        """
        if self.oversized:
            return
        buffered = bytes(getattr(self.reader, "_buffer", b""))
        if buffered:
            self.reader._buffer.clear()  # type: ignore[attr-defined]
            self.trace.note("tcp", "salvaged", source="stream buffer", length=len(buffered))
            self._feed(buffered)
        fd = self._salvage_fd
        if fd is None:
            return
        got = 0
        deadline = time.monotonic() + SALVAGE_TIME
        with contextlib.suppress(OSError):
            os.set_blocking(fd, False)
            while got < SALVAGE_BYTES and not self.oversized:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([fd], [], [], min(wait, 0.05))[0]:
                    break
                chunk = os.read(fd, READ_SIZE)
                if not chunk:
                    break
                got += len(chunk)
                self._feed(chunk)
        if got:
            self.trace.note("tcp", "salvaged", source="kernel", length=got)

    @property
    def oversized(self) -> bool:
        return self.parser.oversized is not None

    def _on_eof(self) -> None:
        self.eof = True
        if self.obs.tcp_closed_by is None:
            if self.obs.answer_t is None:
                self.obs.answer_t = self.trace.now()  # the target's drop answers too (not ours)
            self.obs.tcp_closed_by = "target"
            self.obs.tcp_closed_at = self.trace.now()
            self.trace.note("tcp", "closed-by-target", buffered=self.parser.buffered)
            if self.parser.buffered and not self.oversized:
                self._violate("truncated-frame", f"{self.parser.buffered} bytes of an incomplete frame")
        self._wake()

    def _violate(self, rule: str, detail: str) -> None:
        self.obs.violations.append(Violation(rule, detail, self.trace.now()))

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
        if self.obs.answer_t is None:
            self.obs.answer_t = self.trace.now()  # the target's first byte (response time)
        self.bytes_received += len(data)
        frames = self.parser.feed(data)
        total = sum(frame.repeat for frame in frames)
        untraced = self.trace.skip_range(total) if total > TAIL else range(0)
        run: list[tuple[int, Frame]] = []  # clean continuations (wire index, frame): _continuations
        index = 0
        for frame in frames:
            clean = frame.opcode == 0 and not frame.rsv and not frame.violations
            plain = self._building is not None and self._compressed is None  # compressed: inflated at FIN
            if clean and plain and self.obs.close is None:
                run.append((index, frame))
                index += frame.repeat
                if frame.fin:
                    self._continuations(run, untraced)
                    run = []
                continue
            if run:
                self._continuations(run, untraced)
                run = []
            for single in _singles(frame):  # a run outside a message: each frame breaks its rule
                self._on_frame(single, traced=index not in untraced)
                index += 1
        if run:
            self._continuations(run, untraced)
        if self.parser.oversized is not None and self.obs.oversized_frame is None:
            # Nothing after such a frame can be framed, and buffering it is what a hostile target wants.
            self.obs.oversized_frame = self.parser.oversized
            self.trace.note("in", "oversized", length=self.parser.oversized, cap=self.parser.max_payload)
            self.writer.transport.abort()
        self._wake()

    def _check_mask_key(self, frame: Frame) -> None:
        """§5.3: a fresh, unpredictable key per frame. A zero key or the previous frame's key again is
        what a constant key looks like (a fair 32-bit draw repeats with probability 2^-32 per frame)."""
        key = frame.mask_key
        if key == ZERO_KEY:
            if self._last_key != ZERO_KEY:
                frame.violations.append("mask-key-zero")
        elif key == self._last_key:
            frame.violations.append("mask-key-reused")
        self._last_key = key

    def _on_frame(self, frame: Frame, *, traced: bool = True, key_checked: bool = False) -> None:
        obs = self.obs
        detail = ""
        if frame.masked and not self.we_mask and not key_checked:
            self._check_mask_key(frame)
        if obs.close is not None:
            again = frame.opcode == Opcode.CLOSE
            frame.violations.append("close-frame-twice" if again else "frame-after-close")
        if self.deflate is not None and frame.rsv & 4 and (is_control(frame.opcode) or frame.opcode == 0):
            # §6.1: only the first frame of a data message may carry "Per-Message Compressed"
            control = is_control(frame.opcode)
            frame.violations.append("rsv1-on-control-frame" if control else "rsv1-on-continuation")
        if not is_control(frame.opcode) and frame.opcode in (0, 1, 2):
            self._on_data(frame)
        elif frame.opcode == Opcode.PING:
            if self.auto_pong and obs.close is None and obs.close_sent is None:
                self._auto_pong(frame.payload)
        elif frame.opcode == Opcode.PONG:
            obs.pongs.append(frame.payload)
        elif frame.opcode == Opcode.CLOSE and obs.close is None:
            info = parse_close(frame.payload, self.trace.now())
            frame.violations.extend(info.problems)
            detail = info.detail
            obs.close = info
            if self.auto_close_reply and obs.close_sent is None:
                code = info.code if info.code is not None and not info.problems else None
                reply = close_payload(code) if code is not None else b""
                obs.close_sent = parse_close(reply, self.trace.now())
                self.send_nowait(build_frame(Opcode.CLOSE, reply, mask=self.we_mask), "close-reply")
        if traced:  # an untraced frame is already counted as elided (Trace.skip_range)
            self.trace.frame("in", frame)
        if frame.violations:  # a flood's echoes are 100 000 frames: no work per clean frame
            t = self.trace.now()
            what = f"{detail} ({frame.name})" if detail else frame.name
            for rule in frame.violations:
                obs.violations.append(Violation(rule, what, t))

    def _continuations(self, run: list[tuple[int, Frame]], untraced: range) -> None:
        """Continuation frames of the message being received, in one digest and one UTF-8 step.

        A 4 MiB message in 64-byte fragments arrives as 65 536 continuations; one ``_on_frame`` each
        costs more than the target's work (and the parser already hands runs of identical frames over
        as one ``Frame`` with ``repeat``). When the joined payload is valid (checked on a copy of the
        validator), taking it at once gives the same message (digest, head, length, validity) as frame
        by frame; otherwise the frames go one by one, so ``invalid-utf8`` lands on exactly the frames
        it would have.
        """
        builder = self._building
        assert builder is not None
        if not self.we_mask:
            for _, frame in run:
                if frame.masked:
                    self._check_mask_key(frame)  # runs (repeat > 1) are never masked
        payload = run[0][1].payload if len(run) == 1 else b"".join(frame.payload for _, frame in run)
        final = run[-1][1].fin
        checked = copy.copy(builder.utf8) if builder.utf8 is not None else None
        if any(frame.violations for _, frame in run) or (
            checked is not None and not checked.feed(payload, final=final)
        ):
            for index, frame in run:
                for i, single in enumerate(_singles(frame)):
                    self._on_frame(single, traced=index + i not in untraced, key_checked=True)
            return
        builder.add(payload, final=final, checked=checked)
        self.payload_received += len(payload)
        for index, frame in run:
            if frame.repeat == 1:
                if index not in untraced:
                    self.trace.frame("in", frame)
                continue
            size = frame.length
            shown = min(size, PREVIEW)  # a head never runs into the next fragment
            for i in range(frame.repeat):
                if index + i not in untraced:
                    head = frame.payload[i * size : i * size + shown]
                    self.trace.record("in", 0, False, frame.rsv, False, size, head, size)
        if final:
            self.obs.messages.append(builder.finish())
            self._building = None

    def _auto_pong(self, payload: bytes) -> None:
        """Answer a ping (§5.5.2), unless the target left AUTO_REPLY_BACKLOG bytes of ours unread.

        A target that floods pings and never reads would otherwise grow the transport's buffer
        without bound (auto replies are queued without a drain); §10.4 lets the peer protect itself.
        """
        if self.writer.transport.get_write_buffer_size() > AUTO_REPLY_BACKLOG:
            if not self.pongs_withheld:
                self.trace.note("note", "pongs-withheld", why="the target does not read what we send")
            self.pongs_withheld += 1
            return
        self.send_nowait(build_frame(Opcode.PONG, payload, mask=self.we_mask), "auto-pong")

    def _on_data(self, frame: Frame) -> None:
        if frame.opcode == 0:
            if self._building is None:
                frame.violations.append("continuation-without-start")
                return
        else:
            if self._building is not None:
                frame.violations.append("message-inside-message")
            self._building = MessageBuilder(frame.opcode, self.trace.now())
            if self.deflate is not None and frame.rsv & 4:
                self._compressed, self._compressed_size = [], 0
            else:
                self._compressed = None
        builder = self._building
        self.payload_received += len(frame.payload)
        if self._compressed is not None:
            if not self._add_compressed(frame, builder):
                if frame.fin:  # not inflatable: no message was delivered
                    self._building, self._compressed = None, None
                return
            if not frame.fin:
                return
        else:
            builder.add(frame.payload, final=frame.fin)
        if builder.utf8 is not None and not builder.utf8.valid and "invalid-utf8" not in frame.violations:
            frame.violations.append("invalid-utf8")
        if frame.fin:
            self.obs.messages.append(builder.finish())
            self._building = None

    def _add_compressed(self, frame: Frame, builder: MessageBuilder) -> bool:
        """Collect a compressed message's frames; at its last frame inflate it (bounded) into ``builder``.

        The compressed payload is bounded like one frame (the parser's cap), the inflated message by
        the session's ``max_output``: a decompression bomb costs the peer at most that much.
        True when the message goes on (more frames to come, or inflated into ``builder``).
        """
        assert self._compressed is not None and self.deflate is not None
        self._compressed.append(frame.payload)
        self._compressed_size += len(frame.payload)
        if self._compressed_size > self.parser.max_payload:
            self._oversize(self._compressed_size, "compressed message")
            return False
        if not frame.fin:
            return True
        parts, self._compressed = self._compressed, None
        try:
            inflated = self.deflate.decompressor.inflate(parts)
        except deflate.DeflateError as exc:
            if exc.rule == deflate.TOO_LARGE:
                self._oversize(self.deflate.max_output + 1, "inflated message")
                return False
            frame.violations.append(exc.rule)
            self.trace.note(
                "in", "inflate-failed", rule=exc.rule, detail=exc.detail, compressed=self._compressed_size
            )
            return False
        frame.violations.extend(v.rule for v in inflated.violations)
        self.trace.note(
            "in",
            "inflated",
            compressed=inflated.compressed_size,
            inflated=inflated.inflated_size,
            final_blocks=inflated.final_blocks,
        )
        builder.add(inflated.data, final=True)
        return True

    def _oversize(self, size: int, what: str) -> None:
        if self.obs.oversized_frame is None:
            self.obs.oversized_frame = size
            self.trace.note("in", "oversized", length=size, cap=self.parser.max_payload, what=what)
            self.writer.transport.abort()

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
            await self.pause(delay)  # the write itself still goes out: the same bytes as before
        size = chop if chop else SLICE
        view = memoryview(data)  # slices without copies; the transport copies only what it must queue
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
                self.writer.write(view[start : start + size])
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
                    await self.pause(delay)  # the next round's target_ended check stops the write
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

    async def pause(self, seconds: float) -> bool:
        """A prescribed pause, as an upper bound: True (at once) when the target ends the connection.

        A case's ``sleep`` and ``delay`` put the same bytes on the wire as a plain sleep up to the
        target's reaction; once the target has failed the connection there is nothing left to pace,
        and waiting out the pause would only make a fail-fast target cost as much as a slow one.
        """
        return await self.wait_until(lambda: self.obs.target_ended, seconds)

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

    async def close_tcp(self, *, half_close: bool = False) -> None:
        """Close TCP. ``half_close`` (the peer as server, after the closing handshake): send FIN first,
        then keep reading until the client's FIN (bounded), so that frames a client sends after its
        close reply are seen every time instead of depending on when the socket went away."""
        if self.write_failed and not self.eof:
            self.salvage()
        if self.obs.tcp_closed_by is None:
            self.obs.tcp_closed_by = "peer"
            self.obs.tcp_closed_at = self.trace.now()
            self.trace.note("tcp", "closed-by-peer", half_close=half_close)
        if half_close and not self.eof and not self.write_failed and self.writer.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                self.writer.write_eof()
                await self.wait_until(lambda: self.eof, HALF_CLOSE_WAIT)
        if self.pongs_withheld:
            self.obs.notes.append(
                f"{self.pongs_withheld} ping(s) left unanswered: the target did not read what the peer sent "
                f"(more than {AUTO_REPLY_BACKLOG} bytes were waiting)"
            )
        if self.write_failed:
            self.writer.transport.abort()  # unsent bytes would only delay the close
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 1.0)
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
        self._close_salvage_fd()
