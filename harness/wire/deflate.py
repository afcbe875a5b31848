"""permessage-deflate (RFC 7692 §7): compress and inflate messages, correctly and deliberately not.

The scripted peer compresses what it sends and inflates what a target sends. A conformance peer needs
more than a library's codec: it must put encodings on the wire that a correct endpoint never produces
(or rarely does), and when it inflates it must say *which* rule a target broke, never allocate more
than a bound however hostile the data, and never be fooled by zlib's tolerance. Hence this module.

Directions. Every agreement has two independent halves: what the server sends is governed by
``server_max_window_bits`` / ``server_no_context_takeover``, what the client sends by the ``client_*``
pair (RFC 7692 §7.1.1, §7.1.2). ``DeflateParams.sent_by(role)`` gives the half that applies to one
sender; ``Compressor`` and ``Decompressor`` each work on one ``Direction``.

Wire form (§7.2.1): raw DEFLATE, flushed so the data ends with an empty stored block, whose last four
octets ``00 00 ff ff`` are removed; the receiver appends them again before inflating (§7.2.2).

Only compressed messages enter the LZ77 window on either side (§7.2.1 / §7.2.2 speak of "the last
compressed message"), so call ``compress`` / ``inflate`` for compressed messages only.

The 8-bit window. RFC 7692 allows window bits 8..15 (§7.1.2.1, §7.1.2.2), but zlib's deflate cannot
work with a 256-byte window: since 1.2.9 it refuses raw ``windowBits`` 8 ("Invalid initialization
option"), and before that it silently used 9 ("until 256-byte window bug fixed", deflate.c). A peer
that agreed to 8 must still never emit a distance over 256. ``Compressor`` therefore compresses with
a 512-byte zlib window and, by default, a ``Z_FULL_FLUSH`` after every 256 input bytes: zlib's
documented contract for a full flush is that "decompression can restart from this point", i.e. no
later match refers to data before it, so no distance can exceed 255 whatever zlib build is linked.
``window8="zlib-limit"`` instead relies on the reference zlib never emitting a distance larger than
``w_size - MIN_LOOKAHEAD`` (512 - 262 = 250 for 9 bits): better compression and real cross-message
references at window 8, but a property of one implementation (forks such as Intel's zlib once broke
it for small windows), verified by tests/test_deflate.py against the zlib linked here. Inflation has
no such problem: zlib's inflate accepts raw 8 and then keeps exactly 256 bytes of history. Autobahn's
12.x/13.x results depend on the zlib version only where an 8-bit window gets negotiated (see
docs/autobahn-12-13.md): its Python 2 peer calls ``compressobj(wbits=-8)`` when a target selects
8 for the direction Autobahn sends, which works on zlib <= 1.2.8 and raises on later versions.

No I/O here.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, NoReturn

from harness.wire import extensions
from harness.wire.deflate_bits import DeflateWriter, Token

Role = Literal["client", "server"]
Window8 = Literal["full-flush", "zlib-limit"]

TAIL = b"\x00\x00\xff\xff"
MAX_WINDOW = 1 << 15

# Stable rule ids; a later rules module names them. The first five are fatal (DeflateError), the last
# three are recorded on an otherwise usable message (Inflated.violations).
CORRUPT = "deflate-corrupt"
TRUNCATED = "deflate-truncated"
WINDOW_EXCEEDED = "deflate-window-exceeded"
CONTEXT_NOT_RESET = "deflate-context-not-reset"
TOO_LARGE = "deflate-too-large"
BFINAL_UNTERMINATED = "deflate-bfinal-unterminated"
TAIL_NOT_REMOVED = "deflate-tail-not-removed"
EMPTY_PAYLOAD = "deflate-empty-payload"

EXACT_WINDOW_CHECK = 3  # Decompressor(window_check_step=...) that makes the window check exact

_CONTEXT_SECTION = {"server": "7.1.1.1", "client": "7.1.1.2"}
_WINDOW_SECTION = {"server": "7.1.2.1", "client": "7.1.2.2"}


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    detail: str


class DeflateError(Exception):
    """A compressed message that cannot be delivered; ``rule`` is one of the fatal rule ids."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail

    @property
    def violation(self) -> Violation:
        return Violation(self.rule, self.detail)


def _check_bits(bits: int) -> int:
    if not 8 <= bits <= 15:
        raise ValueError(f"window bits must be 8..15, got {bits}")
    return bits


@dataclass(frozen=True, slots=True)
class Direction:
    """The rules for the messages one endpoint sends (and its peer inflates)."""

    sender: Role
    window_bits: int = 15
    no_context_takeover: bool = False

    def __post_init__(self) -> None:
        _check_bits(self.window_bits)

    @property
    def window_size(self) -> int:
        return 1 << self.window_bits

    @property
    def context_param(self) -> str:
        return f"{self.sender}_no_context_takeover"

    @property
    def window_param(self) -> str:
        return f"{self.sender}_max_window_bits"


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """One agreed permessage-deflate configuration ("agreed parameters", RFC 7692 §7.1).

    An absent ``*_max_window_bits`` means 15: the sender may use the full 32 KiB window.
    """

    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False

    def __post_init__(self) -> None:
        _check_bits(self.server_max_window_bits)
        _check_bits(self.client_max_window_bits)

    def sent_by(self, sender: Role) -> Direction:
        """The window and context rule for what ``sender`` sends."""
        if sender == "server":
            return Direction("server", self.server_max_window_bits, self.server_no_context_takeover)
        return Direction("client", self.client_max_window_bits, self.client_no_context_takeover)

    @classmethod
    def from_response(
        cls, response: extensions.Extension, offers: Sequence[extensions.Extension] = ()
    ) -> DeflateParams:
        """The agreement a server's accepted response establishes.

        Only the response counts. A client's offer may carry hints (``client_max_window_bits=N``,
        ``client_no_context_takeover``) that do not bind it unless the server puts the parameter
        in its response (§7.1.1.2, §7.1.2.2); a value-less ``client_max_window_bits`` in the offer
        only says the client understands the parameter, and without it in the response the client
        may use 15. When ``offers`` are given the response must be a legal answer to one of them
        (``extensions.response_problem``), else ValueError.
        """
        if response.name != extensions.PMD:
            raise ValueError(f"not a permessage-deflate response: {response.name}")
        problem = extensions.response_problem(response, list(offers)) if offers else None
        if problem:
            raise ValueError(problem)

        def bits(key: str) -> int:
            value = response.get(key)
            if not response.has(key):
                return 15
            if value not in extensions.WINDOW_BITS:
                raise ValueError(f"{key}={value} (RFC 7692 §7.1.2: 8..15 required in a response)")
            return int(value)

        return cls(
            server_max_window_bits=bits("server_max_window_bits"),
            client_max_window_bits=bits("client_max_window_bits"),
            server_no_context_takeover=response.has("server_no_context_takeover"),
            client_no_context_takeover=response.has("client_no_context_takeover"),
        )


# --------------------------------------------------------------------------------------------------
# Compression


class Compressor:
    """Compress the messages one endpoint sends, per RFC 7692 §7.2.1.

    Context: with ``no_context_takeover`` agreed, every message starts from an empty window (§7.2.1:
    the sender "MUST start compressing each new message with an empty LZ77 sliding window");
    otherwise the zlib stream carries on from message to message. ``context_takeover`` and
    ``window_bits`` override the agreement to produce what a correct endpoint never sends: a message
    that refers to the previous one although takeover was declined, or zlib output using a larger
    window than negotiated (§7.1.2.1 / §7.1.2.2). See the module docstring for window 8.
    """

    def __init__(
        self,
        direction: Direction,
        *,
        level: int = zlib.Z_DEFAULT_COMPRESSION,
        mem_level: int = 8,
        strategy: int = zlib.Z_DEFAULT_STRATEGY,
        window8: Window8 = "full-flush",
        window_bits: int | None = None,
        context_takeover: bool | None = None,
    ) -> None:
        self.direction = direction
        bits = _check_bits(direction.window_bits if window_bits is None else window_bits)
        self.zlib_window_bits = max(bits, 9)
        self._segment = 256 if bits == 8 and window8 == "full-flush" else 0
        self._keep = (not direction.no_context_takeover) if context_takeover is None else context_takeover
        self._args = (level, zlib.DEFLATED, -self.zlib_window_bits, mem_level, strategy)
        self._z: zlib._Compress | None = None
        self._since_reset = 0  # input bytes since the last full flush (window 8 segments)
        self.messages = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def reset(self) -> None:
        """Forget the window: the next message starts a new zlib stream."""
        self._z = None

    def compress(self, message: bytes) -> bytes:
        """The payload of one compressed message (every frame of it together)."""
        return self.compress_parts([message])[0]

    def compress_parts(self, parts: Sequence[bytes]) -> list[bytes]:
        """Compress one message given as consecutive parts, one payload per frame ("per frame").

        Every part is sync-flushed, so each frame carries the compressed form of its own part and
        ends at a byte boundary; only the last loses the four octets ``00 00 ff ff``. When the last
        part is empty zlib has nothing left to emit, so the final frame carries ``0x00``, an empty
        stored block's header (§7.2.3.6 "Generating an Empty Fragment"). An empty non-final part
        gives an empty frame payload, which is legal anywhere but the end of the message.
        """
        if not parts:
            raise ValueError("a message has at least one part")
        if self._z is None or not self._keep:
            self._z = zlib.compressobj(*self._args)
            self._since_reset = 0
        out: list[bytes] = []
        for part in parts:
            chunks = self._feed(self._z, part)
            chunks.append(self._z.flush(zlib.Z_SYNC_FLUSH))
            out.append(b"".join(chunks))
        last = out[-1]
        if last.endswith(TAIL):
            out[-1] = last[:-4]
        elif not last:
            out[-1] = b"\x00"
        else:  # pragma: no cover - zlib's sync flush always ends with an empty stored block
            raise AssertionError(f"sync flush did not end with 00 00 ff ff: {last[-8:].hex()}")
        self.messages += 1
        self.bytes_in += sum(map(len, parts))
        self.bytes_out += sum(map(len, out))
        return out

    def standalone(self, message: bytes, flush: int) -> bytes:
        """One message as a stream of its own ended by ``flush`` (no tail removed), for the
        productions below; the context of ``compress`` is left alone."""
        z = zlib.compressobj(*self._args)
        saved, self._since_reset = self._since_reset, 0
        try:
            return b"".join([*self._feed(z, message), z.flush(flush)])
        finally:
            self._since_reset = saved

    def _feed(self, z: zlib._Compress, data: bytes) -> list[bytes]:
        if not self._segment:
            return [z.compress(data)]
        chunks: list[bytes] = []
        pos = 0
        while pos < len(data):
            piece = data[pos : pos + self._segment - self._since_reset]
            chunks.append(z.compress(piece))
            pos += len(piece)
            self._since_reset += len(piece)
            if self._since_reset == self._segment:
                chunks.append(z.flush(zlib.Z_FULL_FLUSH))
                self._since_reset = 0
        return chunks


# --------------------------------------------------------------------------------------------------
# Decompression


@dataclass(frozen=True, slots=True)
class Inflated:
    """One inflated message with what the trace shows about it."""

    data: bytes
    compressed_size: int
    final_blocks: int  # blocks with BFINAL set: legal (§7.2.1, §7.2.3.4), worth showing
    violations: tuple[Violation, ...] = ()

    @property
    def inflated_size(self) -> int:
        return len(self.data)


class _TooFarBack(Exception):
    """zlib's "invalid distance too far back": classified by ``Decompressor._classify``."""


# Input fed per decompress() call. Each call that stops at its output limit copies the unconsumed
# input into ``unconsumed_tail``, so with small steps the slices must be small too.
_SLICE = 16384
_STEP_SLICE = 16  # times window_check_step


def _inflater(bits: int, context: bytes) -> zlib._Decompress:
    if context:
        return zlib.decompressobj(-bits, zdict=context)
    return zlib.decompressobj(-bits)


def _at_block_boundary(d: zlib._Decompress) -> bool:
    """Whether inflation stopped between blocks, i.e. the message did not end inside a block.

    zlib does not say where it stopped, so two complete final blocks (an empty fixed one, an empty
    stored one) are tried on copies: only a decoder waiting for a block header decodes both to an
    end of stream with no output and nothing left over.
    """
    for probe in (b"\x03\x00", b"\x01\x00\x00\xff\xff"):
        c = d.copy()
        try:
            out = c.decompress(probe)
        except zlib.error:
            return False
        if out or not c.eof or c.unused_data:
            return False
    return True


def _last(n: int, before: bytes, chunks: list[bytes]) -> bytes:
    """The last ``n`` bytes of ``before`` followed by ``chunks`` (the window when a stream restarts)."""
    parts: list[bytes] = []
    need = n
    for chunk in reversed(chunks):
        parts.append(chunk)
        need -= len(chunk)
        if need <= 0:
            break
    else:
        parts.append(before[-need:] if need < len(before) else before)
    return b"".join(reversed(parts))[-n:]


class Decompressor:
    """Inflate the messages one endpoint sends, per RFC 7692 §7.2.2, and name what is wrong.

    Window and context are exactly the negotiated ones: zlib's window is ``window_bits`` (8 works:
    zlib's inflate keeps exactly 256 bytes), and with ``no_context_takeover`` every message is
    inflated with an empty window (§7.2.2 allows that, and it is what exposes a sender that kept its
    context). Otherwise the previous messages' last ``2^window_bits`` bytes are the dictionary (§7.2.2:
    "MUST decompress each new message using the LZ77 sliding window used to process the last
    compressed message"), which is what a continuing zlib stream holds; a message is inflated from a fresh
    zlib stream each time, so a BFINAL block in the middle (legal, §7.2.1) or a failed message never
    leaves zlib in a state that later messages inherit.

    Output bound: zlib is never asked for more than ``max_output + 1`` bytes per message, so a
    decompression bomb stops with ``deflate-too-large`` after allocating at most the bound.

    Window check, and zlib's tolerance. zlib reports "invalid distance too far back" when a distance
    exceeds its window *plus the output of the current inflate() call*, so one call that inflates a
    whole message accepts any distance into that message whatever the window (found here: a 9-bit
    inflater takes a 1000-byte distance in one call; Autobahn and most libraries inflate a frame per
    call). zlib does re-check a match's distance against the window alone whenever it resumes the
    match in a new call (inflate.c, state MATCH). So when the window is smaller than 32 KiB zlib gets
    room for at most ``window_check_step`` bytes per call: a reference beyond the window is missed
    only if its whole match fits inside one call and exceeds the window by less than its offset in
    that call, i.e. by at most ``window_check_step - 3`` bytes. The default 64 inflates about
    50 MiB/s of text (bench/deflate_speed.py; 150-200 MiB/s at window 15, where no step is needed);
    ``EXACT_WINDOW_CHECK`` (3: every match of 3 or more bytes then starts at or crosses a call
    boundary) is exact at about 3 MiB/s. References before the first byte the sender may refer to
    are always caught, since they exceed all output so far.

    Classification of a distance error: with ``no_context_takeover``, inflating again with the
    previous messages as dictionary succeeding means the sender kept its context
    (``deflate-context-not-reset``); inflating with a 15-bit window succeeding means it used a larger
    window than agreed (``deflate-window-exceeded``); else the data is corrupt.
    """

    def __init__(self, direction: Direction, *, max_output: int, window_check_step: int = 64) -> None:
        if max_output < 0 or window_check_step < 1:
            raise ValueError("max_output must be >= 0 and window_check_step >= 1")
        self.direction = direction
        self.max_output = max_output
        self.window_check_step = window_check_step
        self._history = b""  # the last 32 KiB this sender's compressed messages inflated to
        self.messages = 0
        self.bytes_in = 0
        self.bytes_out = 0

    def reset(self) -> None:
        self._history = b""

    def inflate(self, payload: bytes | bytearray | memoryview | Sequence[bytes]) -> Inflated:
        """Inflate one compressed message: its whole payload, or its frames' payloads in order."""
        data = bytes(payload) if isinstance(payload, bytes | bytearray | memoryview) else b"".join(payload)
        context = b"" if self.direction.no_context_takeover else self._history
        try:
            out, finals, violations = self._attempt(data, self.direction.window_bits, context)
        except _TooFarBack:
            self._classify(data, context)
        self._history = (self._history + out[-MAX_WINDOW:])[-MAX_WINDOW:]
        self.messages += 1
        self.bytes_in += len(data)
        self.bytes_out += len(out)
        return Inflated(out, len(data), finals, tuple(violations))

    def _classify(self, data: bytes, context: bytes) -> NoReturn:
        d = self.direction
        n = self.messages + 1
        sec = _CONTEXT_SECTION[d.sender]
        if d.no_context_takeover and self._history and self._resolves(data, d.window_bits, self._history):
            raise DeflateError(
                CONTEXT_NOT_RESET,
                f"message {n} refers to data of earlier messages although {d.context_param} was agreed "
                f"(RFC 7692 §{sec}, §7.2.1)",
            )
        if d.window_bits < 15 and self._resolves(data, 15, context):
            raise DeflateError(
                WINDOW_EXCEEDED,
                f"message {n} uses back-references farther than {d.window_size} bytes although "
                f"{d.window_param}={d.window_bits} was agreed (RFC 7692 §{_WINDOW_SECTION[d.sender]})",
            )
        if d.no_context_takeover and self._history and self._resolves(data, 15, self._history):
            raise DeflateError(
                CONTEXT_NOT_RESET,
                f"message {n} refers to data of earlier messages although {d.context_param} was agreed, "
                f"and farther back than {d.window_param}={d.window_bits} allows (RFC 7692 §{sec})",
            )
        raise DeflateError(
            CORRUPT,
            f"message {n} refers back before the first byte its sender may refer to "
            "(zlib: invalid distance too far back)",
        )

    def _resolves(self, data: bytes, bits: int, context: bytes) -> bool:
        """Whether inflating with this window and dictionary gets past the distance error.

        Up to the failing reference every attempt decodes the same bytes, so any other outcome
        (success, or a later error of another kind) means this window/context was what was missing.
        """
        try:
            self._attempt(data, bits, context)
        except _TooFarBack:
            return False
        except DeflateError:
            return True
        return True

    def _attempt(self, payload: bytes, bits: int, context: bytes) -> tuple[bytes, int, list[Violation]]:
        limit = self.max_output
        window = 1 << bits
        step = self.window_check_step if bits < 15 else 0
        chunks: list[bytes] = []
        produced = 0
        finals = 0
        violations: list[Violation] = []
        d = _inflater(bits, context[-window:])
        restarted_with = bytearray()  # the first octets fed to the stream started after a BFINAL block

        def feed(buf: bytes) -> None:
            nonlocal d, produced, finals
            while True:
                room = limit - produced + 1
                if step:
                    room = min(room, step)
                try:
                    out = d.decompress(buf, room)
                except zlib.error as exc:
                    text = str(exc)
                    if "too far back" in text:
                        raise _TooFarBack(text) from None
                    detail = text.replace("Error -3 while decompressing data: ", "")
                    raise DeflateError(CORRUPT, detail) from None
                if out:
                    chunks.append(out)
                    produced += len(out)
                    if produced > limit:
                        raise DeflateError(TOO_LARGE, f"inflates to more than {limit} bytes (bound)")
                if finals and len(restarted_with) <= len(TAIL):
                    consumed = len(buf) - len(d.unconsumed_tail) - len(d.unused_data)
                    restarted_with.extend(buf[: min(consumed, len(TAIL) + 1)])
                if d.eof:
                    finals += 1
                    buf = d.unused_data
                    restarted_with.clear()
                    d = _inflater(bits, _last(window, context, chunks))
                    if not buf:
                        return
                    continue
                buf = d.unconsumed_tail
                if not buf and len(out) < room:
                    return

        size = _STEP_SLICE * step if step else _SLICE
        for i in range(0, len(payload), size):
            feed(payload[i : i + size])
        if payload.endswith(TAIL) and _at_block_boundary(d):
            violations.append(
                Violation(
                    TAIL_NOT_REMOVED,
                    "payload ends with 00 00 ff ff, the octets a sender removes (RFC 7692 §7.2.1 step 3)",
                )
            )
            return b"".join(chunks), finals, violations
        feed(TAIL)
        if not _at_block_boundary(d):
            if not payload:
                violations.append(
                    Violation(
                        EMPTY_PAYLOAD,
                        "empty payload: even an empty message carries at least 0x00 "
                        "(RFC 7692 §7.2.1, §7.2.3.6)",
                    )
                )
            elif finals and bytes(restarted_with) == TAIL:
                violations.append(
                    Violation(
                        BFINAL_UNTERMINATED,
                        "payload ends with a BFINAL block without the 0x00 octet that must follow it "
                        "(RFC 7692 §7.2.1 step 2, §7.2.3.4)",
                    )
                )
            else:
                raise DeflateError(TRUNCATED, "the message ends inside a DEFLATE block")
        return b"".join(chunks), finals, violations


# --------------------------------------------------------------------------------------------------
# What a correct endpoint never (or rarely) sends: payloads for cases that must see a target reject or
# tolerate them. Each is the payload of one compressed message (RSV1 on its first frame).


class Crafted(NamedTuple):
    """A hand-built payload and the message it inflates to (for the echo a case expects)."""

    payload: bytes
    message: bytes


def _zlib_stream(message: bytes, window_bits: int, flush: int) -> bytes:
    return Compressor(Direction("client", window_bits, True)).standalone(message, flush)


def bfinal_message(message: bytes, *, window_bits: int = 15, terminated: bool = True) -> bytes:
    """The message compressed into a block with BFINAL set (zlib's Z_FINISH).

    Legal with ``terminated``: §7.2.3.4 "Using a DEFLATE Block with BFINAL Set to 1" — the final block
    is padded to a byte boundary and followed by one octet 0x00, the header of an empty stored block
    whose LEN/NLEN are the removed tail; "This octet is necessary to allow the payload to be
    decompressed in the same manner as messages flushed using DEFLATE blocks with BFINAL unset."
    A receiver must keep inflating after the final block (§7.2.1: "The next DEFLATE block follows
    the padded data if any") and, with context takeover, keep the window.

    Without ``terminated`` (the payload of a sender that used Z_FINISH and sent its output as is)
    §7.2.1 steps 2-3 are violated: the data does not end with an empty stored block. zlib-based
    receivers usually accept it, since zlib stops at the final block and ignores what follows.
    """
    data = _zlib_stream(message, window_bits, zlib.Z_FINISH)
    return data + b"\x00" if terminated else data


def stored_message(message: bytes, *, block_size: int = 65535) -> bytes:
    """The message in stored (uncompressed, BTYPE=00) blocks: legal, §7.2.3.3 "Using a DEFLATE Block
    with No Compression" (``00 05 00 fa ff 48 65 6c 6c 6f 00`` for "Hello"), and §7.2.1 "An endpoint
    MAY use DEFLATE blocks of any type". ``block_size`` < len(message) gives several blocks
    (§7.2.3.5, "Two or more DEFLATE blocks may be used in one message")."""
    if not 1 <= block_size <= 0xFFFF:
        raise ValueError("block_size must be 1..65535")
    w = DeflateWriter()
    for i in range(0, len(message), block_size):
        w.stored_block(message[i : i + block_size])
    return w.stored_block(b"").getvalue()[:-4]


def tail_kept_message(message: bytes, *, window_bits: int = 15) -> bytes:
    """The message sync-flushed with its ``00 00 ff ff`` NOT removed: violates §7.2.1 step 3.

    After the receiver appends the four octets (§7.2.2) the data ends inside a stored block header
    (LEN 0xff00 announced, NLEN incomplete). zlib does not complain at the end of the message; with
    context takeover the next message's first octets are then read as that block's NLEN and data.
    """
    return _zlib_stream(message, window_bits, zlib.Z_SYNC_FLUSH)


LEGAL_EMPTY_MESSAGES: Mapping[str, bytes] = {
    # zlib's sync flush of nothing: one stored block header (§7.2.3.6 builds the same octet by hand)
    "stored-header": b"\x00",
    # an empty fixed-Huffman block, then the stored header (older zlib's sync flush of nothing)
    "fixed-empty": b"\x02\x00",
    # an empty final fixed block padded to the byte, then the stored header (§7.2.3.4 form)
    "bfinal-fixed-empty": b"\x03\x00\x00",
    # a complete empty stored block, then the stored header (two blocks, §7.2.3.5)
    "stored-empty": b"\x00\x00\x00\xff\xff\x00",
    # an empty final stored block, then the stored header (§7.2.3.4 form with BTYPE=00)
    "bfinal-stored-empty": b"\x01\x00\x00\xff\xff\x00",
}
"""Payloads a sender may use for an empty message (RFC 7692 §7.2.1: blocks of any type, BFINAL or not,
then the tail removed). §7.2.3.6 is the related case of an empty *last fragment*: the message's data
went out in earlier fragments and the final one carries 0x00 (``Compressor.compress_parts``)."""

ILLEGAL_EMPTY_MESSAGES: Mapping[str, tuple[bytes, str]] = {
    # no octet at all: after appending 00 00 ff ff these are a stored header's LEN/NLEN with no header
    "empty-payload": (b"", EMPTY_PAYLOAD),
    # Z_FINISH output of nothing, sent as is: no stored block header follows the final block
    "bfinal-unterminated": (b"\x03\x00", BFINAL_UNTERMINATED),
    # sync flush of nothing, tail not removed
    "tail-kept": (b"\x00\x00\x00\xff\xff", TAIL_NOT_REMOVED),
}
"""Empty-message payloads §7.2.1's algorithm never produces, with the rule ``Decompressor`` records."""

CorruptKind = Literal[
    "invalid-block-type",
    "invalid-stored-lengths",
    "invalid-code-lengths",
    "invalid-distance-code",
    "invalid-literal-code",
    "truncated",
]


def corrupt_message(kind: CorruptKind) -> bytes:
    """A payload that is not valid DEFLATE once §7.2.2 appends ``00 00 ff ff``.

    RFC 7692 gives no close code for data that cannot be inflated; a receiver cannot deliver the
    message and has to fail the connection (Autobahn and most libraries close with 1007). Kinds:
    BTYPE=11 (RFC 1951 §3.2.3 reserved), LEN/NLEN that do not match (§3.2.4), a dynamic block whose
    code length code is over-subscribed (a bad Huffman code, §3.2.7), the fixed-code distance symbol
    30 and literal/length symbol 286 (they "will never actually occur", §3.2.6), and a stored block
    announcing 10 bytes of which 3 arrive (a message that ends inside a block).
    """
    w = DeflateWriter()
    if kind == "invalid-block-type":
        w.bits(0, 1).bits(3, 2)
    elif kind == "invalid-stored-lengths":
        w.bits(0, 3).align().bits(5, 16).bits(5, 16)
        return w.getvalue() + b"Hello\x00"
    elif kind == "invalid-code-lengths":
        w.bits(0, 1).bits(2, 2).bits(0, 5).bits(0, 5).bits(0, 4)
        for _ in range(4):
            w.bits(1, 3)
    elif kind == "invalid-distance-code":
        w.fixed_header().fixed_symbol(ord("a")).fixed_symbol(257).distance_symbol(30)
    elif kind == "invalid-literal-code":
        w.fixed_header().fixed_symbol(ord("a")).fixed_symbol(286)
    elif kind == "truncated":
        w.bits(0, 3).align().bits(10, 16).bits(10 ^ 0xFFFF, 16)
        return w.getvalue() + b"abc"
    else:
        raise ValueError(f"unknown kind {kind}")
    return w.getvalue()


def _pattern(size: int, seed: int) -> bytes:
    """Deterministic incompressible-looking bytes (no library RNG: the bytes must never change)."""
    out = bytearray()
    x = (seed * 2654435761 + 12345) & 0xFFFFFFFF
    for _ in range(size):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x >> 16) & 0xFF)
    return bytes(out)


def _fixed_message(tokens: Sequence[Token]) -> bytes:
    return DeflateWriter().fixed_block(tokens).stored_block(b"").getvalue()[:-4]


def far_reference_message(window_bits: int, *, excess: int = 1, length: int = 64, seed: int = 0) -> Crafted:
    """A message that needs a window larger than ``window_bits``: violates §7.1.2.1 / §7.1.2.2.

    ``2^N + excess`` literal bytes, then one back-reference of ``length`` bytes at distance exactly
    ``2^N + excess`` (the first bytes again). A receiver inflating with the agreed window cannot
    resolve it; whether zlib notices depends on how much it inflates per call (``Decompressor``).
    Window 15 cannot be exceeded: DEFLATE distances stop at 32768.
    """
    distance = (1 << _check_bits(window_bits)) + excess
    if excess < 1 or distance > MAX_WINDOW:
        raise ValueError(f"distance {distance} must exceed the window and be at most 32768")
    if not 3 <= length <= min(258, distance):
        raise ValueError("length must be 3..258 and not exceed the distance")
    prefix = _pattern(distance, seed)
    return Crafted(_fixed_message([*prefix, (length, distance)]), prefix + prefix[:length])


def context_reference_message(previous: bytes, *, length: int | None = None) -> Crafted:
    """A message made of one back-reference into the previous compressed message's data.

    With context takeover it is legal and the receiver must resolve it (§7.2.2: "MUST decompress each
    new message using the LZ77 sliding window used to process the last compressed message"); when
    the sender's ``*_no_context_takeover`` was agreed it violates §7.1.1.1 / §7.1.1.2 and §7.2.1
    ("MUST start compressing each new message with an empty LZ77 sliding window"). ``previous`` is
    what the last compressed message in this direction inflated to; the reference copies its last
    ``length`` bytes (3..258, default as many as possible).
    """
    n = min(len(previous), 258) if length is None else length
    if not 3 <= n <= min(len(previous), 258):
        raise ValueError("need 3..258 bytes of previous data to refer to")
    return Crafted(_fixed_message([(n, n)]), previous[-n:])
