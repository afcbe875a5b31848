"""How much peer CPU does a frame cost? Frames/s built and parsed, MiB/s through a whole echo.

The limits family (Autobahn 9.x) is where the peer's own work shows: 4 MiB in 64-byte fragments is
65 537 frames to build, mask and trace, and as many to parse, digest and validate when they come back.
This runs the real code path of a case, without a socket: ``ScriptRunner.encode`` (frame building,
masking with a fresh key per frame, the trace, the SHA-256 of what was sent) and
``PeerConnection._feed`` (parsing, rule checks, reassembly, SHA-256 and UTF-8 of what came back), on
the bytes an echoing server would send. Prints the median of ``--repeat`` runs per figure, in CPU
time of this process (``time.process_time``): on a shared machine wall time measures the neighbours.

    python bench/frame_codec.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.model.schema import SendMessage
from harness.observed import Observed
from harness.peer.connection import PeerConnection
from harness.peer.script import ScriptRunner
from harness.peer.trace import Trace
from harness.wire.frames import build_frame

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20


class _NoWriter:
    """Enough of a StreamWriter for a connection that is only fed and encoded for, never written."""

    transport: Any = None

    def get_extra_info(self, name: str) -> None:
        return None


def _connection() -> PeerConnection:
    return PeerConnection(None, _NoWriter(), Trace(), Observed(), we_mask=True)  # type: ignore[arg-type]


def _message(size: int, fragment: int, opcode: int) -> SendMessage:
    payload = {"fill": {"size": size, "pattern": "*"}}
    return SendMessage.model_validate(
        {"opcode": opcode, "payload": payload, "fragments": max(1, size // fragment)}
    )


def _echo_bytes(size: int, fragment: int, opcode: int) -> bytes:
    """The unmasked frames an echoing server sends back for one message."""
    payload = b"*" * size
    out = []
    for start in range(0, size, fragment):
        last = start + fragment >= size
        op = opcode if start == 0 else 0
        out.append(build_frame(op, payload[start : start + fragment], fin=last))
    return b"".join(out)


def build_rate(size: int, fragment: int, opcode: int = 1) -> tuple[float, float]:
    """(frames/s, seconds) for encoding one message of ``size`` bytes in ``fragment``-byte frames."""
    conn = _connection()
    runner = ScriptRunner(conn, seed="bench", data_dir=ROOT / "cases" / "data", timeout=30)
    step = _message(size, fragment, opcode)
    runner.encode(step)  # resolve the payload once, as a case's second use would
    start = time.process_time()
    runner.encode(step)
    took = time.process_time() - start
    return max(1, size // fragment) / took, took


def parse_rate(size: int, fragment: int, opcode: int = 1, chunk: int = 256 * 1024) -> tuple[float, float]:
    """(frames/s, seconds) for feeding the echo of one message in ``chunk``-sized reads."""
    data = _echo_bytes(size, fragment, opcode)
    conn = _connection()
    conn.parser.expect_masked = False
    view = memoryview(data)
    start = time.process_time()
    for offset in range(0, len(data), chunk):
        conn._feed(bytes(view[offset : offset + chunk]))
    took = time.process_time() - start
    assert len(conn.obs.messages) == 1 and conn.obs.messages[0].length == size
    assert not conn.obs.violations, conn.obs.violations
    return max(1, size // fragment) / took, took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = [
        ("4 MiB text in 64-byte frames (9.3.1)", 4 * MiB, 64),
        ("1 MiB binary in 1 KiB frames", MiB, 1024),
        ("16 MiB text in one frame (9.1.6)", 16 * MiB, 16 * MiB),
    ]
    heads = f"{'built frames/s':>15} {'parsed frames/s':>16} {'us/frame':>9} {'echo MiB/s':>11}"
    print(f"{'workload':40} {heads}")
    for label, size, fragment in rows:
        built = [build_rate(size, fragment) for _ in range(args.repeat)]
        parsed = [parse_rate(size, fragment) for _ in range(args.repeat)]
        b_rate = statistics.median(r for r, _ in built)
        p_rate = statistics.median(r for r, _ in parsed)
        round_trip = statistics.median(b + p for (_, b), (_, p) in zip(built, parsed, strict=True))
        per_frame = 1e6 * round_trip / max(1, size // fragment)
        print(f"{label:40} {b_rate:15,.0f} {p_rate:16,.0f} {per_frame:9.2f} {size / MiB / round_trip:11.1f}")


if __name__ == "__main__":
    main()
