"""The record of one case: every frame and raw write both ways, with monotonic timestamps.

Traces are what a person reads when a case fails, so they keep payload previews (text and hex), the
violations found in each received frame, and who closed TCP and when. A performance case can send
65 536 frames; the trace keeps the first and last ``HEAD``/``TAIL`` events and says how many it elided,
so a trace file stays small without hiding the beginning or the end of the exchange.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, NamedTuple

from harness.wire.frames import Frame, opcode_name

PREVIEW = 48
HEAD = 400
TAIL = 200


def preview(data: bytes) -> dict[str, str]:
    """Text (when the prefix decodes) and hex of the first PREVIEW bytes."""
    head = data[:PREVIEW]
    out = {"hex": head.hex()}
    try:
        out["text"] = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data" and exc.start > 0:
            out["text"] = head[: exc.start].decode("utf-8")
    return out


class _FrameRecord(NamedTuple):
    t: float
    direction: str
    opcode: int
    fin: bool
    rsv: int
    masked: bool
    length: int
    head: bytes
    sent: int
    chop: int | None
    violations: tuple[str, ...]


def _as_dict(event: dict[str, Any] | _FrameRecord) -> dict[str, Any]:
    if isinstance(event, dict):
        return event
    out: dict[str, Any] = {
        "t": event.t,
        "dir": event.direction,
        "type": "frame",
        "opcode": event.opcode,
        "name": opcode_name(event.opcode),
        "fin": event.fin,
        "rsv": event.rsv,
        "masked": event.masked,
        "length": event.length,
        **preview(event.head),
    }
    if event.sent != event.length:
        out["sent_bytes"] = event.sent
    if event.chop:
        out["chop"] = event.chop
    if event.violations:
        out["violations"] = list(event.violations)
    return out


class Trace:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self._last = -1.0
        self.head: list[dict[str, Any] | _FrameRecord] = []
        self.tail: deque[dict[str, Any] | _FrameRecord] = deque(maxlen=TAIL)
        self.elided = 0
        self.handshake_request: str | None = None
        self.handshake_response: str | None = None

    def now(self) -> float:
        """Seconds since the connection started, strictly increasing (1 us steps at least).

        The verdict orders events by these stamps (who sent the first close?); two readings in the same
        microsecond must still keep the order in which they happened.
        """
        t = round(time.monotonic() - self.t0, 6)
        if t <= self._last:
            t = round(self._last + 1e-6, 6)
        self._last = t
        return t

    def add(self, event: dict[str, Any] | _FrameRecord) -> None:
        if isinstance(event, dict):
            event.setdefault("t", self.now())
        if len(self.head) < HEAD:
            self.head.append(event)
            return
        if len(self.tail) == TAIL:
            self.elided += 1
        self.tail.append(event)

    def skip_range(self, count: int) -> range:
        """Of ``count`` frame events about to be recorded in a row, the indices that need no record.

        Past the head, only the last TAIL events survive, so in a run of 65 537 frames all but the
        first that still fit the head and the last TAIL would be pushed out of the tail by their
        successors: they are counted as elided here and never built. The result is the same trace
        as recording each of them, other events interleaved or not (they only push out more).
        """
        start = min(count, max(0, HEAD - len(self.head)))
        stop = max(start, count - TAIL)
        self.elided += stop - start
        return range(start, stop)

    def frame(self, direction: str, frame: Frame, *, chop: int | None = None) -> None:
        """Record a frame cheaply; it is formatted only if it survives into the trace file.

        A 4 MiB message in 64-byte fragments is 65 537 frames, of which the trace keeps 600: building
        a dict with previews for each of them would cost more than putting them on the wire.
        """
        self.record(
            direction,
            frame.opcode,
            frame.fin,
            frame.rsv,
            frame.masked,
            frame.length,
            frame.payload[:PREVIEW],
            len(frame.payload),
            chop,
            tuple(frame.violations),
        )

    def record(
        self,
        direction: str,
        opcode: int,
        fin: bool,
        rsv: int,
        masked: bool,
        length: int,
        head: bytes,
        sent: int,
        chop: int | None = None,
        violations: tuple[str, ...] = (),
    ) -> None:
        """A frame event from its fields (``head``: the payload's first PREVIEW bytes, ``sent``: the
        payload bytes actually sent), for callers that have no ``Frame`` object to hand."""
        t = self.now()
        self.add(_FrameRecord(t, direction, opcode, fin, rsv, masked, length, head, sent, chop, violations))

    def note(self, direction: str, kind: str, **fields: Any) -> None:
        self.add({"dir": direction, "type": kind, **fields})

    def events(self) -> list[dict[str, Any]]:
        head = [_as_dict(e) for e in self.head]
        tail = [_as_dict(e) for e in self.tail]
        if not self.elided:
            return head + tail
        gap = {"dir": "note", "type": "elided", "count": self.elided, "t": tail[0]["t"]}
        return [*head, gap, *tail]

    def to_json(self) -> dict[str, Any]:
        return {
            "handshake": {"request": self.handshake_request, "response": self.handshake_response},
            "events": self.events(),
        }
