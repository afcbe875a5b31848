"""What a case knows about its target beyond the wire, and the figures a resource case measures.

The peer runs a case knowing only a host and a port; a few steps need more: a flood sized by the
target's declared ``max_message_size``, or a sampler of the target's memory. The engine sets a
``CaseContext`` for the duration of the case (a context variable, so the peer's entry points keep
their signatures and parallel workers never share one); the script runner picks it up, attaches the
sampler to its connection, and records what the load steps did. ``figures`` turns it all into the
numbers that land in the result record (and in results.json) next to the verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.peer.flood import FloodStats
from harness.sampling import Sample, Sampler, downsample, kernel_tcp_buffers
from harness.wire.frames import DEFAULT_MAX_PAYLOAD

if TYPE_CHECKING:
    from harness.observed import Observed
    from harness.peer.connection import PeerConnection

# Socket buffers the peer asks for in resource cases (Linux doubles the value): what the peer's own
# kernel holds counts in "absorbed", so it is kept small next to what the target holds.
PEER_SOCKET_BUFFER = 64 * 1024
MIB = 1024 * 1024

CURRENT: ContextVar[CaseContext | None] = ContextVar("wsconform_case_context", default=None)


def current() -> CaseContext | None:
    return CURRENT.get()


@dataclass
class CaseContext:
    policies: dict[str, Any] = field(default_factory=dict)
    sampler: Sampler | None = None
    floods: list[FloodStats] = field(default_factory=list)
    conn: PeerConnection | None = None
    load_mark: float | None = None  # sampler clock: when the first load step started (the baseline)
    peer_buffers: tuple[int, int] | None = None
    frame_cap: int = DEFAULT_MAX_PAYLOAD  # the largest frame payload the peer's parser buffers
    key_history: set[str] | None = None  # Sec-WebSocket-Keys this client target sent in earlier cases
    _ticker: asyncio.Task[None] | None = None

    def policy_size(self, spec: int | str) -> int:
        """A size, or ``max_message_size[+-N]`` resolved against the target's declared policy."""
        if isinstance(spec, int):
            return spec
        found = re.fullmatch(r"max_message_size([+-][0-9]+)?", spec)
        limit = self.policies.get("max_message_size")
        if found is None or not isinstance(limit, int):
            raise ValueError(f"size {spec!r} needs the target's declared max_message_size (target.yaml)")
        return max(0, limit + int(found.group(1) or 0))

    def attach(self, conn: PeerConnection) -> None:
        """Called by the script runner on its connection (inside the event loop)."""
        self.conn = conn
        if self.sampler is None:
            return
        self.peer_buffers = conn.set_socket_buffers(PEER_SOCKET_BUFFER)
        self.sampler.counters = conn
        self._ticker = asyncio.ensure_future(self._publish(conn, self.sampler.interval / 2))

    @staticmethod
    async def _publish(conn: PeerConnection, every: float) -> None:
        """Keep the kernel-accepted counter current while nothing writes (drains after a pause)."""
        with contextlib.suppress(Exception):
            while not conn.writer.transport.is_closing():
                conn.publish_accepted()
                await asyncio.sleep(every)

    def mark_load(self) -> None:
        """The first flood or pause: memory growth is measured from the last sample before it."""
        if self.load_mark is None and self.sampler is not None:
            self.load_mark = self.sampler.now()

    # -- after the case --------------------------------------------------------------------------

    def samples(self) -> list[dict[str, Any]]:
        if self.sampler is None:
            return []
        ratios = self.sampler.ratios()
        return [s.to_json(ratios) for s in downsample(self.sampler.samples)]

    def figures(self, obs: Observed) -> dict[str, Any]:
        """The numbers of a resource case; None where something could not be measured."""
        sampler = self.sampler
        samples: list[Sample] = list(sampler.samples) if sampler is not None else []
        out: dict[str, Any] = {
            "interval_s": sampler.interval if sampler is not None else None,
            "samples": len(samples),
            "samples_missed": sampler.missed if sampler is not None else 0,
        }
        out.update(_memory(samples, self.load_mark))
        peak = max(samples, key=lambda s: s.in_flight, default=None)
        at_end = max((f.in_flight_at_end for f in self.floods), default=0)
        out["absorbed_bytes"] = max(peak.in_flight if peak else 0, at_end)
        ratios = sampler.ratios() if sampler is not None else None
        held = [h for s in samples if ratios and (h := s.held(ratios)) is not None]
        out["held_bytes"] = max(held) if held else None
        out["kernel_bytes"] = peak.kernel(ratios) if peak is not None and ratios else None
        out["stalled"] = any(f.stalled for f in self.floods)
        stall = next((f for f in self.floods if f.stalled), None)
        out["stall_s"] = round(stall.stall_at - stall.started, 3) if stall and stall.stall_at else None
        out["messages_sent"] = len(obs.sent_messages)
        out["messages_received"] = len(obs.messages)
        out["bytes_sent"] = sum(size for _, size, _ in obs.sent_messages)
        out["bytes_received"] = self.conn.payload_received if self.conn is not None else None
        out["drain_s"] = self._drain_s(obs)
        # The push rate means something only where nothing stopped the flood: a stalled one measures
        # the stall. Where it completes against a fast reader it is the peer's own throughput.
        free = [f for f in self.floods if f.stopped == "done" and not f.stalled]
        out["peer_mib_s"] = (
            round(sum(f.accepted for f in free) / sum(f.busy_s for f in free) / MIB, 1) if free else None
        )
        if self.floods:
            out["floods"] = [f.to_json() for f in self.floods]
        if self.peer_buffers is not None:
            out["peer_sndbuf"], out["peer_rcvbuf"] = self.peer_buffers
        out.update(kernel_tcp_buffers())
        return out

    def _drain_s(self, obs: Observed) -> float | None:
        """From resume_reading to the last echo, when every message sent came back."""
        conn = self.conn
        if conn is None or conn.resumed_at is None or not obs.messages:
            return None
        if len(obs.messages) < len(obs.sent_messages):
            return None
        return round(max(0.0, obs.messages[-1].t - conn.resumed_at), 3)


def _memory(samples: list[Sample], mark: float | None) -> dict[str, Any]:
    """Baseline (last sample before the load), peak after it, and the growth between them."""
    measured = [s for s in samples if s.rss is not None]
    if not measured:
        return {"baseline_rss": None, "peak_rss": None, "peak_rss_growth": None}
    start = mark if mark is not None else measured[0].t
    before = [s for s in measured if s.t <= start]
    baseline = (before[-1] if before else measured[0]).rss or 0
    after = [s.rss or 0 for s in measured if s.t >= start] or [baseline]
    peak = max(after)
    return {"baseline_rss": baseline, "peak_rss": peak, "peak_rss_growth": max(0, peak - baseline)}
