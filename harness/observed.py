"""What was seen on one connection: the contract between the peer (writes it) and the verdict (reads it).

It sits below both so that neither imports the other: the peer fills an ``Observed`` while it plays a
case, the verdict turns one into an outcome, and a unit test can build one by hand.

Everything in it is **bounded**, whatever the target does: a target that floods frames after its 101
must cost the harness counts and digests, not memory. Received data messages are kept as (opcode,
length, sha256, preview) rather than whole payloads (a 16 MiB echo is compared by digest), and every
list a target can grow (messages, pongs, violations) keeps what a verdict can use (as many items as the
peer could legitimately expect, plus a margin, and a short tail) and counts the rest.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from harness.wire.handshake import HttpHead
from harness.wire.rules import Violation
from harness.wire.utf8 import Utf8Validator

VALID_CLOSE_CODES = frozenset([*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)])
MARGIN = 64  # items kept beyond what the peer could legitimately expect: the first extras name the fault
TAIL = 16
MAX_VIOLATIONS = 64

T = TypeVar("T")


def close_code_valid(code: int) -> bool:
    """May this code appear in a close frame on the wire? (RFC 6455 §7.4.1, §7.4.2, IANA registry)."""
    return code in VALID_CLOSE_CODES


class Kept(Generic[T]):
    """An append-only list that keeps its first ``limit()`` items and a short tail, and counts all.

    ``len()`` is the number appended; iteration and ``head`` give what was kept. ``limit`` is a callable
    so that the bound can follow the case (echoes kept up to the number of messages the peer sent).
    """

    __slots__ = ("_limit", "count", "head", "tail")

    def __init__(self, limit: Callable[[], int] | int, tail: int = TAIL) -> None:
        self._limit = limit if callable(limit) else (lambda: limit)
        self.head: list[T] = []
        self.tail: deque[T] = deque(maxlen=tail)
        self.count = 0

    def append(self, item: T) -> None:
        self.count += 1
        if not self.tail and len(self.head) < self._limit():
            self.head.append(item)
        else:
            self.tail.append(item)

    def extend(self, items: list[T]) -> None:
        for item in items:
            self.append(item)

    def __len__(self) -> int:
        return self.count

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[T]:
        yield from self.head
        yield from self.tail

    @property
    def elided(self) -> int:
        return self.count - len(self.head) - len(self.tail)

    @property
    def last(self) -> T | None:
        if self.tail:
            return self.tail[-1]
        return self.head[-1] if self.head else None

    def __getitem__(self, index: int) -> T:
        """Items of the kept head by position; ``-1`` is the last one appended."""
        if index == -1 and (item := self.last) is not None:
            return item
        return self.head[index]


@dataclass(slots=True)
class Message:
    opcode: int
    length: int
    sha256: str
    head: bytes
    t: float
    utf8_error: int | None = None

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.opcode, self.length, self.sha256)

    def describe(self) -> str:
        kind = {1: "text", 2: "binary"}.get(self.opcode, f"opcode {self.opcode}")
        return f"{kind} of {self.length} bytes (sha256 {self.sha256[:12]}…)"


class MessageBuilder:
    """Reassembles one fragmented message incrementally (digest, preview, UTF-8 check)."""

    def __init__(self, opcode: int, t: float) -> None:
        self.opcode = opcode
        self.t = t
        self.length = 0
        self._hash = hashlib.sha256()
        self.head = b""
        self.utf8 = Utf8Validator() if opcode == 1 else None

    def add(self, data: bytes, *, final: bool, checked: Utf8Validator | None = None) -> None:
        """Append a fragment; ``checked``: a copy of the validator that has already been fed ``data``
        (the peer validates a run of fragments before taking it), which replaces ours."""
        self._hash.update(data)
        if len(self.head) < 64:
            self.head += data[: 64 - len(self.head)]
        self.length += len(data)
        if checked is not None:
            self.utf8 = checked
        elif self.utf8 is not None:
            self.utf8.feed(data, final=final)

    def finish(self) -> Message:
        err = self.utf8.error_offset if self.utf8 is not None else None
        return Message(self.opcode, self.length, self._hash.hexdigest(), self.head, self.t, err)


@dataclass(slots=True)
class CloseInfo:
    code: int | None
    reason: bytes
    t: float
    raw_length: int
    problems: list[str] = field(default_factory=list)  # rule ids (wire.rules)
    detail: str = ""

    @property
    def normal(self) -> bool:
        """1000, 1001 or no code: a close that says nothing went wrong (§7.4.1).

        A target that answers input it had to fail with a *normal* close did not detect the error.
        """
        return self.code in (None, 1000, 1001)


def parse_close(payload: bytes, t: float) -> CloseInfo:
    """Decode a close body, naming every rule it breaks (§5.5.1, §7.4)."""
    if not payload:
        return CloseInfo(None, b"", t, 0)
    if len(payload) == 1:
        return CloseInfo(None, payload, t, 1, ["close-payload-1-byte"], "1-byte close body")
    code = int.from_bytes(payload[:2], "big")
    reason = payload[2:]
    info = CloseInfo(code, reason, t, len(payload))
    if not close_code_valid(code):
        info.problems.append("invalid-close-code")
        info.detail = f"code {code}"
    try:
        reason.decode("utf-8")
    except UnicodeDecodeError as exc:
        info.problems.append("close-reason-invalid-utf8")
        info.detail = f"invalid UTF-8 at reason byte {exc.start}"
    return info


@dataclass(slots=True)
class Observed:
    """Everything the verdict looks at, filled in by the connection and the script runner."""

    handshake_ok: bool = False
    handshake_error: str | None = None
    handshake_violation: Violation | None = None  # the response rule a 101 broke (peer as client)
    handshake_status: int | None = None
    response: HttpHead | None = None
    response_dropped: bool = False  # TCP closed before any response byte
    response_silent: bool = False  # no response byte within the case timeout (the server still waits)
    connect_failed: bool = False  # no TCP connection at all
    offered_protocols: list[str] = field(default_factory=list)
    close: CloseInfo | None = None
    close_sent: CloseInfo | None = None
    tcp_closed_by: str | None = None  # "target" | "peer"
    tcp_closed_at: float | None = None
    sent_messages: list[tuple[int, int, str]] = field(default_factory=list)  # opcode, length, sha256
    pings_sent: list[bytes] = field(default_factory=list)
    failed_at_checkpoint: bool | None = None
    steps_skipped: int = 0
    waited_out: bool = False
    unmet: list[str] = field(default_factory=list)
    peer_is_server: bool = False  # client-role cases: the peer closes TCP, not the target
    peer_disconnected: bool = False  # a `disconnect` step dropped TCP on purpose
    sent_after_close: int = 0  # frames the peer wrote after its own close frame (§5.5.1 violation)
    oversized_frame: int | None = None  # a frame declared beyond what the parser buffers; TCP dropped
    frame_cap: int | None = None
    # Why the case could not be played although nothing was wrong: a case that needs permessage-deflate
    # whose offer the server declined, or whose client target offered none (legal, RFC 7692 §7), or
    # test data that is not present (a `series` file). The verdict is UNIMPLEMENTED, not FAIL.
    unimplemented: str | None = None
    notes: list[str] = field(default_factory=list)
    # Response time (trace clock, s): the peer's handshake message fully written (None when the
    # target answered, or dropped, before the peer could finish writing it), and the target's first
    # byte after it or its drop (None: nothing within the case's budget).
    head_sent_t: float | None = None
    answer_t: float | None = None
    answer_started_t: float | None = None  # when the peer began writing its handshake message
    # Bounded by what the peer sent: an echo beyond that is an extra, and the first extras are enough.
    messages: Kept[Message] = field(init=False)
    pongs: Kept[bytes] = field(init=False)
    violations: Kept[Violation] = field(init=False)

    def __post_init__(self) -> None:
        self.messages = Kept(lambda: len(self.sent_messages) + MARGIN)
        self.pongs = Kept(lambda: len(self.pings_sent) + MARGIN)
        self.violations = Kept(MAX_VIOLATIONS)

    @property
    def response_s(self) -> float | None:
        """Seconds from the end of the peer's handshake message to the target's first byte or drop.

        0 when the target answered before the peer finished writing (a server refusing a head it
        will not read to the end); None when it did not answer at all.
        """
        if self.answer_t is None:
            return None
        if self.head_sent_t is None or self.answer_t <= self.head_sent_t:
            return 0.0
        return self.answer_t - self.head_sent_t

    @property
    def target_failed(self) -> bool:
        """Did the target end the connection (close frame sent or TCP closed) on its own?"""
        initiated_close = self.close is not None and (
            self.close_sent is None or self.close.t < self.close_sent.t
        )
        dropped = self.tcp_closed_by == "target" and self.close_sent is None
        return initiated_close or dropped

    @property
    def target_ended(self) -> bool:
        """Has the target sent any close frame or closed TCP (its answer to a bad close counts)?"""
        return self.close is not None or self.tcp_closed_by == "target"

    @property
    def close_replied(self) -> bool:
        """Did the target's close frame answer the peer's (rather than start the closing handshake)?"""
        return self.close is not None and self.close_sent is not None and self.close_sent.t <= self.close.t


MAX_EVENTS = 2000
MAX_EVENT_BYTES = 1024 * 1024  # what the kept head of a client's events may add up to (JSON lines)
EVENTS_TAIL = 16  # the last events are kept too: the close event a verdict needs comes last
MAX_GARBAGE = 20


@dataclass
class ClientReport:
    """What a client target's adapter reported: its API events (JSON lines) and how its process ended.

    Bounded like the rest: an adapter that prints events as fast as it can keeps the first
    ``MAX_EVENTS`` (at most ``MAX_EVENT_BYTES`` of them: 2000 lines of 64 KiB would be 128 MiB, and
    the trace file and the report copy them again), then only the last ``EVENTS_TAIL``, and counts
    the rest. ``events`` is what was kept, in order: the API judge reads the order of error and close.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    garbage: list[str] = field(default_factory=list)
    events_dropped: int = 0
    _head: int | None = field(default=None, repr=False)  # len(events) when the head filled up
    _head_bytes: int = field(default=0, repr=False)

    def add_event(self, event: dict[str, Any], size: int | None = None) -> None:
        """Keep ``event`` (its line was ``size`` bytes long; measured when not given) or count it."""
        if size is None:
            size = len(json.dumps(event, default=str))
        if self._head is None:
            if len(self.events) < MAX_EVENTS and self._head_bytes + size <= MAX_EVENT_BYTES:
                self.events.append(event)
                self._head_bytes += size
                return
            self._head = len(self.events)
        self.events.append(event)
        if len(self.events) > self._head + EVENTS_TAIL:
            del self.events[self._head]  # the oldest of the tail: at most EVENTS_TAIL items move
            self.events_dropped += 1

    def add_garbage(self, text: str) -> None:
        if len(self.garbage) < MAX_GARBAGE:
            self.garbage.append(text)
