"""Turn a payload spec from a case into bytes.

Large generated payloads (16 MiB fills repeated across a run) are cached: payload specs are frozen
pydantic models, hence hashable, so ``functools.lru_cache`` can key on them directly.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path

from harness.model.schema import Payload, PayloadObj

DATA_DIR = Path("cases") / "data"


def resolve(payload: Payload | None, data_dir: Path = DATA_DIR) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, str):
        return payload.encode("utf-8")
    return _resolve_obj(payload, data_dir)


@functools.lru_cache(maxsize=64)
def _resolve_obj(payload: PayloadObj, data_dir: Path) -> bytes:
    if payload.text is not None:
        return payload.text.encode("utf-8")
    if payload.hex is not None:
        return bytes.fromhex(payload.hex)
    if payload.fill is not None:
        fill = payload.fill
        if fill.pattern_hex is not None:
            pattern = bytes.fromhex(fill.pattern_hex)
        else:
            pattern = (fill.pattern if fill.pattern is not None else "*").encode("utf-8")
        if not pattern:
            raise ValueError("fill pattern is empty")
        return (pattern * (fill.size // len(pattern) + 1))[: fill.size]
    if payload.random is not None:
        return random.Random(payload.random.seed).randbytes(payload.random.size)
    if payload.repeat is not None:
        r = payload.repeat
        return (r.prefix + r.unit * r.count + r.suffix).encode("utf-8")
    assert payload.file is not None
    return (data_dir / payload.file).read_bytes()


def payload_size(payload: Payload | None) -> int | None:
    """The size a payload spec resolves to, without building it; None for a file (read at run time)."""
    if payload is None:
        return 0
    if isinstance(payload, str):
        return len(payload.encode("utf-8"))
    if payload.text is not None:
        return len(payload.text.encode("utf-8"))
    if payload.hex is not None:
        return len(bytes.fromhex(payload.hex))
    if payload.fill is not None:
        return payload.fill.size
    if payload.random is not None:
        return payload.random.size
    if payload.repeat is not None:
        r = payload.repeat
        return len(r.prefix.encode()) + len(r.unit.encode()) * r.count + len(r.suffix.encode())
    return None
