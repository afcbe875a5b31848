"""DEFLATE (RFC 1951) at the bit level: write chosen blocks, and read a stream back block by block.

zlib decides for itself which blocks, codes and distances it emits, so it cannot produce the exact
encodings a conformance case needs (a back-reference exactly 2^N + 1 bytes back, a stored block, an
invalid distance code), and it cannot say what a peer's stream contained (which block types, whether a
block had BFINAL set, the largest distance used). This module does both, in pure Python:

- ``DeflateWriter`` puts any sequence of stored and fixed-Huffman blocks on the wire, plus raw bits for
  deliberately broken headers.
- ``scan`` is a small reference decoder that reports the blocks, the largest back-reference distance
  and how far back into the preceding data (the LZ77 window handed over from earlier messages) the
  stream reached. It is exact, and slow (about 1-3 MB/s): the harness inflates with zlib, tests and
  diagnostics use ``scan`` to check what zlib cannot report.

No I/O here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

# A token is a literal byte (0..255) or a (length, distance) back-reference (RFC 1951 §3.2.5).
Token = int | tuple[int, int]
BlockKind = Literal["stored", "fixed", "dynamic", "invalid"]

LENGTH_BASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
               131, 163, 195, 227, 258)  # fmt: skip
LENGTH_EXTRA = (0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0)
DIST_BASE = (1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
             2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577)  # fmt: skip
DIST_EXTRA = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
              13, 13)  # fmt: skip
# Order in which the code length code lengths are sent in a dynamic block header (§3.2.7).
CLEN_ORDER = (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15)
MAX_DISTANCE = 32768
# A canonical Huffman code: {reversed code | length << 16: (symbol, length)}, and its longest length.
_Table = tuple[dict[int, tuple[int, int]], int]


def _fixed_litlen_code(symbol: int) -> tuple[int, int]:
    """(code, bit length) of a literal/length symbol in the fixed Huffman code (§3.2.6)."""
    if symbol < 144:
        return 0x30 + symbol, 8
    if symbol < 256:
        return 0x190 + symbol - 144, 9
    if symbol < 280:
        return symbol - 256, 7
    return 0xC0 + symbol - 280, 8


def _length_symbol(length: int) -> tuple[int, int, int]:
    """(symbol, extra bit count, extra value) for a match length 3..258."""
    if not 3 <= length <= 258:
        raise ValueError(f"match length must be 3..258, got {length}")
    if length == 258:
        return 285, 0, 0
    i = max(i for i, base in enumerate(LENGTH_BASE[:-1]) if base <= length)
    return 257 + i, LENGTH_EXTRA[i], length - LENGTH_BASE[i]


def _distance_symbol(distance: int) -> tuple[int, int, int]:
    """(symbol, extra bit count, extra value) for a distance 1..32768."""
    if not 1 <= distance <= MAX_DISTANCE:
        raise ValueError(f"distance must be 1..32768, got {distance}")
    i = max(i for i, base in enumerate(DIST_BASE) if base <= distance)
    return i, DIST_EXTRA[i], distance - DIST_BASE[i]


def _reverse(code: int, length: int) -> int:
    """Huffman codes are packed starting with their most significant bit (§3.1.1)."""
    out = 0
    for _ in range(length):
        out = (out << 1) | (code & 1)
        code >>= 1
    return out


class DeflateWriter:
    """Append DEFLATE blocks bit by bit; ``getvalue`` pads the last byte with zero bits."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._count = 0

    @property
    def bit_length(self) -> int:
        return len(self._out) * 8 + self._count

    def bits(self, value: int, count: int) -> DeflateWriter:
        """Write ``count`` bits of ``value``, least significant first (header fields, extra bits)."""
        if count < 0 or value >> count:
            raise ValueError(f"{value} does not fit in {count} bits")
        self._acc |= value << self._count
        self._count += count
        while self._count >= 8:
            self._out.append(self._acc & 0xFF)
            self._acc >>= 8
            self._count -= 8
        return self

    def align(self) -> DeflateWriter:
        """Zero bits up to the next byte boundary (what a stored block header and BFINAL padding do)."""
        if self._count:
            self.bits(0, 8 - self._count)
        return self

    def fixed_header(self, *, final: bool = False) -> DeflateWriter:
        return self.bits(int(final), 1).bits(1, 2)

    def fixed_symbol(self, symbol: int) -> DeflateWriter:
        """One literal/length symbol 0..287 in the fixed code (286 and 287 are invalid on purpose)."""
        code, length = _fixed_litlen_code(symbol)
        return self.bits(_reverse(code, length), length)

    def distance_symbol(self, symbol: int) -> DeflateWriter:
        """One fixed-code distance symbol 0..31 without extra bits (30 and 31 are invalid)."""
        return self.bits(_reverse(symbol, 5), 5)

    def tokens(self, tokens: Iterable[Token]) -> DeflateWriter:
        """Literals and back-references in the fixed code (inside a fixed block)."""
        for token in tokens:
            if isinstance(token, int):
                self.fixed_symbol(token)
                continue
            length, distance = token
            sym, extra, value = _length_symbol(length)
            self.fixed_symbol(sym).bits(value, extra)
            dsym, dextra, dvalue = _distance_symbol(distance)
            self.distance_symbol(dsym).bits(dvalue, dextra)
        return self

    def fixed_block(self, tokens: Iterable[Token], *, final: bool = False) -> DeflateWriter:
        """A complete fixed-Huffman block (BTYPE=01) ending with the end-of-block symbol 256."""
        return self.fixed_header(final=final).tokens(tokens).fixed_symbol(256)

    def stored_block(self, data: bytes, *, final: bool = False) -> DeflateWriter:
        """A stored block (BTYPE=00): header bits, padding, LEN, NLEN, the bytes as they are."""
        if len(data) > 0xFFFF:
            raise ValueError("a stored block holds at most 65535 bytes")
        self.bits(int(final), 1).bits(0, 2).align()
        n = len(data)
        self.bits(n, 16).bits(n ^ 0xFFFF, 16)
        self._out += data
        return self

    def getvalue(self) -> bytes:
        pad = bytes([self._acc]) if self._count else b""
        return bytes(self._out) + pad


def literals(data: bytes) -> list[Token]:
    return list(data)


@dataclass(frozen=True, slots=True)
class Block:
    kind: BlockKind
    final: bool
    start_bit: int
    output_start: int  # offset of the block's first output byte in the scanned output


@dataclass(frozen=True, slots=True)
class Scan:
    """What ``scan`` found; ``error`` is None for a valid (possibly incomplete) stream."""

    blocks: tuple[Block, ...]
    output: bytes
    max_distance: int  # largest back-reference distance used
    max_reach: int  # largest number of bytes a reference reached before this data's first output byte
    complete: bool  # the data ended exactly at a block boundary (after BFINAL: at its padding)
    error: str | None

    @property
    def final_blocks(self) -> int:
        return sum(b.final for b in self.blocks)

    def kinds(self) -> list[str]:
        return [b.kind for b in self.blocks]


class _Incomplete(Exception):
    pass


class _Corrupt(Exception):
    pass


class _Bits:
    """LSB-first bit reader over bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0  # next byte to load
        self.acc = 0
        self.count = 0

    @property
    def consumed_bits(self) -> int:
        return self.pos * 8 - self.count

    def _fill(self, n: int) -> bool:
        while self.count < n:
            if self.pos >= len(self.data):
                return False
            self.acc |= self.data[self.pos] << self.count
            self.pos += 1
            self.count += 8
        return True

    def take(self, n: int) -> int:
        if not self._fill(n):
            raise _Incomplete
        value = self.acc & ((1 << n) - 1)
        self.acc >>= n
        self.count -= n
        return value

    def align(self) -> int:
        """Drop bits to the byte boundary; returns them (padding must be zero only after BFINAL)."""
        n = self.count % 8
        return self.take(n) if n else 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data) and self.count == 0

    def decode(self, table: dict[int, tuple[int, int]], max_len: int) -> int:
        self._fill(max_len)  # may stay short at the very end: the code may still be complete
        for length in range(1, max_len + 1):
            if length > self.count:
                raise _Incomplete
            hit = table.get((self.acc & ((1 << length) - 1)) | (length << 16))
            if hit is not None:
                self.acc >>= length
                self.count -= length
                return hit[0]
        raise _Corrupt("invalid Huffman code")


def _table(lengths: Sequence[int]) -> _Table:
    """Canonical Huffman code (§3.2.2) as {reversed code | length << 16: (symbol, length)}."""
    max_len = max(lengths, default=0)
    if max_len == 0:
        return {}, 0
    bl_count = [0] * (max_len + 1)
    for n in lengths:
        if n:
            bl_count[n] += 1
    left = 1
    for n in range(1, max_len + 1):
        left = (left << 1) - bl_count[n]
        if left < 0:
            raise _Corrupt("over-subscribed code lengths")
    code = 0
    next_code = [0] * (max_len + 2)
    for n in range(1, max_len + 1):
        code = (code + bl_count[n - 1]) << 1
        next_code[n] = code
    table: dict[int, tuple[int, int]] = {}
    for sym, n in enumerate(lengths):
        if n:
            table[_reverse(next_code[n], n) | (n << 16)] = (sym, n)
            next_code[n] += 1
    return table, max_len


_FIXED_LITLEN = _table([8] * 144 + [9] * 112 + [7] * 24 + [8] * 8)
_FIXED_DIST = _table([5] * 32)


def _dynamic_tables(bits: _Bits) -> tuple[_Table, _Table]:
    hlit = bits.take(5) + 257
    hdist = bits.take(5) + 1
    hclen = bits.take(4) + 4
    if hlit > 286 or hdist > 30:
        raise _Corrupt("too many length or distance symbols")
    clens = [0] * 19
    for i in range(hclen):
        clens[CLEN_ORDER[i]] = bits.take(3)
    ctable, cmax = _table(clens)
    if not ctable:
        raise _Corrupt("invalid code lengths set")
    lengths: list[int] = []
    while len(lengths) < hlit + hdist:
        sym = bits.decode(ctable, cmax)
        if sym < 16:
            lengths.append(sym)
        elif sym == 16:
            if not lengths:
                raise _Corrupt("repeat with no previous length")
            lengths += [lengths[-1]] * (3 + bits.take(2))
        elif sym == 17:
            lengths += [0] * (3 + bits.take(3))
        else:
            lengths += [0] * (11 + bits.take(7))
    if len(lengths) > hlit + hdist:
        raise _Corrupt("invalid bit length repeat")
    if lengths[256] == 0:
        raise _Corrupt("missing end-of-block code")
    return _table(lengths[:hlit]), _table(lengths[hlit:])


def scan(data: bytes, *, history: bytes = b"", max_output: int = 1 << 24) -> Scan:
    """Decode ``data`` (raw DEFLATE) block by block and report what it used.

    After a block with BFINAL set, decoding continues at the next byte boundary with a new block, as
    RFC 7692 §7.2.1 allows within one message ("The next DEFLATE block follows the padded data if
    any"). ``history`` is the data the stream may refer back into (the LZ77 window carried over from
    earlier messages); ``max_reach`` says how far a reference went into it.
    """
    bits = _Bits(data)
    out = bytearray(history)
    base = len(history)
    blocks: list[Block] = []
    max_distance = 0
    max_reach = 0
    error: str | None = None
    complete = False
    try:
        while True:
            if bits.at_end():
                complete = True
                break
            start = bits.consumed_bits
            final = bool(bits.take(1))
            btype = bits.take(2)
            if btype == 0:
                blocks.append(Block("stored", final, start, len(out) - base))
                bits.align()
                n = bits.take(16)
                if bits.take(16) != n ^ 0xFFFF:
                    raise _Corrupt("invalid stored block lengths")
                for _ in range(n):
                    out.append(bits.take(8))
            elif btype == 3:
                blocks.append(Block("invalid", final, start, len(out) - base))
                raise _Corrupt("invalid block type")
            else:
                kind: BlockKind = "fixed" if btype == 1 else "dynamic"
                blocks.append(Block(kind, final, start, len(out) - base))
                litlen, dist = (_FIXED_LITLEN, _FIXED_DIST) if btype == 1 else _dynamic_tables(bits)
                while True:
                    sym = bits.decode(*litlen)
                    if sym < 256:
                        out.append(sym)
                    elif sym == 256:
                        break
                    elif sym > 285:
                        raise _Corrupt("invalid literal/length code")
                    else:
                        i = sym - 257
                        length = LENGTH_BASE[i] + bits.take(LENGTH_EXTRA[i])
                        if not dist[0]:
                            raise _Corrupt("invalid distance code")
                        dsym = bits.decode(*dist)
                        if dsym >= 30:
                            raise _Corrupt("invalid distance code")
                        distance = DIST_BASE[dsym] + bits.take(DIST_EXTRA[dsym])
                        if distance > len(out):
                            raise _Corrupt("invalid distance too far back")
                        max_distance = max(max_distance, distance)
                        max_reach = max(max_reach, distance - (len(out) - base))
                        for _ in range(length):
                            out.append(out[-distance])
                    if len(out) - base > max_output:
                        raise _Corrupt("output bound exceeded")
            if final:
                bits.align()
            if len(out) - base > max_output:
                raise _Corrupt("output bound exceeded")
    except _Incomplete:
        pass
    except _Corrupt as exc:
        error = str(exc)
    return Scan(tuple(blocks), bytes(out[base:]), max_distance, max(0, max_reach), complete, error)
