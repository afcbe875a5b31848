"""Incremental UTF-8 validation that reports where the first invalid byte is.

Fail-fast verdicts (RFC 6455 §8.1, Autobahn 6.4.x) need to know *at which byte* a text message became
invalid, across fragment boundaries: a sequence split over two frames is valid, a truncated one at
message end is not. CPython's decoder already rejects a bad sequence at its first impossible byte
(surrogates, overlongs, code points over U+10FFFF), so we only carry the incomplete tail ourselves.
"""

from __future__ import annotations

_END_OF_DATA = "unexpected end of data"


class Utf8Validator:
    """Feed fragments; ``error_offset`` is the message offset of the first invalid byte, or None."""

    def __init__(self) -> None:
        self._tail = b""
        self.consumed = 0
        self.error_offset: int | None = None

    def feed(self, data: bytes, *, final: bool = False) -> bool:
        """Validate the next fragment; returns False once the message is known to be invalid."""
        if self.error_offset is not None:
            return False
        buf = self._tail + data if self._tail else data
        base = self.consumed - len(self._tail)
        self.consumed += len(data)
        try:
            buf.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not final and exc.reason == _END_OF_DATA and exc.end == len(buf):
                self._tail = buf[exc.start :]
                return True
            self.error_offset = base + exc.start
            return False
        self._tail = b""
        return True

    @property
    def valid(self) -> bool:
        return self.error_offset is None


def first_invalid_offset(data: bytes) -> int | None:
    """Offset of the first byte that makes ``data`` invalid UTF-8 as a complete message."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return None
