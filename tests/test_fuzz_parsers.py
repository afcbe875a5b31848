"""Fuzzing every parser a target feeds: whatever bytes arrive, in whatever chunks, nothing but the
documented results comes out, and nothing a length field asks for is allocated.

A target controls the bytes of its frames, its handshake head, its extension answer, its close body,
its text messages and (as a client) every line on its stdout. The parsers of those bytes are lenient
by design (they name what is wrong instead of raising), so any exception is a harness crash, which
the engine would report as ERROR for a case the target should FAIL. Each property below says what
the parser promises: its results, its rule ids (every one named in ``wire.rules``), the same answer
whatever the chunking, and its bounds.

Deterministic in CI: every test is ``derandomize=True`` (the examples come from the test's own
source, not from a seed that changes per run), ``deadline=None`` (a loaded 2-core machine must not
fail a test for being slow), and small ``max_examples``: about 5 s in all.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tracemalloc
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.observed import EVENTS_TAIL, MAX_EVENT_BYTES, MAX_EVENTS, MAX_GARBAGE, ClientReport, parse_close
from harness.peer.server import EVENT_LINE_LIMIT, _read_events
from harness.wire import extensions as ext
from harness.wire.frames import DEFINED_OPCODES, Frame, FrameParser, build_frame
from harness.wire.handshake import HttpHead, accept_value, find_head_end, parse_head
from harness.wire.handshake_rules import check_request, check_response, offered_protocols
from harness.wire.rules import RULES
from harness.wire.utf8 import Utf8Validator, first_invalid_offset

FUZZ = settings(
    derandomize=True, database=None, deadline=None, max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` split at the given offsets (taken modulo its length, sorted): every chunking is one."""
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def as_tuple(f: Frame) -> tuple[Any, ...]:
    return (f.fin, f.rsv, f.opcode, f.masked, f.length, f.payload, f.header_size, f.mask_key, f.violations)


# -- frames --------------------------------------------------------------------------------------------

# Frames a target could send: legal and illegal, masked or not, lying lengths included (the declared
# length may exceed what is sent: the parser must wait, not read past or allocate).
def _frame(op: int, payload: bytes, fin: bool, rsv: int, mask: bool, bits: int | None) -> bytes:
    limit = {7: 125, 16: 0xFFFF, 64: 1 << 62}.get(bits or 64, 0)
    bits = bits if len(payload) <= limit else None  # a forced encoding too small for the payload: minimal
    return build_frame(op, payload, fin=fin, rsv=rsv, mask=mask, length_bits=bits)


frame_bytes = st.builds(
    _frame, st.integers(0, 15), st.binary(max_size=300), st.booleans(), st.integers(0, 7), st.booleans(),
    st.sampled_from([None, 7, 16, 64]),
)  # fmt: skip
streams = st.lists(st.one_of(frame_bytes, st.binary(max_size=40)), max_size=12).map(b"".join)


@FUZZ
@given(stream=streams, cuts=st.lists(st.integers(0, 5000), max_size=20), expect_masked=st.booleans())
@example(stream=b"\x00\x00\x00~\x11\x00" + bytes(5), cuts=[6], expect_masked=False)  # oversized, then more
def test_frame_parser_any_chunking_gives_the_same_frames(
    stream: bytes, cuts: list[int], expect_masked: bool
) -> None:
    whole = FrameParser(expect_masked=expect_masked, max_payload=4096)
    at_once = whole.feed(stream)
    parser = FrameParser(expect_masked=expect_masked, max_payload=4096)
    pieces: list[Frame] = []
    for chunk in chunked(stream, cuts):
        pieces.extend(parser.feed(chunk))
        assert parser.buffered <= 4096 + 14 + len(chunk)  # never more than one frame's worth waits
    assert [as_tuple(f) for f in pieces] == [as_tuple(f) for f in at_once]
    assert parser.oversized == whole.oversized
    # After an oversized frame the parser stops and reads nothing more, so what it still holds depends
    # on how much had arrived when it stopped; nobody reads it (the peer drops the connection).
    if whole.oversized is None:
        assert parser.buffered == whole.buffered
    for f in pieces:
        assert set(f.violations) <= set(RULES), f.violations
        assert f.length == len(f.payload) <= 4096
        assert (f.opcode in DEFINED_OPCODES) == ("reserved-opcode" not in f.violations)


@FUZZ
@given(
    declared=st.integers(4097, (1 << 64) - 1),
    opcode=st.integers(0, 15),
    chunks=st.lists(st.binary(min_size=1, max_size=4096), min_size=1, max_size=30),
)
def test_a_declared_length_beyond_the_cap_is_reported_and_never_buffered(
    declared: int, opcode: int, chunks: list[bytes]
) -> None:
    parser = FrameParser(expect_masked=False, max_payload=4096)
    assert parser.feed(build_frame(opcode, b"", length=declared, length_bits=64)) == []
    assert parser.oversized == declared
    for chunk in chunks:  # what follows cannot be framed, and must not pile up
        assert parser.feed(chunk) == []
    assert parser.buffered <= 10


def test_a_2_63_frame_sent_in_part_allocates_nothing_near_its_length() -> None:
    """The default cap (64 MiB) against a header declaring 2^63-1 and 8 MiB of it: the parser's peak
    allocation stays at what arrived in one read, not at what the length field asks for."""
    parser = FrameParser(expect_masked=False)
    chunk = bytes(256 * 1024)
    tracemalloc.start()
    try:
        parser.feed(build_frame(2, b"", length=(1 << 63) - 1))
        for _ in range(32):
            parser.feed(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parser.oversized == (1 << 63) - 1
    assert peak < 1024 * 1024, peak


# -- the handshake head --------------------------------------------------------------------------------

header_lines = st.lists(
    st.one_of(
        st.tuples(st.text(max_size=20), st.text(max_size=40)).map(lambda kv: f"{kv[0]}: {kv[1]}"),
        st.text(max_size=40),  # no colon, folding, anything
    ),
    max_size=10,
)


def _head_bytes(start: str, lines: list[str], sep: str) -> bytes:
    return (sep.join([start, *lines]) + sep + sep).encode("utf-8", "surrogatepass")


@FUZZ
@given(raw=st.binary(max_size=600))
def test_parse_head_and_find_head_end_take_any_bytes(raw: bytes) -> None:
    end = find_head_end(raw)
    assert end == -1 or 2 <= end <= len(raw)
    if end > 0:
        assert raw[:end].endswith((b"\r\n\r\n", b"\n\n"))
    head = parse_head(raw[:end] if end > 0 else raw)
    assert isinstance(head.start_line, str) and all(isinstance(k, str) for k, _ in head.headers)
    assert head.status is None or head.status >= 0
    for name, _ in head.headers:
        assert head.get_all(name) and isinstance(head.tokens(name), list)


@FUZZ
@given(
    start=st.text(max_size=40),
    lines=header_lines,
    sep=st.sampled_from(["\r\n", "\n"]),
    key=st.text(max_size=30),
)
def test_handshake_rules_name_a_rule_or_nothing(start: str, lines: list[str], sep: str, key: str) -> None:
    """check_request (a client's request, peer as server) and check_response (a server's 101, peer as
    client) on anything: a Violation of a named rule, or None."""
    head = parse_head(_head_bytes(start, lines, sep))
    found = check_request(head)
    assert found is None or found.rule in RULES
    offers = "permessage-deflate; client_max_window_bits"
    headers = [("Sec-WebSocket-Protocol", "chat, superchat"), ("Sec-WebSocket-Extensions", offers)]
    request = HttpHead("GET / HTTP/1.1", headers)
    answer = check_response(head, key.encode("utf-8", "replace").decode("latin-1"), request)
    assert answer is None or answer.rule in RULES
    offered_protocols(head)


def test_a_correct_response_passes_the_rules_fuzzed_above() -> None:
    """The property test above would pass with a check_response that always answers a violation."""
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    head = parse_head(
        f"HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
        f"{accept_value(key)}\r\nSec-WebSocket-Protocol: chat\r\n\r\n".encode()
    )
    request = HttpHead("GET / HTTP/1.1", [("Sec-WebSocket-Protocol", "chat")])
    assert check_response(head, key, request) is None


# -- extensions ----------------------------------------------------------------------------------------

ext_text = st.lists(
    st.one_of(
        st.sampled_from([
            "permessage-deflate", "server_no_context_takeover", "client_no_context_takeover",
            "server_max_window_bits", "client_max_window_bits", "=", ";", ",", '"', "10", "8", "15", "16",
            "08", "x", " ", "PERMESSAGE-DEFLATE",
        ]),
        st.text(max_size=6),
    ),
    max_size=25,
).map("".join)  # fmt: skip


@FUZZ
@given(offers=st.lists(ext_text, max_size=3), answers=st.lists(ext_text, max_size=3))
def test_extension_negotiation_checks_take_any_header(offers: list[str], answers: list[str]) -> None:
    offered = ext.parse(offers)
    accepted = ext.parse(answers)
    for e in offered + accepted:
        assert e.name == e.name.lower() and e.name
        problem = ext.offer_problem(e)
        assert problem is None or isinstance(problem, str)
    for e in accepted:
        problem = ext.response_problem(e, offered)
        assert problem is None or isinstance(problem, str)


def test_the_extension_checks_fuzzed_above_accept_and_refuse() -> None:
    offer = ext.parse(["permessage-deflate; client_max_window_bits; server_max_window_bits=10"])
    assert ext.offer_problem(offer[0]) is None
    good = ext.parse(["permessage-deflate; server_max_window_bits=10"])[0]
    assert ext.response_problem(good, offer) is None
    bad = ext.parse(["permessage-deflate; server_max_window_bits=12"])[0]
    assert "server_max_window_bits" in str(ext.response_problem(bad, offer))


# -- close bodies and UTF-8 ------------------------------------------------------------------------------


@FUZZ
@given(payload=st.binary(max_size=200))
def test_parse_close_names_every_problem_and_never_raises(payload: bytes) -> None:
    info = parse_close(payload, 0.0)
    assert set(info.problems) <= set(RULES)
    assert info.raw_length == len(payload)
    if len(payload) >= 2:
        assert info.code == int.from_bytes(payload[:2], "big") and info.reason == payload[2:]
        valid_reason = first_invalid_offset(payload[2:]) is None
        assert ("close-reason-invalid-utf8" in info.problems) == (not valid_reason)


utf8ish = st.lists(
    st.one_of(st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")), st.binary(max_size=4)),
    max_size=12,
).map(b"".join)


@FUZZ
@given(data=utf8ish, cuts=st.lists(st.integers(0, 200), max_size=8))
def test_utf8_validator_in_any_chunking_finds_the_first_invalid_byte(data: bytes, cuts: list[int]) -> None:
    v = Utf8Validator()
    parts = chunked(data, cuts)
    for i, part in enumerate(parts):
        v.feed(part, final=i == len(parts) - 1)
    if not parts:
        v.feed(b"", final=True)
    assert v.error_offset == first_invalid_offset(data)


# -- a client's event lines ------------------------------------------------------------------------------


class FakeClient:
    """A client process as the peer sees it: only its stdout, fed with the bytes under test (the
    reader is made inside the running loop, as asyncio requires)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.stdout = asyncio.StreamReader(limit=EVENT_LINE_LIMIT)
        self.chunks = chunks

    async def feed(self) -> None:
        assert self.stdout is not None
        for chunk in self.chunks:
            self.stdout.feed_data(chunk)
            await asyncio.sleep(0)  # the reader sees the chunks one by one
        self.stdout.feed_eof()

    async def wait(self) -> int:
        return 0

    def kill(self) -> None:
        pass


def read_events(chunks: list[bytes]) -> ClientReport:
    report = ClientReport()

    async def main() -> None:
        client = FakeClient(chunks)
        await asyncio.wait_for(asyncio.gather(client.feed(), _read_events(client, report)), 20)

    asyncio.run(main())
    return report


event_lines = st.one_of(
    st.builds(lambda d: json.dumps({"event": "message", **d}).encode(),
              st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3)),
    st.sampled_from([b"[" * 70000, b"[" * 5000 + b"]" * 5000, b'{"event": 1e999}', b"\xff\xfe", b"", b"  ",
                     b'{"event"', b"null", b'["event"]', b"\x00\x1b[31m"]),
    st.binary(max_size=100),
    st.integers(EVENT_LINE_LIMIT - 2, EVENT_LINE_LIMIT + 5).map(lambda n: b"x" * n),
)  # fmt: skip


def _as_event(line: bytes) -> dict[str, Any] | None:
    """What a line is under the contract (docs/targets.md): a JSON object with an ``event``, or not."""
    text = line.decode("utf-8", "replace").strip()
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) and "event" in value else None


@FUZZ
@given(lines=st.lists(event_lines, max_size=15), newline_at_end=st.booleans(),
       cuts=st.lists(st.integers(0, 300_000), max_size=10))  # fmt: skip
def test_event_reader_takes_any_stdout(lines: list[bytes], newline_at_end: bool, cuts: list[int]) -> None:
    """Any bytes in any chunks: the events are exactly the event lines, in order, whatever came
    between them (a line longer than the limit is dropped without losing the next line)."""
    data = b"\n".join(lines) + (b"\n" if newline_at_end else b"")
    report = read_events(chunked(data, cuts))
    assert len(report.garbage) <= MAX_GARBAGE and all(len(g) < 300 for g in report.garbage)
    pieces = data.split(b"\n")
    if any(abs(len(p) - EVENT_LINE_LIMIT) <= 2 for p in pieces):
        return  # at the limit itself, either reading is right
    events = [e for p in pieces if len(p) < EVENT_LINE_LIMIT and (e := _as_event(p)) is not None]
    assert json.dumps(report.events) == json.dumps(events)
    long_lines = sum(1 for p in pieces if len(p) > EVENT_LINE_LIMIT)
    bad = sum(1 for p in pieces if len(p) < EVENT_LINE_LIMIT and p.strip() and _as_event(p) is None)
    assert len(report.garbage) == min(MAX_GARBAGE, long_lines + bad)


def test_event_reader_sorts_events_from_garbage() -> None:
    """What the fuzzing above cannot see: the right lines are events and the others garbage."""
    report = read_events([b'{"event": "open", "protocol": ""}\n', b"[" * 70000 + b"\n", b"x" * 70000,
                          b'\n{"event": "close", "code": 1000}\n', b"hello\n"])  # fmt: skip
    assert [e["event"] for e in report.events] == ["open", "close"]
    assert len(report.garbage) == 3 and "longer than 65536" in report.garbage[1]


@FUZZ
@given(sizes=st.lists(st.integers(10, 64 * 1024), max_size=400))
def test_client_report_keeps_a_bounded_head_and_the_last_events(sizes: list[int]) -> None:
    report = ClientReport()
    for i, size in enumerate(sizes):
        report.add_event({"event": "message", "n": i}, size)
    kept = [e["n"] for e in report.events]
    assert kept == sorted(kept)  # the order a verdict reads (error before close) is the order printed
    assert len(kept) + report.events_dropped == len(sizes)
    total, head = 0, 0
    while head < len(sizes) and head < MAX_EVENTS and total + sizes[head] <= MAX_EVENT_BYTES:
        total += sizes[head]
        head += 1
    assert kept[:head] == list(range(head))  # everything that fits the budget, from the start
    assert len(kept) <= head + EVENTS_TAIL  # then only the last few: bounded whatever was printed
    assert kept[head:] == list(range(len(sizes)))[max(head, len(sizes) - EVENTS_TAIL):]
