"""The record of one case: every frame and raw write both ways, with monotonic timestamps.

Traces are what a person reads when a case fails, so they keep payload previews (text and hex), the
violations found in each received frame, and who closed TCP and when. A performance case can send
65 536 frames; the trace keeps the first and last ``HEAD``/``TAIL`` events and says how many it elided,
so a trace file stays small without hiding the beginning or the end of the exchange.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

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


class Trace:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.head: list[dict[str, Any]] = []
        self.tail: deque[dict[str, Any]] = deque(maxlen=TAIL)
        self.elided = 0
        self.handshake_request: str | None = None
        self.handshake_response: str | None = None

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 6)

    def add(self, event: dict[str, Any]) -> None:
        event.setdefault("t", self.now())
        if len(self.head) < HEAD:
            self.head.append(event)
            return
        if len(self.tail) == TAIL:
            self.elided += 1
        self.tail.append(event)

    def frame(self, direction: str, frame: Frame, *, chop: int | None = None) -> None:
        event: dict[str, Any] = {
            "dir": direction,
            "type": "frame",
            "opcode": frame.opcode,
            "name": opcode_name(frame.opcode),
            "fin": frame.fin,
            "rsv": frame.rsv,
            "masked": frame.masked,
            "length": frame.length,
            **preview(frame.payload),
        }
        if len(frame.payload) != frame.length:
            event["sent_bytes"] = len(frame.payload)
        if chop:
            event["chop"] = chop
        if frame.violations:
            event["violations"] = list(frame.violations)
        self.add(event)

    def note(self, direction: str, kind: str, **fields: Any) -> None:
        self.add({"dir": direction, "type": kind, **fields})

    def events(self) -> list[dict[str, Any]]:
        if not self.elided:
            return [*self.head, *self.tail]
        gap = {"dir": "note", "type": "elided", "count": self.elided, "t": self.tail[0]["t"]}
        return [*self.head, gap, *self.tail]

    def to_json(self) -> dict[str, Any]:
        return {
            "handshake": {"request": self.handshake_request, "response": self.handshake_response},
            "events": self.events(),
        }
