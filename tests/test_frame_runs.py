"""The peer's fast lane gives the same frames, messages and violations as frame by frame.

``FrameParser(runs=True)`` hands a run of identical clean continuations over as one ``Frame`` with
``repeat``, and ``PeerConnection`` takes such runs (and any clean continuations) in one digest and one
UTF-8 step; ``ScriptRunner`` builds a fragmented message in one buffer. Each is compared here with the
plain path on the same bytes, including where invalid UTF-8 and rule violations land.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.model.schema import Expect, SendMessage, fragment_sizes
from harness.observed import Observed
from harness.peer.connection import PeerConnection, _singles
from harness.peer.script import ScriptRunner
from harness.peer.trace import Trace
from harness.wire.frames import Frame, FrameParser, build_frame

ROOT = Path(__file__).resolve().parents[1]


class _NoWriter:
    transport = None

    def get_extra_info(self, name: str) -> None:
        return None


def _connection(*, we_mask: bool = True) -> PeerConnection:
    conn = PeerConnection(None, _NoWriter(), Trace(), Observed(), we_mask=we_mask, auto_pong=False)  # type: ignore[arg-type]
    return conn


def _fields(frame: Frame) -> tuple[object, ...]:
    return (frame.fin, frame.rsv, frame.opcode, frame.masked, frame.length, frame.payload, frame.violations)


frame_specs = st.lists(
    st.tuples(
        st.sampled_from([0, 0, 0, 1, 2, 3, 9]),  # mostly continuations, so that runs form
        st.booleans(),  # fin
        st.sampled_from([0, 0, 0, 4]),  # rsv
        st.sampled_from([0, 1, 5, 64, 126]),  # payload size
        st.sampled_from([b"a", b"\xce", b"\xff"]),  # payload byte: ASCII, a lead byte, never valid
    ),
    max_size=60,
)


def _wire(specs: list[tuple[int, bool, int, int, bytes]]) -> bytes:
    return b"".join(build_frame(op, byte * size, fin=fin, rsv=rsv) for op, fin, rsv, size, byte in specs)


@settings(max_examples=200, deadline=None)
@given(frame_specs, st.integers(min_value=1, max_value=400))
def test_runs_expand_to_the_same_frames(specs: list[tuple[int, bool, int, int, bytes]], chunk: int) -> None:
    data = _wire(specs)
    plain, fast = FrameParser(expect_masked=False), FrameParser(expect_masked=False, runs=True)
    want: list[Frame] = []
    got: list[Frame] = []
    for start in range(0, len(data), chunk):
        want += plain.feed(data[start : start + chunk])
        got += [single for frame in fast.feed(data[start : start + chunk]) for single in _singles(frame)]
    assert [_fields(f) for f in got] == [_fields(f) for f in want]
    assert fast.buffered == plain.buffered


def test_a_run_is_one_object() -> None:
    data = build_frame(1, b"x" * 64, fin=False) + build_frame(0, b"y" * 64, fin=False) * 1000
    data += build_frame(0, b"z" * 64)
    frames = FrameParser(expect_masked=False, runs=True).feed(data)
    assert [f.repeat for f in frames] == [1, 1000, 1]
    assert frames[1].payload == b"y" * 64000


def _observed(conn: PeerConnection) -> tuple[object, ...]:
    obs = conn.obs
    messages = [(m.opcode, m.length, m.sha256, m.head, m.utf8_error) for m in obs.messages]
    violations = [(v.rule, v.detail) for v in obs.violations]
    frames = [(e.get("opcode"), e.get("fin"), e.get("length"), e.get("hex")) for e in conn.trace.events()]
    return messages, violations, frames, conn.payload_received, conn.parser.buffered


@settings(max_examples=200, deadline=None)
@given(frame_specs, st.integers(min_value=1, max_value=400))
@example([(1, False, 0, 0, b"a")] + [(0, False, 0, 1, b"a")] * 3, 400)  # 1-byte fragments: trace heads
def test_connection_sees_the_same_as_frame_by_frame(
    specs: list[tuple[int, bool, int, int, bytes]], chunk: int
) -> None:
    data = _wire(specs)
    fast, slow = _connection(), _connection()
    slow.parser = FrameParser(expect_masked=False)
    for start in range(0, len(data), chunk):
        fast._feed(data[start : start + chunk])
        for frame in slow.parser.feed(data[start : start + chunk]):  # the plain path, one frame at a time
            slow._on_frame(frame)
    assert _observed(fast) == _observed(slow)


def test_long_fragmented_message_trace_is_bounded_and_counts_every_frame() -> None:
    conn = _connection()
    data = build_frame(1, b"a" * 64, fin=False) + build_frame(0, b"a" * 64, fin=False) * 5000
    data += build_frame(0, b"\xff")
    conn._feed(data)
    events = conn.trace.events()
    elided = next(e["count"] for e in events if e["type"] == "elided")
    assert elided + sum(1 for e in events if e["type"] == "frame") == 5002
    assert [v.rule for v in conn.obs.violations] == ["invalid-utf8"]
    assert conn.obs.messages[0].utf8_error == 5001 * 64


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=0, max_value=3000),
    st.integers(min_value=1, max_value=300),
    st.sampled_from([1, 2]),
    st.booleans(),
)
def test_message_step_builds_the_bytes_of_one_frame_per_fragment(
    size: int, fragments: int, opcode: int, mask: bool
) -> None:
    step = SendMessage.model_validate(
        {"opcode": opcode, "payload": {"fill": {"size": size}}, "fragments": fragments, "mask": mask}
    )
    data = ROOT / "cases" / "data"
    runner = ScriptRunner(_connection(), seed="s", data_dir=data, timeout=5, expect=Expect())
    fast = runner.encode(step)
    # The plain path: one build_frame per fragment, keys drawn 4 bytes at a time from the same seed.
    rng = random.Random("s")
    payload = runner._bytes(step.payload)
    out, offset = [], 0
    sizes = fragment_sizes(len(payload), step.fragments, step.fragment_size)
    for i, part in enumerate(sizes):
        key = rng.randbytes(4)
        chunk = payload[offset : offset + part]
        last = i == len(sizes) - 1
        out.append(build_frame(opcode if i == 0 else 0, chunk, fin=last, mask=mask, mask_key=key))
        offset += part
    assert fast == b"".join(out)
    obs = runner.conn.obs
    assert [m[:2] for m in obs.sent_messages] == [(opcode, size)]
