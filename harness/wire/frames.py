"""Build and parse WebSocket frames (RFC 6455 §5.2) without enforcing the rules.

A conformance peer must be able to put *any* frame on the wire (reserved bits, reserved opcodes,
non-minimal or lying length fields, unmasked client frames) and must report what the other side sent
without raising on the first violation, so that a verdict can say exactly which rule was broken.
That is why this codec is ours: protocol libraries refuse to build or parse such frames.

No I/O here. Masking uses websockets' C ``apply_mask`` (pure Python is ~15x slower on large payloads).
"""

from __future__ import annotations

import enum
import functools
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from websockets.speedups import apply_mask as _apply_mask


class Opcode(enum.IntEnum):
    """Opcodes defined by RFC 6455 §5.2; the others (3-7, 11-15) are reserved."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


OPCODE_NAMES: dict[str, int] = {op.name.lower(): int(op) for op in Opcode}
DATA_OPCODES = frozenset({Opcode.TEXT, Opcode.BINARY})
CONTROL_OPCODES = frozenset({Opcode.CLOSE, Opcode.PING, Opcode.PONG})
DEFINED_OPCODES = frozenset(int(op) for op in Opcode)


def opcode_name(opcode: int) -> str:
    """Human name of an opcode, ``reserved-N`` for the reserved ones."""
    try:
        return Opcode(opcode).name.lower()
    except ValueError:
        return f"reserved-{opcode}"


def is_control(opcode: int) -> bool:
    """Control frames have the high bit of the opcode set (§5.5), reserved ones included."""
    return opcode >= 0x8


def apply_mask(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the 4-byte masking ``key`` (§5.3)."""
    if not data:
        return b""
    return _apply_mask(data, key)


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = False,
    mask_key: bytes | None = None,
    length: int | None = None,
    length_bits: int | None = None,
) -> bytes:
    """Serialise one frame, legal or not.

    ``rsv`` is the 3-bit RSV1..RSV3 field as an integer (RSV1 = 4, RSV3 = 1), the convention
    Autobahn|Testsuite uses, so that ``rsv: 1`` puts the same bits on the wire as its case 3.1.
    ``length`` overrides the declared payload length (the payload is still sent as given),
    ``length_bits`` forces the 7-, 16- or 64-bit length encoding (non-minimal encodings included).
    """
    if not 0 <= opcode <= 0xF:
        raise ValueError(f"opcode must be 0..15, got {opcode}")
    if not 0 <= rsv <= 7:
        raise ValueError(f"rsv must be 0..7, got {rsv}")
    declared = len(payload) if length is None else length
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if mask else 0
    bits = length_bits if length_bits is not None else _minimal_length_bits(declared)
    if bits == 7:
        if declared > 125:
            raise ValueError("a 7-bit length cannot encode more than 125")
        header = struct.pack("!BB", first, mask_bit | declared)
    elif bits == 16:
        if declared > 0xFFFF:
            raise ValueError("a 16-bit length cannot encode more than 65535")
        header = struct.pack("!BBH", first, mask_bit | 126, declared)
    elif bits == 64:
        if declared > 0xFFFFFFFFFFFFFFFF:
            raise ValueError("a 64-bit length cannot encode more than 2**64-1")
        header = struct.pack("!BBQ", first, mask_bit | 127, declared)
    else:
        raise ValueError(f"length_bits must be 7, 16 or 64, got {bits}")
    if not mask:
        return header + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    if len(key) != 4:
        raise ValueError("a masking key is 4 bytes")
    return header + key + apply_mask(payload, key)


@functools.lru_cache(maxsize=1024)
def frame_header(first: int, length: int, mask: bool) -> bytes:
    """The minimal header for a frame whose first byte (FIN, RSV, opcode) is ``first``.

    Cached: a message in 65 536 equal fragments has three distinct headers (first, middle, last), so
    building it costs three ``struct.pack`` calls instead of 65 536.
    """
    mask_bit = 0x80 if mask else 0
    if length <= 125:
        return bytes((first, mask_bit | length))
    if length <= 0xFFFF:
        return struct.pack("!BBH", first, mask_bit | 126, length)
    return struct.pack("!BBQ", first, mask_bit | 127, length)


def build_fragments(
    opcode: int, payload: bytes, sizes: Sequence[int], *, rsv: int = 0, keys: bytes | None = None
) -> bytes:
    """Serialise one message as ``len(sizes)`` frames in one buffer, masked when ``keys`` is given.

    The same bytes as one ``build_frame`` per fragment (first frame ``opcode`` and ``rsv``, then
    continuations, FIN on the last; minimal lengths), built the fast way: cached headers, each payload
    slice masked from a memoryview (no intermediate copy), and a single ``join``. ``keys`` holds one
    4-byte masking key per fragment, concatenated.
    """
    if not 0 <= opcode <= 0xF or not 0 <= rsv <= 7:
        raise ValueError("opcode must be 0..15 and rsv 0..7")
    count = len(sizes)
    if keys is not None and len(keys) != 4 * count:
        raise ValueError("one 4-byte masking key per fragment")
    view = memoryview(payload)
    pieces: list[bytes | memoryview] = []
    append = pieces.append
    masked = keys is not None
    offset = 0
    last = count - 1
    for i, size in enumerate(sizes):
        first = (0x80 if i == last else 0) | ((rsv << 4) | opcode if i == 0 else 0)
        append(frame_header(first, size, masked))
        chunk = view[offset : offset + size]
        if keys is not None:
            key = keys[4 * i : 4 * i + 4]
            append(key)
            append(_apply_mask(chunk, key) if size else b"")
        else:
            append(chunk)
        offset += size
    return b"".join(pieces)


def _minimal_length_bits(length: int) -> int:
    if length <= 125:
        return 7
    if length <= 0xFFFF:
        return 16
    return 64


def close_payload(code: int | None = None, reason: bytes = b"") -> bytes:
    """Body of a close frame: a 2-byte code then the reason (§5.5.1); empty when code is None."""
    if code is None:
        return reason
    return struct.pack("!H", code) + reason


# The largest frame payload the parser buffers unless told otherwise: above every case's largest frame
# (16 MiB) with room to spare, far below what a hostile length field could make it allocate.
DEFAULT_MAX_PAYLOAD = 64 * 1024 * 1024
SMALL_PENDING = 64 * 1024  # an incomplete frame below this is re-joined with the next read as bytes


@dataclass(slots=True)
class Frame:
    """One frame as it was read off the wire, with the ids of every rule it broke (``wire.rules``)."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    length: int
    payload: bytes
    header_size: int
    mask_key: bytes = b""
    violations: list[str] = field(default_factory=list)  # rule ids of harness.wire.rules
    # Only from a parser made with ``runs=True``: this object stands for ``repeat`` consecutive wire
    # frames with the same header (so the same fields and no violation), ``length`` bytes each;
    # ``payload`` holds their payloads joined.
    repeat: int = 1

    @property
    def name(self) -> str:
        return opcode_name(self.opcode)


class FrameParser:
    """Incremental, lenient frame parser.

    Feed it bytes as they arrive; it yields complete frames and never raises on a protocol
    violation, recording the rule's id on the frame instead. ``expect_masked`` states what the
    sender's role requires: True when the sender is a client (§5.3: clients MUST mask), False for a
    server. ``rsv_allowed`` holds the RSV bits a negotiated extension gives a meaning (RSV1 = 4 for
    permessage-deflate); the extension's own placement rules are checked by whoever knows the message
    state. ``max_payload`` protects the harness from a peer that declares an absurd length: such a
    frame is reported once (``oversized``) and the parser stops, since nothing after it can be framed,
    and it never buffers more than that many payload bytes.
    """

    def __init__(
        self,
        *,
        expect_masked: bool,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        rsv_allowed: int = 0,
        runs: bool = False,
    ) -> None:
        self.expect_masked = expect_masked
        self.runs = runs
        self.max_payload = max_payload
        self.rsv_allowed = rsv_allowed
        self._buf = bytearray()  # the bytes of an incomplete frame, between two feeds
        self.oversized: int | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Every frame completed by ``data``, in order.

        Frames are cut out of an immutable ``bytes`` (a slice is one copy, and the cheapest object to
        index) whenever what was pending is small; only a large pending frame (a 16 MiB message
        arriving in 256 KiB reads) grows in a bytearray, so that it is not copied once per read.
        """
        if self.oversized is not None:
            return []
        src: bytes | bytearray
        if not self._buf:
            src = data
        elif len(self._buf) < SMALL_PENDING:
            src = bytes(self._buf) + data
            self._buf = bytearray()
        else:
            self._buf += data
            src = self._buf
        frames: list[Frame] = []
        pos = 0
        end = len(src)
        while True:
            frame = self._next(src, pos, end)
            if frame is None:
                break
            size = frame.header_size + frame.length
            plain = not frame.fin and not frame.masked and not frame.violations
            if self.runs and plain and frame.opcode == 0:
                frame = self._run(src, pos, end, frame)
            frames.append(frame)
            pos += size * frame.repeat
        if src is self._buf:
            del self._buf[:pos]
        elif pos < end:
            self._buf = bytearray(src[pos:])
        return frames

    @staticmethod
    def _run(buf: bytes | bytearray, pos: int, end: int, frame: Frame) -> Frame:
        """Extend a clean, unmasked, non-final continuation into the run of identical frames after it.

        Every rule the parser checks depends on the header alone (and a masked frame's key differs
        per frame, so only unmasked ones qualify): frames whose header bytes equal this one's break
        the same rules, none. Counting them is done column by column in C (a strided slice of each
        header byte, and how many of its leading bytes match), not frame by frame in Python.
        """
        hsize, length = frame.header_size, frame.length
        stride = hsize + length
        whole = (end - pos) // stride
        if whole < 2:
            return frame
        count = whole
        for j in range(hsize):
            column = buf[pos + j : pos + whole * stride : stride]
            same = len(column) - len(column.lstrip(column[:1]))
            count = min(count, same)
            if count < 2:
                return frame
        start = pos + hsize
        payload = b"".join(bytes(buf[p : p + length]) for p in range(start, start + count * stride, stride))
        return Frame(False, frame.rsv, 0, False, length, payload, hsize, b"", [], count)

    def _next(self, buf: bytes | bytearray, pos: int, end: int) -> Frame | None:
        avail = end - pos
        if avail < 2:
            return None
        b0, b1 = buf[pos], buf[pos + 1]
        length = b1 & 0x7F
        masked = bool(b1 & 0x80)
        header = 2
        violations: list[str] = []
        if length == 126:
            if avail < 4:
                return None
            (length,) = struct.unpack_from("!H", buf, pos + 2)
            header = 4
            if length <= 125:
                violations.append("non-minimal-length")
        elif length == 127:
            if avail < 10:
                return None
            (length,) = struct.unpack_from("!Q", buf, pos + 2)
            header = 10
            if length >> 63:
                violations.append("length-msb-set")
            if length <= 0xFFFF:
                violations.append("non-minimal-length")
        if length > self.max_payload:
            self.oversized = length
            return None
        key = b""
        if masked:
            if avail < header + 4:
                return None
            key = bytes(buf[pos + header : pos + header + 4])
            header += 4
        if avail < header + length:
            return None
        start = pos + header
        stop = start + length
        if type(buf) is bytes:
            payload = _apply_mask(buf[start:stop], key) if masked and length else buf[start:stop]
        else:  # a large frame gathered in the bytearray: one copy out of it, through a memoryview
            with memoryview(buf) as view, view[start:stop] as chunk:
                payload = _apply_mask(chunk, key) if masked and length else bytes(chunk)
        fin = bool(b0 & 0x80)
        rsv = (b0 >> 4) & 0x7
        opcode = b0 & 0x0F
        if masked != self.expect_masked:
            violations.append("masked-by-server" if masked else "unmasked-by-client")
        if rsv & ~self.rsv_allowed:
            violations.append("rsv-without-extension")
        if opcode not in DEFINED_OPCODES:
            violations.append("reserved-opcode")
        if is_control(opcode):
            if length > 125:
                violations.append("control-frame-too-long")
            if not fin:
                violations.append("fragmented-control-frame")
        return Frame(fin, rsv, opcode, masked, length, payload, header, key, violations)
