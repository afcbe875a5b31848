"""What the peer saw the target do, reduced to what verdicts need.

Received data messages are kept as (opcode, length, sha256, preview) rather than whole payloads: a
16 MiB echo is compared by digest, and a run of 1000 echoes does not keep 4 MB alive per case.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from harness.wire.handshake import HttpHead
from harness.wire.utf8 import Utf8Validator

VALID_CLOSE_CODES = frozenset([*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)])


def close_code_valid(code: int) -> bool:
    """May this code appear in a close frame on the wire? (RFC 6455 §7.4.1, §7.4.2, IANA registry)."""
    return code in VALID_CLOSE_CODES


@dataclass(slots=True)
class Message:
    opcode: int
    length: int
    sha256: str
    head: bytes
    t: float
    utf8_error: int | None = None

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

    def add(self, data: bytes, *, final: bool) -> None:
        self._hash.update(data)
        if len(self.head) < 64:
            self.head += data[: 64 - len(self.head)]
        self.length += len(data)
        if self.utf8 is not None:
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
    problems: list[str] = field(default_factory=list)


def parse_close(payload: bytes, t: float) -> CloseInfo:
    """Decode a close body, listing every rule it breaks (§5.5.1, §7.4)."""
    if not payload:
        return CloseInfo(None, b"", t, 0)
    if len(payload) == 1:
        return CloseInfo(None, payload, t, 1, ["close-payload-of-1-byte"])
    code = int.from_bytes(payload[:2], "big")
    reason = payload[2:]
    info = CloseInfo(code, reason, t, len(payload))
    if not close_code_valid(code):
        info.problems.append(f"invalid-close-code-{code}")
    try:
        reason.decode("utf-8")
    except UnicodeDecodeError:
        info.problems.append("close-reason-invalid-utf8")
    return info


@dataclass(slots=True)
class Observed:
    """Everything the verdict looks at, filled in by the connection and the script runner."""

    handshake_ok: bool = False
    handshake_error: str | None = None
    handshake_status: int | None = None
    response: HttpHead | None = None
    response_dropped: bool = False  # TCP closed before any response byte
    offered_protocols: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    pongs: list[bytes] = field(default_factory=list)
    close: CloseInfo | None = None
    close_sent: CloseInfo | None = None
    tcp_closed_by: str | None = None  # "target" | "peer"
    tcp_closed_at: float | None = None
    violations: list[str] = field(default_factory=list)
    sent_messages: list[tuple[int, int, str]] = field(default_factory=list)  # opcode, length, sha256
    pings_sent: list[bytes] = field(default_factory=list)
    failed_at_checkpoint: bool | None = None
    steps_skipped: int = 0
    waited_out: bool = False
    unmet: list[str] = field(default_factory=list)
    peer_is_server: bool = False  # client-role cases: the peer closes TCP, not the target
    peer_disconnected: bool = False  # a `disconnect` step dropped TCP on purpose
    sent_after_close: int = 0  # frames the peer wrote after its own close frame (§5.5.1 violation)
    notes: list[str] = field(default_factory=list)

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
