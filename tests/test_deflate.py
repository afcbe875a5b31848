"""permessage-deflate: RFC 7692 examples, round trips, deliberate violations, bounds, classification.

websockets' PerMessageDeflate is used as an independent oracle (tests only): what we compress it must
inflate, and what it compresses we must inflate. ``scan`` (our reference decoder) checks what zlib
cannot tell: block types, the largest distance, references into earlier messages.
"""

from __future__ import annotations

import random
import tracemalloc
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from harness.wire import deflate as D
from harness.wire.deflate import (
    BFINAL_UNTERMINATED,
    CONTEXT_NOT_RESET,
    CORRUPT,
    EXACT_WINDOW_CHECK,
    ILLEGAL_EMPTY_MESSAGES,
    LEGAL_EMPTY_MESSAGES,
    TAIL,
    TAIL_NOT_REMOVED,
    TOO_LARGE,
    TRUNCATED,
    WINDOW_EXCEEDED,
    Compressor,
    Decompressor,
    DeflateError,
    DeflateParams,
    Direction,
)
from harness.wire.deflate_bits import DeflateWriter, scan
from harness.wire.extensions import parse

MiB = 1 << 20
WINDOWS = range(8, 16)


def _corpus(seed: int, count: int, size: int) -> list[bytes]:
    """JSON-ish messages that repeat themselves at many distances (like Autobahn's 13.x data)."""
    rng = random.Random(seed)
    words = [
        bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(300)
    ]
    out = []
    for i in range(count):
        body = b" ".join(rng.choice(words) for _ in range(size // 5))
        out.append(b'{"id": %d, "text": "%s"}' % (i, body[: max(0, size - 20)]))
    return out


def _inflater(sender: str = "server", bits: int = 15, nct: bool = False, **kw: int) -> Decompressor:
    kw.setdefault("max_output", 16 * MiB)
    return Decompressor(Direction(sender, bits, nct), **kw)  # type: ignore[arg-type]


# --- RFC 7692 §7.2.3 examples ----------------------------------------------------------------------


def test_rfc_7_2_3_1_one_block_and_fragments() -> None:
    c = Compressor(Direction("server"))
    assert c.compress(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert _inflater().inflate([bytes.fromhex("f248cd"), bytes.fromhex("c9c90700")]).data == b"Hello"


def test_rfc_7_2_3_2_sharing_the_window() -> None:
    keep = Compressor(Direction("client"))
    assert [keep.compress(b"Hello") for _ in range(2)] == [
        bytes.fromhex("f248cdc9c90700"),
        bytes.fromhex("f200110000"),
    ]
    reset = Compressor(Direction("client", no_context_takeover=True))
    assert [reset.compress(b"Hello") for _ in range(2)] == [bytes.fromhex("f248cdc9c90700")] * 2
    d = _inflater("client")
    assert [d.inflate(bytes.fromhex(h)).data for h in ("f248cdc9c90700", "f200110000")] == [b"Hello"] * 2


def test_rfc_7_2_3_3_stored_block() -> None:
    assert D.stored_message(b"Hello") == bytes.fromhex("000500faff48656c6c6f00")
    got = _inflater().inflate(D.stored_message(b"Hello"))
    assert (
        got.data == b"Hello"
        and got.violations == ()
        and scan(D.stored_message(b"Hello") + TAIL).kinds()
        == [
            "stored",
            "stored",
        ]
    )


def test_rfc_7_2_3_4_bfinal_block() -> None:
    assert D.bfinal_message(b"Hello") == bytes.fromhex("f348cdc9c9070000")
    got = _inflater().inflate(D.bfinal_message(b"Hello"))
    assert (got.data, got.final_blocks, got.violations) == (b"Hello", 1, ())


def test_rfc_7_2_3_5_two_blocks() -> None:
    got = _inflater().inflate(bytes.fromhex("f24805000000ffffcac9c90700"))
    assert got.data == b"Hello"


def test_rfc_7_2_3_6_empty_final_fragment() -> None:
    parts = Compressor(Direction("server")).compress_parts([b"Hello", b""])
    # the same frames as in crossbario/autobahn-testsuite#59 (a report of browsers getting this wrong)
    assert parts == [bytes.fromhex("f248cdc9c907000000ffff"), b"\x00"]
    assert _inflater().inflate(parts).data == b"Hello"


# --- negotiated parameters -------------------------------------------------------------------------


def test_params_from_response_are_direction_aware() -> None:
    (offer,) = parse(["permessage-deflate; client_max_window_bits; server_max_window_bits=10"])
    header = "permessage-deflate; server_max_window_bits=9; client_max_window_bits=12; "
    header += "server_no_context_takeover"
    (resp,) = parse([header])
    p = DeflateParams.from_response(resp, [offer])
    assert p.sent_by("server") == Direction("server", 9, True)
    assert p.sent_by("client") == Direction("client", 12, False)
    (bare,) = parse(["permessage-deflate"])
    assert DeflateParams.from_response(bare) == DeflateParams()
    # a hint in the offer does not bind: without client_max_window_bits in the response, 15 applies
    (hint,) = parse(["permessage-deflate; client_max_window_bits=9; client_no_context_takeover"])
    assert DeflateParams.from_response(bare, [hint]).sent_by("client") == Direction("client", 15, False)


@pytest.mark.parametrize(
    ("response", "offer"),
    [
        ("permessage-deflate; client_max_window_bits=10", "permessage-deflate"),
        ("permessage-deflate", "permessage-deflate; server_max_window_bits=10"),
        ("permessage-deflate; server_max_window_bits=16", "permessage-deflate"),
        ("permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits"),
    ],
)
def test_params_reject_illegal_responses(response: str, offer: str) -> None:
    with pytest.raises(ValueError):
        DeflateParams.from_response(parse([response])[0], parse([offer]))


# --- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", WINDOWS)
@pytest.mark.parametrize("nct", [False, True])
def test_round_trip_every_window_and_context_mode(bits: int, nct: bool) -> None:
    direction = Direction("server", bits, nct)
    msgs = [*_corpus(bits, 40, 700), b"", b"x", _corpus(99, 1, 5000)[0]]
    strategies: list[D.Window8] = ["full-flush", "zlib-limit"] if bits == 8 else ["full-flush"]
    for window8 in strategies:
        c = Compressor(direction, window8=window8)
        d = Decompressor(direction, max_output=MiB, window_check_step=EXACT_WINDOW_CHECK)
        oracle = PerMessageDeflate(nct, False, bits, 15)  # remote = us
        history = b""
        for m in msgs:
            payload = c.compress(m)
            got = d.inflate(payload)
            assert (got.data, got.compressed_size, got.inflated_size, got.violations) == (
                m,
                len(payload),
                len(m),
                (),
            )
            assert oracle.decode(Frame(Opcode.TEXT, payload, rsv1=True)).data == m
            s = scan(payload + TAIL, history=history if not nct else b"")
            assert s.complete and s.error is None and s.output == m
            assert s.max_distance <= 1 << bits, (window8, s.max_distance)
            if nct:
                assert s.max_reach == 0
            history = (history + m)[-(1 << 15) :]


def test_window_8_strategies_never_exceed_256_on_adversarial_periods() -> None:
    """Periods just above 256 tempt a 512-byte zlib window to reach back 257..262 bytes."""
    rng = random.Random(8)
    for period in [250, 255, 256, 257, 260, 262, 300, 511]:
        unit = bytes(rng.getrandbits(8) for _ in range(period))
        data = unit * 12
        for window8 in ("full-flush", "zlib-limit"):
            c = Compressor(Direction("client", 8), window8=window8)
            s = scan(c.compress(data) + TAIL)
            assert s.output == data and s.max_distance <= 256, (period, window8, s.max_distance)
    # zlib's own 9-bit limit (w_size - MIN_LOOKAHEAD), which "zlib-limit" relies on
    z = zlib.compressobj(9, zlib.DEFLATED, -9)
    unit = bytes(rng.getrandbits(8) for _ in range(251))
    assert scan(z.compress(unit * 20) + z.flush(zlib.Z_SYNC_FLUSH)).max_distance <= 250


@pytest.mark.parametrize("bits", range(9, 16))
def test_oracle_compresses_we_inflate(bits: int) -> None:
    for nct in (False, True):
        oracle = PerMessageDeflate(False, nct, 15, bits)  # local = the oracle compresses
        d = _inflater("client", bits, nct, window_check_step=EXACT_WINDOW_CHECK)
        for m in _corpus(bits, 20, 3000):
            frame = oracle.encode(Frame(Opcode.BINARY, m, rsv1=False))
            assert d.inflate(bytes(frame.data)).data == m


def test_fragments_per_frame_and_per_message() -> None:
    rng = random.Random(5)
    for nct in (False, True):
        c = Compressor(Direction("client", 11, nct))
        d = _inflater("client", 11, nct)
        oracle = PerMessageDeflate(nct, False, 11, 15)
        for m in _corpus(3, 15, 4000):
            cuts = sorted(rng.sample(range(len(m) + 1), 3))
            parts = [m[: cuts[0]], m[cuts[0] : cuts[1]], m[cuts[1] : cuts[2]], m[cuts[2] :]]
            payloads = c.compress_parts(parts)
            assert all(p for p in payloads[:-1] if p) and payloads[-1]
            assert d.inflate(payloads).data == m
            frames = [
                Frame(Opcode.TEXT if i == 0 else Opcode.CONT, p, fin=i == 3, rsv1=i == 0)
                for i, p in enumerate(payloads)
            ]
            assert b"".join(oracle.decode(f).data for f in frames) == m
        # per message, then cut like Autobahn's autoFragmentSize
        for m in _corpus(4, 10, 9000):
            payload = c.compress(m)
            assert d.inflate([payload[i : i + 256] for i in range(0, len(payload), 256)]).data == m


# --- what a correct endpoint never (or rarely) sends -----------------------------------------------


@pytest.mark.parametrize("name", sorted(LEGAL_EMPTY_MESSAGES))
def test_legal_empty_messages(name: str) -> None:
    got = _inflater().inflate(LEGAL_EMPTY_MESSAGES[name])
    assert got.data == b"" and got.violations == ()
    assert (
        PerMessageDeflate(True, True, 15, 15)
        .decode(Frame(Opcode.TEXT, LEGAL_EMPTY_MESSAGES[name], rsv1=True))
        .data
        == b""
    )


@pytest.mark.parametrize("name", sorted(ILLEGAL_EMPTY_MESSAGES))
def test_illegal_empty_messages_are_recorded(name: str) -> None:
    payload, rule = ILLEGAL_EMPTY_MESSAGES[name]
    got = _inflater().inflate(payload)
    assert got.data == b"" and [v.rule for v in got.violations] == [rule]


def test_empty_messages_between_context_takeover_messages() -> None:
    """The Tomcat/IXWebSocket failure: an empty message must not break the next one."""
    c = Compressor(Direction("server"))
    d = _inflater()
    for m in [b"abc" * 50, b"", b"abc" * 50, b"", b""]:
        assert d.inflate(c.compress(m)).data == m


def test_bfinal_unterminated_and_tail_kept_keep_their_content() -> None:
    msg = b"Hello, Hello, Hello!"
    for payload, rule in [
        (D.bfinal_message(msg, terminated=False), BFINAL_UNTERMINATED),
        (D.tail_kept_message(msg), TAIL_NOT_REMOVED),
    ]:
        got = _inflater().inflate(payload)
        assert got.data == msg and [v.rule for v in got.violations] == [rule]
        # zlib-based receivers see nothing wrong: the reason these are recorded here
        assert (
            PerMessageDeflate(True, True, 15, 15).decode(Frame(Opcode.TEXT, payload, rsv1=True)).data == msg
        )


def test_bfinal_keeps_the_window_for_the_next_message() -> None:
    d = _inflater()
    first = b"a window that the next message refers to"
    assert d.inflate(D.bfinal_message(first)).data == first
    assert d.inflate(D.context_reference_message(first).payload).data == first[-len(first) :]


@pytest.mark.parametrize("size", [0, 1, 5, 70000, 200000])
def test_stored_blocks_of_any_size(size: int) -> None:
    msg = bytes(random.Random(size).getrandbits(8) for _ in range(size))
    payload = D.stored_message(msg, block_size=65535 if size < 100000 else 1000)
    assert _inflater().inflate(payload).data == msg


@pytest.mark.parametrize(
    ("kind", "rule"),
    [
        ("invalid-block-type", CORRUPT),
        ("invalid-stored-lengths", CORRUPT),
        ("invalid-code-lengths", CORRUPT),
        ("invalid-distance-code", CORRUPT),
        ("invalid-literal-code", CORRUPT),
        ("truncated", TRUNCATED),
    ],
)
def test_corrupt_messages(kind: D.CorruptKind, rule: str) -> None:
    payload = D.corrupt_message(kind)
    with pytest.raises(DeflateError) as err:
        _inflater().inflate(payload)
    assert err.value.rule == rule
    s = scan(payload + TAIL)
    assert s.error is not None or not s.complete


def test_truncating_a_real_message_is_reported() -> None:
    payload = Compressor(Direction("server")).compress(_corpus(1, 1, 3000)[0])
    for cut in (len(payload) // 3, len(payload) // 2, len(payload) - 3):
        with pytest.raises(DeflateError) as err:
            _inflater().inflate(payload[:cut])
        assert err.value.rule in (TRUNCATED, CORRUPT)


@pytest.mark.parametrize("bits", range(8, 15))
@pytest.mark.parametrize("excess", [1, 2, 61, 62, 200])
def test_far_reference_is_a_window_violation(bits: int, excess: int) -> None:
    if (1 << bits) + excess > 1 << 15:
        pytest.skip("beyond DEFLATE's 32768")
    crafted = D.far_reference_message(bits, excess=excess, length=3)
    assert scan(crafted.payload + TAIL).max_distance == (1 << bits) + excess
    with pytest.raises(DeflateError) as err:
        _inflater(bits=bits, window_check_step=EXACT_WINDOW_CHECK).inflate(crafted.payload)
    assert err.value.rule == WINDOW_EXCEEDED
    # the default step misses only a short match exceeding the window by at most step - 3 bytes
    default = _inflater(bits=bits)
    if excess > default.window_check_step - 3:
        with pytest.raises(DeflateError):
            default.inflate(crafted.payload)
    # one window bit more is enough, and a 15-bit receiver gets the message
    assert (
        _inflater(bits=bits + 1, window_check_step=EXACT_WINDOW_CHECK).inflate(crafted.payload).data
        == crafted.message
    )
    assert _inflater(bits=15).inflate(crafted.payload).data == crafted.message


def test_distance_equal_to_the_window_is_legal() -> None:
    for bits in (8, 9, 12):
        prefix = D._pattern(1 << bits, 3)
        payload = DeflateWriter().fixed_block([*prefix, (258, 1 << bits)]).stored_block(b"").getvalue()[:-4]
        got = _inflater(bits=bits, window_check_step=EXACT_WINDOW_CHECK).inflate(payload)
        assert got.data == prefix + (prefix * 2)[:258]


def test_realistic_window_violation_by_a_15_bit_compressor() -> None:
    for bits in (9, 11, 13):
        c = Compressor(Direction("server", bits), window_bits=15)
        d = _inflater(bits=bits)
        with pytest.raises(DeflateError) as err:
            for m in _corpus(bits, 30, 2000):
                assert d.inflate(c.compress(m)).data == m
        assert err.value.rule == WINDOW_EXCEEDED


def test_context_reference_legal_with_takeover_violation_without() -> None:
    first = _corpus(7, 1, 500)[0]
    crafted = D.context_reference_message(first, length=100)
    keep = _inflater("client")
    keep.inflate(Compressor(Direction("client")).compress(first))
    assert keep.inflate(crafted.payload).data == first[-100:]
    reset = _inflater("client", nct=True)
    reset.inflate(Compressor(Direction("client", no_context_takeover=True)).compress(first))
    with pytest.raises(DeflateError) as err:
        reset.inflate(crafted.payload)
    assert err.value.rule == CONTEXT_NOT_RESET and "client_no_context_takeover" in err.value.detail


def test_realistic_context_violation_and_both_at_once() -> None:
    msgs = _corpus(11, 10, 800)
    c = Compressor(Direction("server", 15, True), context_takeover=True)
    d = _inflater(nct=True)
    d.inflate(c.compress(msgs[0]))
    with pytest.raises(DeflateError) as err:
        for m in msgs[1:]:
            d.inflate(c.compress(m))
    assert err.value.rule == CONTEXT_NOT_RESET
    # kept context AND a 15-bit window where 9 was agreed: the context is named first
    c = Compressor(Direction("server", 9, True), context_takeover=True, window_bits=15)
    d = _inflater(bits=9, nct=True)
    first = D._pattern(3000, 9)  # no repeats inside: the first message is legal
    assert d.inflate(c.compress(first)).data == first
    with pytest.raises(DeflateError) as err:
        d.inflate(c.compress(first[:300]))  # refers 3000 bytes back, into the first message
    assert err.value.rule == CONTEXT_NOT_RESET and "farther back" in err.value.detail


def test_reference_before_any_data_is_corrupt() -> None:
    payload = DeflateWriter().fixed_block([(10, 5)]).stored_block(b"").getvalue()[:-4]
    for d in (_inflater(), _inflater(nct=True), _inflater(bits=9)):
        with pytest.raises(DeflateError) as err:
            d.inflate(payload)
        assert err.value.rule == CORRUPT


# --- output bound ----------------------------------------------------------------------------------


def _zero_bomb(total: int) -> bytes:
    """``total`` zero bytes compressed, built from one 16 MiB segment repeated (each segment only
    refers back into zeros, so any number of them is a valid stream)."""
    block = b"\0" * (16 * MiB)
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = first.compress(block) + first.flush(zlib.Z_SYNC_FLUSH)
    again = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=b"\0" * 32768)
    segment = again.compress(block) + again.flush(zlib.Z_SYNC_FLUSH)
    return (head + segment * (total // len(block) - 1))[:-4]


def test_bomb_stops_at_the_bound_with_small_memory() -> None:
    bomb = _zero_bomb(1 << 30)
    assert len(bomb) < 2 * MiB
    assert scan(bomb[: 64 * 1024], max_output=1 << 20).error in ("output bound exceeded", None)
    for bits, step in ((15, 64), (9, 64)):
        d = _inflater(bits=bits, max_output=MiB, window_check_step=step)
        tracemalloc.start()
        try:
            with pytest.raises(DeflateError) as err:
                d.inflate(bomb)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert err.value.rule == TOO_LARGE
        assert peak < 3 * MiB, peak  # the bound, one output chunk, one input slice and the join


def test_bound_is_exact() -> None:
    m = b"z" * 1000
    payload = Compressor(Direction("server")).compress(m)
    assert _inflater(max_output=1000).inflate(payload).data == m
    with pytest.raises(DeflateError) as err:
        _inflater(max_output=999).inflate(payload)
    assert err.value.rule == TOO_LARGE


# --- properties ------------------------------------------------------------------------------------

_messages = st.lists(st.binary(max_size=3000) | st.text(max_size=400).map(str.encode), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(msgs=_messages, bits=st.integers(8, 15), nct=st.booleans(), splits=st.integers(1, 4))
def test_property_round_trip(msgs: list[bytes], bits: int, nct: bool, splits: int) -> None:
    direction = Direction("client", bits, nct)
    c = Compressor(direction)
    d = Decompressor(direction, max_output=MiB, window_check_step=EXACT_WINDOW_CHECK)
    for m in msgs:
        step = max(1, len(m) // splits)
        parts = [m[i : i + step] for i in range(0, len(m), step)] or [b""]
        assert d.inflate(c.compress_parts(parts)).data == m
        assert d.inflate(c.compress(m)).data == m


@settings(max_examples=400, deadline=None)
@given(
    payload=st.binary(max_size=200)
    | st.sampled_from([D.corrupt_message("truncated"), D.bfinal_message(b"x")]),
    bits=st.integers(8, 15),
    nct=st.booleans(),
    bound=st.integers(0, 5000),
)
def test_property_arbitrary_bytes(payload: bytes, bits: int, nct: bool, bound: int) -> None:
    d = _inflater(bits=bits, nct=nct, max_output=bound)
    try:
        got = d.inflate(payload)
    except DeflateError as exc:
        assert exc.rule in {CORRUPT, TRUNCATED, WINDOW_EXCEEDED, CONTEXT_NOT_RESET, TOO_LARGE}
        return
    assert len(got.data) <= bound
    # our verdict agrees with the reference decoder on what the data is
    ref = scan(payload + TAIL, max_output=bound)
    if not got.violations:
        assert ref.error is None and ref.output == got.data


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(min_size=1, max_size=120), bound=st.integers(0, 300))
def test_property_after_a_message_with_context(payload: bytes, bound: int) -> None:
    """Arbitrary second messages, with a window full of the first one, under both context modes."""
    first = b"0123456789abcdef" * 8
    for nct in (False, True):
        c = Compressor(Direction("server", 9, nct))
        d = _inflater(bits=9, nct=nct, max_output=max(bound, len(first)))
        d.inflate(c.compress(first))
        try:
            got = d.inflate(payload)
        except DeflateError as exc:
            assert exc.rule in {CORRUPT, TRUNCATED, WINDOW_EXCEEDED, CONTEXT_NOT_RESET, TOO_LARGE}
            continue
        assert len(got.data) <= max(bound, len(first))
        if not got.violations:
            ref = scan(payload + TAIL, history=b"" if nct else first)
            assert ref.error is None and ref.output == got.data


@settings(max_examples=300, deadline=None)
@given(
    msg=st.binary(min_size=1, max_size=600),
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from("xid")), max_size=3
    ),
    bits=st.integers(8, 15),
    bound=st.integers(0, 2000),
)
def test_property_damaged_messages(
    msg: bytes, edits: list[tuple[int, int, str]], bits: int, bound: int
) -> None:
    """A real message with bytes replaced, inserted or deleted: only our errors, never over the bound."""
    payload = bytearray(Compressor(Direction("server", bits)).compress(msg * 3))
    for pos, value, op in edits:
        i = pos % (len(payload) + 1)
        if op == "x" and i < len(payload):
            payload[i] ^= value or 1
        elif op == "i":
            payload.insert(i, value)
        elif op == "d" and i < len(payload):
            del payload[i]
    d = _inflater(bits=bits, max_output=bound, window_check_step=EXACT_WINDOW_CHECK)
    try:
        got = d.inflate(bytes(payload))
    except DeflateError as exc:
        assert exc.rule in {CORRUPT, TRUNCATED, WINDOW_EXCEEDED, TOO_LARGE}
        return
    assert len(got.data) <= bound
    ref = scan(bytes(payload) + TAIL, max_output=bound)
    if not got.violations:
        assert ref.error is None and ref.output == got.data and ref.max_distance <= 1 << bits


def test_blocks_after_a_bfinal_block_refer_back_across_it() -> None:
    """§7.2.1: "The next DEFLATE block follows the padded data"; its references may reach before it."""
    w = DeflateWriter().fixed_block(list(b"abcdefgh"), final=True).align()
    payload = w.fixed_block([(8, 8), *b"!"]).stored_block(b"").getvalue()[:-4]
    for bits in (8, 15):
        got = _inflater(bits=bits, window_check_step=EXACT_WINDOW_CHECK).inflate(payload)
        assert (got.data, got.final_blocks, got.violations) == (b"abcdefghabcdefgh!", 1, ())
    assert scan(payload + TAIL).kinds() == ["fixed", "fixed", "stored"]
