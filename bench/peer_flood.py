"""How fast can the peer push a flood? (A backpressure figure is the target's only if it is not ours.)

Floods a sink on 127.0.0.1 that reads and discards (a separate process, so it does not share the
peer's GIL) through the real ``PeerConnection`` and ``run_flood``: masked frames with a fresh key
each, SHA-256 of every message, the same code path as a case. Prints MiB/s of payload and messages/s.

    python bench/peer_flood.py [--mib 256] [--size 65536]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.observed import Observed
from harness.peer.connection import PeerConnection
from harness.peer.flood import run_flood
from harness.peer.trace import Trace

SINK = """
import socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept(); buf = bytearray(1 << 20); total = 0
while (n := conn.recv_into(buf)):
    total += n
print(total, flush=True)
"""


async def measure(total: int, size: int) -> tuple[float, float]:
    """(MiB/s of payload, messages/s) for ``total`` payload bytes in ``size``-byte messages."""
    sink = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        port = int(sink.stdout.readline())
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        conn = PeerConnection(reader, writer, Trace(), Observed(), we_mask=True)
        conn.set_budget(120)
        count = max(1, total // size)
        started = time.perf_counter()
        stats = await run_flood(
            conn, size=size, opcode=2, count=count, stall_after=5.0, record=lambda *_: None
        )
        await writer.drain()
        elapsed = time.perf_counter() - started
        writer.close()
        await writer.wait_closed()
        sink.wait(timeout=30)
        return stats.payload / elapsed / 2**20, stats.messages / elapsed
    finally:
        sink.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--size", type=int, action="append")
    args = ap.parse_args()
    for size in args.size or [65536, 1024, 16]:
        total = args.mib * 2**20 if size >= 1024 else 100_000 * size
        mib_s, msg_s = asyncio.run(measure(total, size))
        print(f"{size:>6} B messages: {mib_s:8.1f} MiB/s payload, {msg_s:10.0f} messages/s")


if __name__ == "__main__":
    main()
