"""The ``flood`` step: many equal messages as fast as the socket accepts them, with stall detection.

Backpressure cases need a load the peer itself does not limit: the measured figure must be the
target's, not the harness's. So frames are built with little Python per frame (a payload template,
a counter in its last 16 bytes, C masking from websockets, a SHA-256 state of the common prefix
copied per message), small frames are batched into one transport write, and the loop yields to the
event loop every MiB so the reader task (draining echoes), the sampler's counters and the case
budget keep running. Every frame gets a fresh random masking key (RFC 6455 §5.3: "a fresh masking
key for each frame"), drawn in bulk from ``os.urandom``.

A stall is "the kernel accepted nothing for ``stall_after`` seconds": the target stopped reading.
Frames enter the transport whole, so when the flood stops at a stall, every frame counted as sent
reaches the target once it reads again, and its echo is expected.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.peer.connection import PeerConnection
from harness.wire.frames import apply_mask

PATTERN = b"wsconform flood payload. "  # ASCII: the same template serves text (valid UTF-8) and binary
COUNTER = 16  # hex digits of the message number at the end of each payload
BATCH = 256 * 1024  # bytes per transport write when frames are small
YIELD_EVERY = 1024 * 1024  # bytes written between two yields to the event loop
POLL = 0.05  # seconds between two progress checks while the transport's buffer is full


@dataclass
class FloodStats:
    """What one flood did; times are on the trace clock (seconds since the case started)."""

    size: int
    opcode: int
    planned: int
    messages: int = 0
    payload: int = 0
    started: float = 0.0
    ended: float = 0.0
    stalled: bool = False
    stall_at: float | None = None  # the last moment the kernel accepted anything
    stopped: str = "done"  # done | stall | target-ended | write-error | budget
    accepted_at_start: int = 0  # payload the kernel had accepted on this connection before the flood
    accepted_at_end: int = 0  # ... and when the flood ended
    in_flight_at_end: int = 0  # ... minus payload received back

    @property
    def busy_s(self) -> float:
        """Time spent pushing: a stall's idle tail does not count."""
        end = self.stall_at if self.stall_at is not None else self.ended
        return max(end - self.started, 1e-6)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "opcode": self.opcode,
            "planned": self.planned,
            "messages": self.messages,
            "payload": self.payload,
            "started": round(self.started, 4),
            "ended": round(self.ended, 4),
            "stalled": self.stalled,
            "stall_at": None if self.stall_at is None else round(self.stall_at, 4),
            "stopped": self.stopped,
            "accepted": self.accepted,
            "in_flight": self.in_flight_at_end,
            "mib_s": round(self.accepted / self.busy_s / 2**20, 1),
        }

    @property
    def accepted(self) -> int:
        return self.accepted_at_end - self.accepted_at_start


class MessageFactory:
    """Frames of one flood: ``size``-byte payloads that differ only in their last COUNTER bytes."""

    def __init__(self, size: int, opcode: int, *, mask: bool) -> None:
        self.size, self.opcode, self.mask = size, opcode, mask
        self.width = min(COUNTER, size)
        prefix_len = size - self.width
        self.prefix = (PATTERN * (prefix_len // len(PATTERN) + 1))[:prefix_len]
        self._prefix_hash = hashlib.sha256(self.prefix)
        first = 0x80 | opcode
        mask_bit = 0x80 if mask else 0
        if size <= 125:
            self.header = struct.pack("!BB", first, mask_bit | size)
        elif size <= 0xFFFF:
            self.header = struct.pack("!BBH", first, mask_bit | 126, size)
        else:
            self.header = struct.pack("!BBQ", first, mask_bit | 127, size)
        self.frame_len = len(self.header) + (4 if mask else 0) + size

    def build(self, seq: int, key: bytes) -> tuple[bytes, str]:
        """The frame of message ``seq`` and the SHA-256 of its payload."""
        tail = f"{seq:0{COUNTER}x}".encode()[-self.width :] if self.width else b""
        digest = self._prefix_hash.copy()
        digest.update(tail)
        payload = self.prefix + tail
        if self.mask:
            return self.header + key + apply_mask(payload, key), digest.hexdigest()
        return self.header + payload, digest.hexdigest()


Record = Callable[[int, int, str], None]  # opcode, size, sha256 of each message sent


async def run_flood(
    conn: PeerConnection, *, size: int, opcode: int, count: int, stall_after: float, record: Record
) -> FloodStats:
    """Write ``count`` messages, stopping early at a stall, when the target ends, or at the budget."""
    loop = asyncio.get_running_loop()
    factory = MessageFactory(size, opcode, mask=conn.we_mask)
    conn.publish_accepted()
    stats = FloodStats(size, opcode, count, started=conn.trace.now(), accepted_at_start=conn.payload_accepted)
    conn.trace.note("out", "flood", count=count, size=size, opcode=opcode, frame=factory.frame_len)
    transport = conn.writer.transport
    _, high = transport.get_write_buffer_limits()
    per_write = max(1, BATCH // factory.frame_len)
    since_yield = 0
    seq = 0
    while seq < count:
        if conn.obs.target_ended or conn.write_failed or transport.is_closing():
            stats.stopped = "target-ended"
            break
        if loop.time() >= conn.deadline:
            stats.stopped = "budget"
            break
        n = min(per_write, count - seq)
        keys = os.urandom(4 * n) if factory.mask else b""
        parts = []
        for i in range(n):
            frame, digest = factory.build(seq + i, keys[4 * i : 4 * i + 4])
            parts.append(frame)
            record(opcode, size, digest)
        data = parts[0] if n == 1 else b"".join(parts)
        conn.writer.write(data)
        conn.bytes_written += len(data)
        conn.payload_written += n * size
        seq += n
        stats.messages, stats.payload = seq, seq * size
        since_yield += len(data)
        if transport.get_write_buffer_size() > high:
            state = await _wait_writable(conn, stall_after, stats)
            since_yield = 0
            if state != "ok":
                stats.stopped = state
                break
        elif since_yield >= YIELD_EVERY:
            since_yield = 0
            conn.publish_accepted()
            await asyncio.sleep(0)
    conn.publish_accepted()
    stats.ended = conn.trace.now()
    stats.accepted_at_end = conn.payload_accepted
    stats.in_flight_at_end = max(0, conn.payload_accepted - conn.payload_received)
    conn.trace.note("note", "flood-end", **stats.to_json())
    return stats


async def _wait_writable(conn: PeerConnection, stall_after: float, stats: FloodStats) -> str:
    """Wait until the transport drained below its low-water mark; or say why it did not.

    Progress is measured on the transport's buffer: while the kernel takes bytes, a slow reader is
    slow, not stalled. ``stall`` when nothing moved for ``stall_after`` seconds.
    """
    loop = asyncio.get_running_loop()
    transport = conn.writer.transport
    drain = asyncio.ensure_future(conn.writer.drain())
    last = transport.get_write_buffer_size()
    progress = loop.time()
    try:
        while True:
            done, _ = await asyncio.wait({drain}, timeout=POLL)
            conn.publish_accepted()
            if drain in done:
                if drain.exception() is not None:
                    conn.write_failed = True
                    conn.trace.note("tcp", "write-error", error=type(drain.exception()).__name__)
                    return "write-error"
                return "ok"
            if conn.obs.target_ended:
                return "target-ended"
            now = loop.time()
            size = transport.get_write_buffer_size()
            if size < last:
                last, progress = size, now
            elif now - progress >= stall_after:
                stats.stalled = True
                stats.stall_at = conn.trace.now() - (now - progress)
                conn.trace.note("note", "stall", seconds=round(now - progress, 3), unsent=size)
                return "stall"
            if now >= conn.deadline:
                return "budget"
    finally:
        if not drain.done():
            drain.cancel()
            with contextlib.suppress(BaseException):
                await drain
