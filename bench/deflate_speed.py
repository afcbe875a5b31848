"""How fast do the peer's permessage-deflate Compressor and Decompressor go, and what does a bomb cost?

Compresses and inflates 1 MiB messages (text that compresses about 3:1, and random bytes) at window 15
and at window 9 (default and exact window check), then inflates 1 GiB of zeros (about 1 MiB
compressed) with a 1 MiB bound and reports the peak Python allocation (tracemalloc).

    python bench/deflate_speed.py [--messages 32]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.wire.deflate import EXACT_WINDOW_CHECK, Compressor, Decompressor, DeflateError, Direction

MiB = 1 << 20


def text(seed: int) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.choice(b"etaoinshrdlucmfwyp") for _ in range(rng.randint(2, 9))) for _ in range(4000)]
    return b" ".join(rng.choice(words) for _ in range(MiB // 4))[:MiB]


def measure(label: str, msgs: list[bytes], bits: int, step: int = 64) -> None:
    c = Compressor(Direction("server", bits))
    t = time.perf_counter()
    payloads = [c.compress(m) for m in msgs]
    ct = time.perf_counter() - t
    d = Decompressor(Direction("server", bits), max_output=2 * MiB, window_check_step=step)
    t = time.perf_counter()
    for p, m in zip(payloads, msgs, strict=True):
        assert d.inflate(p).data == m
    dt = time.perf_counter() - t
    total = sum(map(len, msgs)) / MiB
    ratio = sum(map(len, msgs)) / sum(map(len, payloads))
    print(f"{label:34} ratio {ratio:5.2f}  compress {total / ct:7.1f} MiB/s  inflate {total / dt:7.1f} MiB/s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=32)
    n = ap.parse_args().messages
    texts = [text(i) for i in range(n)]
    noise = [os.urandom(MiB) for _ in range(max(4, n // 4))]
    measure("text, window 15", texts, 15)
    measure("random, window 15", noise, 15)
    measure("text, window 9 (step 64)", texts[:8], 9)
    measure("text, window 9 (exact)", texts[:2], 9, EXACT_WINDOW_CHECK)

    block = b"\0" * (16 * MiB)
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH)
    z = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=b"\0" * 32768)
    bomb = (head + (z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH)) * 63)[:-4]
    d = Decompressor(Direction("server"), max_output=MiB)
    tracemalloc.start()
    t = time.perf_counter()
    try:
        d.inflate(bomb)
    except DeflateError as exc:
        rule = exc.rule
    elapsed = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"1 GiB of zeros ({len(bomb) / MiB:.2f} MiB compressed), bound 1 MiB: {rule} after "
          f"{elapsed * 1000:.1f} ms, peak allocation {peak / MiB:.2f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
