"""The codec must build any frame and parse anything without raising, naming each violation."""

from __future__ import annotations

import pytest

from harness.wire import handshake as hs
from harness.wire.frames import FrameParser, Opcode, build_frame, close_payload
from harness.wire.utf8 import Utf8Validator, first_invalid_offset


def test_rfc_example_frames() -> None:
    # RFC 6455 §5.7: a single-frame unmasked text message "Hello", and the masked one.
    assert build_frame(Opcode.TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")
    masked = build_frame(Opcode.TEXT, b"Hello", mask=True, mask_key=bytes.fromhex("37fa213d"))
    assert masked == bytes.fromhex("818537fa213d7f9f4d5158")


@pytest.mark.parametrize(
    ("size", "bits", "header"),
    [(0, 7, 2), (125, 7, 2), (126, 16, 4), (65535, 16, 4), (65536, 64, 10), (5, 16, 4), (5, 64, 10)],
)
def test_length_encodings_roundtrip(size: int, bits: int, header: int) -> None:
    data = build_frame(Opcode.BINARY, b"x" * size, length_bits=bits if size <= 125 and bits != 7 else None)
    parser = FrameParser(expect_masked=False)
    (frame,) = parser.feed(data)
    assert frame.length == size and frame.payload == b"x" * size
    assert ("non-minimal-length" in frame.violations) == (size <= 125 and bits != 7)


def test_parser_is_incremental_and_reports_violations() -> None:
    data = build_frame(3, b"abc", rsv=4, mask=True) + build_frame(Opcode.PING, b"p" * 126, fin=False)
    parser = FrameParser(expect_masked=False)
    frames = [f for i in range(len(data)) for f in parser.feed(data[i : i + 1])]
    assert [f.opcode for f in frames] == [3, Opcode.PING]
    assert frames[0].payload == b"abc"
    assert set(frames[0].violations) == {"masked-by-server", "rsv-without-extension", "reserved-opcode"}
    assert set(frames[1].violations) == {"control-frame-too-long", "fragmented-control-frame"}


def test_declared_length_can_lie_and_msb_is_flagged() -> None:
    data = build_frame(Opcode.TEXT, b"ab", length=5)
    parser = FrameParser(expect_masked=False)
    assert parser.feed(data) == []  # waits for 3 more bytes: exactly what a target would do
    (frame,) = parser.feed(b"cde")
    assert frame.payload == b"abcde"
    huge = bytes([0x81, 127]) + (1 << 63 | 5).to_bytes(8, "big")
    parser = FrameParser(expect_masked=False, max_payload=1 << 20)
    assert parser.feed(huge) == [] and parser.oversized == (1 << 63 | 5)


def test_close_payload() -> None:
    assert close_payload(1000, b"bye") == b"\x03\xe8bye"
    assert close_payload() == b""


@pytest.mark.parametrize(
    ("chunks", "offset"),
    [
        ([b"\xce\xba\xe1", b"\xbd\xb9", b""], None),  # split sequence across fragments: valid
        ([b"ab\xed", b"\xa0\x80"], 2),  # surrogate: invalid at its first byte
        ([b"ab\xf4\x90\x80\x80"], 2),  # > U+10FFFF
        ([b"ab\xe1", b""], 2),  # truncated at message end
        ([b"\xc0\xaf"], 0),  # overlong
    ],
)
def test_utf8_offsets(chunks: list[bytes], offset: int | None) -> None:
    v = Utf8Validator()
    for i, chunk in enumerate(chunks):
        v.feed(chunk, final=i == len(chunks) - 1)
    assert v.error_offset == offset
    assert first_invalid_offset(b"".join(chunks)) == offset


def test_accept_value_matches_rfc_example() -> None:
    # RFC 6455 §1.3
    assert hs.accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_lenient_head_parsing_keeps_duplicates_and_folding() -> None:
    raw = (
        b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nX: a\r\n b\r\n"
        b"Sec-WebSocket-Accept: 1\r\nsec-websocket-accept: 2\r\n\r\n"
    )
    head = hs.parse_head(raw)
    assert head.status == 101
    assert head.get_all("Sec-WebSocket-Accept") == ["1", "2"]
    assert head.get("X") == "a b" and "obsolete line folding" in head.errors
