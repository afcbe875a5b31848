"""The ``probe`` step: does the server still serve a second connection while the first one stalls?

A server that blocks on one connection's half-sent frame header (a slowloris) fails everybody else,
which is the denial of service RFC 6455 §10.4 asks implementations to protect themselves from. The
probe is a minimal, correct client on its own TCP connection: handshake, one masked message, its
echo, a close. It reports a problem as a sentence, or None when the echo came back intact; whatever
the server answers (a response head without end, a frame declaring 2^63 bytes) is a sentence, hence
the case's FAIL, never an exception, which the script runner would have to report as ERROR.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from harness.wire import handshake as hs
from harness.wire.frames import FrameParser, Opcode, build_frame, close_payload


async def probe_echo(host: str, port: int, payload: bytes, opcode: int, timeout: float) -> str | None:
    """None when a fresh connection got ``payload`` echoed within ``timeout`` s, else what went wrong."""
    try:
        return await asyncio.wait_for(_probe(host, port, payload, opcode), timeout)
    except TimeoutError:
        return f"a second connection opened meanwhile got no echo within {timeout:g} s"
    except asyncio.LimitOverrunError:  # whatever the server sends, it is the server's failure
        return f"a second connection opened meanwhile got a response head longer than {hs.MAX_HEAD} bytes"
    except (OSError, asyncio.IncompleteReadError) as exc:
        return f"a second connection opened meanwhile failed: {type(exc).__name__}: {exc}"


async def _probe(host: str, port: int, payload: bytes, opcode: int) -> str | None:
    reader, writer = await asyncio.open_connection(host, port, limit=hs.MAX_HEAD)
    try:
        key = hs.new_key()
        writer.write(hs.build_request(f"{host}:{port}", "/", key=key))
        head = hs.parse_head(await reader.readuntil(b"\r\n\r\n"))
        if head.status != 101 or head.get("Sec-WebSocket-Accept") != hs.accept_value(key):
            return f"a second connection opened meanwhile was refused: {head.start_line!r}"
        writer.write(build_frame(opcode, payload, mask=True, mask_key=os.urandom(4)))
        # Nothing but the echo and control frames is expected: a frame beyond that is not buffered.
        parser = FrameParser(expect_masked=False, max_payload=max(len(payload), 125))
        while True:
            data = await reader.read(65536)
            if not data:
                return "a second connection opened meanwhile was closed before echoing"
            frames = parser.feed(data)
            if parser.oversized is not None:
                return f"a second connection opened meanwhile got a frame declaring {parser.oversized} bytes"
            for frame in frames:
                if frame.opcode == opcode:
                    if frame.payload != payload:
                        return "a second connection opened meanwhile got a wrong echo"
                    writer.write(build_frame(Opcode.CLOSE, close_payload(1000), mask=True))
                    return None
                if frame.opcode == Opcode.CLOSE:
                    return "a second connection opened meanwhile was closed before echoing"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
