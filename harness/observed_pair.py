"""What the interop relay saw of one client x server connection: the contract between the relay (it
writes one) and the interop verdict (it reads one).

It sits beside ``observed`` (below the verdict and the relay) for the same reason: neither imports the
other, and a unit test can build one by hand. Everything is bounded whatever the two targets send:
messages are kept as digests (``observed.Message``), lists are ``Kept``, the trace keeps a head and a
tail. Every violation is a ``Finding``: the rule (an id of ``wire.rules``) *and the side that sent
the bytes that broke it*, which is the one thing a pair's verdict must get right.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from harness.observed import CloseInfo, Kept, Message
from harness.wire.deflate import Decompressor
from harness.wire.handshake import HttpHead
from harness.wire.rules import RULES

Side = Literal["client", "server"]
SIDES: tuple[Side, Side] = ("client", "server")
MAX_MESSAGES = 4096  # digests kept per direction (the largest scenario sends 1000 messages)
MAX_FINDINGS = 64
TRACE_HEAD = 400
TRACE_TAIL = 200


def other(side: Side) -> Side:
    return "server" if side == "client" else "client"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule broken by one side: ``side`` sent the bytes (or failed to send them) that break ``rule``."""

    side: Side
    rule: str
    detail: str = ""
    t: float | None = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise KeyError(f"unknown rule id {self.rule!r}")

    def __str__(self) -> str:
        rule = RULES[self.rule]
        text = f"{rule.short_section} {self.rule}"
        return f"{self.side}: {text}: {self.detail}" if self.detail else f"{self.side}: {text}"


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One line of the pair's trace: when (seconds since the client connected), who sent it, what."""

    t: float
    side: Side
    kind: str  # "head", "frame", "message", "tcp", "note"
    text: str


@dataclass(slots=True)
class SideSeen:
    """What one side sent, as the relay parsed it."""

    head: HttpHead | None = None  # the request (client) or the response (server)
    octets: int = 0  # bytes this side sent
    writes: int = 0  # TCP reads the relay made of this side (a chop is preserved: one read, one write)
    frames: int = 0
    messages: Kept[Message] = field(default_factory=lambda: Kept(MAX_MESSAGES))
    compressed_messages: int = 0
    pings: Kept[bytes] = field(default_factory=lambda: Kept(16))
    pongs: Kept[bytes] = field(default_factory=lambda: Kept(16))
    last_ping_t: float | None = None  # when this side's last ping went through the relay
    close: CloseInfo | None = None
    closes: int = 0
    eof_t: float | None = None  # when this side closed its half of TCP (or reset it)


@dataclass(slots=True)
class PairSeen:
    """Both sides of one connection through the relay."""

    client: SideSeen = field(default_factory=SideSeen)
    server: SideSeen = field(default_factory=SideSeen)
    connections: int = 0  # client connections the relay accepted
    upstream_failed: str | None = None  # the relay could not reach the server
    status: int | None = None  # the server's response status
    protocol: str | None = None  # the subprotocol the server selected (None: none)
    extensions: list[str] = field(default_factory=list)  # the server's Sec-WebSocket-Extensions lines
    deflate: bool = False  # permessage-deflate negotiated and validated by inflating
    findings: Kept[Finding] = field(default_factory=lambda: Kept(MAX_FINDINGS))
    trace: Kept[TraceEvent] = field(default_factory=lambda: Kept(TRACE_HEAD, tail=TRACE_TAIL))
    first_close: Side | None = None  # who sent the first close frame
    inflaters: dict[Side, Decompressor] = field(default_factory=dict)  # per sender, once negotiated

    def side(self, side: Side) -> SideSeen:
        return self.client if side == "client" else self.server

    def blame(self, side: Side, rule: str, detail: str = "", t: float | None = None) -> None:
        self.findings.append(Finding(side, rule, detail, t))
        self.trace.append(TraceEvent(t or 0.0, side, "violation", f"{rule}: {detail}"))

    def findings_of(self, side: Side) -> list[Finding]:
        return [f for f in self.findings if f.side == side]
