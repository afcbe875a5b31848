"""One direction of a relayed connection, parsed and checked: the head, then every frame.

The relay forwards bytes untouched and hands a copy to one ``Direction`` per side. A direction knows
what its sender is (client or server), so every rule it finds broken is blamed on that sender: the
request's and the response's rules (``wire.handshake_rules``), masking (§5.1), RSV and opcodes (§5.2),
control frames (§5.5), continuation state (§5.4), UTF-8 (§8.1), close bodies (§5.5.1, §7.4), data after
close (§5.5.1), and with permessage-deflate negotiated the RSV1 placement (RFC 7692 §6.1) and every
compressed message inflated with the agreed window and context (``wire.deflate``).

No I/O: ``feed`` takes bytes and a timestamp, so a unit test drives it without sockets.
"""

from __future__ import annotations

from harness.observed import MessageBuilder, parse_close
from harness.observed_pair import PairSeen, Side, TraceEvent
from harness.wire import deflate as pmd
from harness.wire import extensions as ext
from harness.wire.frames import FrameParser, Opcode, opcode_name
from harness.wire.handshake import HttpHead, find_head_end, parse_head
from harness.wire.handshake_rules import check_request, check_response, request_key
from harness.wire.rules import RULES

MAX_HEAD = 64 * 1024  # a head longer than this is not a WebSocket handshake
MAX_MESSAGE = 64 * 1024 * 1024  # inflation bound per message (the largest scenario echoes 16 MiB)
RSV1 = 4


class Direction:
    """The bytes ``side`` sends, in order. ``pair`` receives what is seen; the server's direction reads
    the client's request from it (the response is checked against the request it answers)."""

    def __init__(self, side: Side, pair: PairSeen) -> None:
        self.side = side
        self.pair = pair
        self.seen = pair.side(side)
        self._head = bytearray()
        self._head_done = False
        self._parser: FrameParser | None = None
        self._message: MessageBuilder | None = None
        self._compressed = False
        self._parts: list[bytes] = []
        self._inflater: pmd.Decompressor | None = None
        self._closed_sent = False
        self.upgraded = False  # False after a non-101 response: the rest is HTTP, not frames

    # -- input ---------------------------------------------------------------------------------------

    def feed(self, data: bytes, t: float) -> None:
        self.seen.octets += len(data)
        self.seen.writes += 1
        if not self._head_done:
            self._head += data
            end = find_head_end(self._head)
            if end < 0:
                if len(self._head) > MAX_HEAD:
                    self._head_done = True
                    self._note(t, "head", f"no end of the HTTP head within {MAX_HEAD} bytes")
                return
            raw, rest = bytes(self._head[:end]), bytes(self._head[end:])
            self._head.clear()
            self._head_done = True
            self._on_head(parse_head(raw), t)
            data = rest
            if not data:
                return
        if not self.upgraded:
            return
        if self._parser is None:
            self._parser = FrameParser(
                expect_masked=self.side == "client",
                max_payload=MAX_MESSAGE,
                rsv_allowed=RSV1 if self.pair.deflate else 0,
            )
        for frame in self._parser.feed(data):
            self._on_frame(frame.fin, frame.rsv, frame.opcode, frame.payload, frame.violations, t)
        if self._parser.oversized is not None:
            self._note(t, "frame", f"a frame declares {self._parser.oversized} bytes: parsing stops")

    def eof(self, t: float) -> None:
        """This side closed (or reset) its half of TCP."""
        self.seen.eof_t = t
        self._note(t, "tcp", "closed its half of TCP")
        if self._parser is not None and self._parser.buffered:
            self.pair.blame(
                self.side, "truncated-frame", f"{self._parser.buffered} bytes of an incomplete frame", t
            )

    # -- the head ------------------------------------------------------------------------------------

    def _on_head(self, head: HttpHead, t: float) -> None:
        self.seen.head = head
        self._note(t, "head", head.start_line)
        if self.side == "client":
            problem = check_request(head)
            if problem is not None:
                self.pair.blame("client", problem.rule, problem.detail, t)
            self.upgraded = True  # frames follow if the server says 101; the server's side decides
            return
        self.pair.status = head.status
        if head.status != 101:
            return
        self.upgraded = True
        request = self.pair.client.head
        key = request_key(request) if request is not None else None
        if request is None or key is None:
            return  # the client's request broke its own rule already
        problem = check_response(head, key, request)
        if problem is not None:
            self.pair.blame("server", problem.rule, problem.detail, t)
        chosen = head.get_all("Sec-WebSocket-Protocol")
        self.pair.protocol = chosen[0].strip() if chosen else None
        self.pair.extensions = head.get_all("Sec-WebSocket-Extensions")
        accepted = [e for e in ext.parse(self.pair.extensions) if e.name == ext.PMD]
        if accepted and problem is None:
            try:
                params = pmd.DeflateParams.from_response(accepted[0])
            except ValueError as exc:
                self.pair.blame("server", "response-pmd-parameters", str(exc), t)
                return
            self.pair.deflate = True
            self.pair.inflaters = {
                side: pmd.Decompressor(params.sent_by(side), max_output=MAX_MESSAGE)
                for side in ("client", "server")
            }

    # -- frames --------------------------------------------------------------------------------------

    def _on_frame(
        self, fin: bool, rsv: int, opcode: int, payload: bytes, violations: list[str], t: float
    ) -> None:
        seen = self.seen
        seen.frames += 1
        flags = ("" if fin else " fin=0") + (f" rsv={rsv}" if rsv else "")
        self._note(t, "frame", f"{opcode_name(opcode)} {len(payload)} bytes{flags}")
        for rule in violations:
            self.pair.blame(self.side, rule, f"{opcode_name(opcode)} frame", t)
        if opcode >= 0x8:
            if rsv & RSV1 and self.pair.deflate:
                self.pair.blame(self.side, "rsv1-on-control-frame", opcode_name(opcode), t)
            self._on_control(opcode, payload, t)
            return
        if self._closed_sent:
            self.pair.blame(self.side, "frame-after-close", f"{opcode_name(opcode)} frame after its close", t)
        if opcode in (Opcode.TEXT, Opcode.BINARY):
            if self._message is not None:
                self.pair.blame(
                    self.side, "message-inside-message", "a new message before the last one's FIN", t
                )
            self._message = MessageBuilder(opcode, t)
            self._compressed = bool(rsv & RSV1) and self.pair.deflate
            self._parts = []
        elif opcode == Opcode.CONTINUATION:
            if rsv & RSV1 and self.pair.deflate:
                self.pair.blame(self.side, "rsv1-on-continuation", "", t)
            if self._message is None:
                self.pair.blame(self.side, "continuation-without-start", "", t)
                return
        else:
            return  # a reserved opcode: already blamed by the parser
        if self._compressed:
            self._parts.append(payload)
            if fin:
                self._inflate(t)
        else:
            self._message.add(payload, final=fin)
        if fin:
            self._finish(t)

    def _inflate(self, t: float) -> None:
        assert self._message is not None
        inflater = self.pair.inflaters[self.side]
        try:
            inflated = inflater.inflate(self._parts)
        except pmd.DeflateError as exc:
            self.pair.blame(self.side, exc.rule if exc.rule in RULES else "deflate-corrupt", exc.detail, t)
            self._message.add(b"", final=True)
            return
        for v in inflated.violations:
            if v.rule in RULES:
                self.pair.blame(self.side, v.rule, v.detail, t)
        self.seen.compressed_messages += 1
        self._message.add(inflated.data, final=True)

    def _finish(self, t: float) -> None:
        assert self._message is not None
        message = self._message.finish()
        self._message = None
        self.seen.messages.append(message)
        self._note(t, "message", message.describe() + (" (compressed)" if self._compressed else ""))
        if message.utf8_error is not None:
            self.pair.blame(self.side, "invalid-utf8", f"text message byte {message.utf8_error}", t)

    def _on_control(self, opcode: int, payload: bytes, t: float) -> None:
        seen = self.seen
        if opcode == Opcode.PING:
            seen.pings.append(payload)
            seen.last_ping_t = t
        elif opcode == Opcode.PONG:
            seen.pongs.append(payload)
        elif opcode == Opcode.CLOSE:
            seen.closes += 1
            if self._closed_sent:
                self.pair.blame(self.side, "close-frame-twice", "", t)
                return
            self._closed_sent = True
            info = parse_close(payload, t)
            seen.close = info
            if self.pair.first_close is None:
                self.pair.first_close = self.side
            for rule in info.problems:
                self.pair.blame(self.side, rule, info.detail, t)
            reason = info.reason.decode("utf-8", "replace")
            self._note(t, "frame", f"close code={info.code} reason={reason!r}")

    def _note(self, t: float, kind: str, text: str) -> None:
        self.pair.trace.append(TraceEvent(t, self.side, kind, text))
