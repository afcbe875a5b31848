"""Servers that attack the harness instead of the protocol: one ``--mode`` each, started by the tests.

A conformance harness is pointed at implementations that are broken by definition, and sometimes at
hostile ones; what such a target sends must cost the harness a bounded amount of memory and time, be
blamed on the right case, and never reach an output unescaped. Each mode is one way of being hostile
(tests/test_hostile.py runs every one through ``python -m harness.cli run``):

    text           (default) every answer is hostile text: a status reason, header names and values, a
                   subprotocol nobody offered and a close reason made of rich markup, terminal escapes,
                   NUL, C1 bytes and HTML (tests/test_text_hygiene.py uses it too)
    flood          after the 101, frames as fast as the socket takes them, for as long as the peer
                   stays; never reads (``--frame`` data: 64 KiB binary frames, tiny: empty 2-byte
                   frames, ping: 125-byte pings, which a correct peer must answer)
    huge-frame     after the 101, a frame header declaring 2^31 bytes and 8 MiB of that payload
    crash-after    a correct echo server that exits (status 3) when connection ``--n`` arrives
    never-ready    never listens
    ready-late     a correct echo server that starts listening only after ``--delay`` (5) seconds
    headers-nth    a correct echo server, except from connection ``--n`` on: a 101 status line, then header
                   lines without end (with ``--n 3``: the second connection of a case, its ``probe``)
    child-ignores-term  a correct echo server with a child process that ignores SIGTERM (and the
                   server ignores it too), so only the group's SIGKILL ends them
    endless-output a correct echo server that writes ``--output-mib`` (256) MiB to stdout and to
                   stderr before it listens (so it is ready only once the harness drained 2 x 256 MiB),
                   then goes on writing as fast as the pipe takes it for as long as it serves

Connections are counted from the start of the process, and the harness's readiness check (a TCP
connect that sends nothing) is connection 1. Every correct part is tests/broken_server.py without a
defect. Pids of everything a mode starts go to
``--pid-file`` (one per line), so a test can prove that none of them survives the run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.wire.frames import Opcode, build_frame
from tests.broken_server import Server

HOSTILE = "[/] [bold]x[/bold] \x1b[31mred\x1b[0m \x00nul <script>alert(1)</script>"
# The same in raw bytes, with what only bytes can carry: a C1 CSI (0x9b) and a DEL.
HOSTILE_BYTES = HOSTILE.encode("utf-8") + b" \x9b2J\x7f"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MODES = (
    "text", "flood", "huge-frame", "crash-after", "never-ready", "ready-late", "headers-nth",
    "child-ignores-term", "endless-output",
)  # fmt: skip
HUGE = 1 << 31
HUGE_SENT = 8 * 1024 * 1024

# A grandchild that ignores SIGTERM and lives until it is killed.
IGNORING_CHILD = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(3600)"


def record_pid(path: str | None, pid: int) -> None:
    if path:
        with open(path, "a", encoding="ascii") as fh:
            fh.write(f"{pid}\n")


def accept_for(head: bytes) -> str:
    key = ""
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def upgrade(head: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept_for(head)}\r\n".encode()
        + extra
        + b"\r\n"
    )


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None


class Hostile:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.correct = Server(None)
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        mode = self.args.mode
        if mode == "crash-after" and self.connections >= self.args.n:
            os._exit(3)
        hostile_now = mode == "headers-nth" and self.connections >= self.args.n
        if mode in ("text", "flood", "huge-frame") or hostile_now:
            try:
                head = await read_request(reader)
                if head is not None:
                    await getattr(self, mode.replace("-", "_"))(head, reader, writer)
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()
            return
        await self.correct.handle(reader, writer)

    async def text(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """101 with hostile text everywhere the server chooses text, then a close with it as reason."""
        text = HOSTILE_BYTES
        writer.write(
            b"HTTP/1.1 101 Switching " + text + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept_for(head)}\r\n".encode()
            + b"Sec-WebSocket-Protocol: " + text + b"\r\nX-Hostile: " + text + b"\r\n"
            + b"X-[bold]" + text.replace(b":", b"") + b": value\r\n\r\n"
        )  # fmt: skip
        payload = (1000).to_bytes(2, "big") + HOSTILE.encode("utf-8")[:123]
        writer.write(bytes([0x88, len(payload)]) + payload)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    async def flood(self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Frames without end; the peer's own frames are never read (its close is never answered)."""
        frame = {
            "data": build_frame(Opcode.BINARY, os.urandom(64 * 1024)),
            "tiny": build_frame(Opcode.BINARY, b""),
            "ping": build_frame(Opcode.PING, b"p" * 125),
        }[self.args.frame]
        batch = frame * max(1, (256 * 1024) // len(frame))
        writer.write(upgrade(head))
        while True:
            writer.write(batch)
            await writer.drain()

    async def huge_frame(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A header declaring 2^31 payload bytes, then part of that payload, then silence."""
        writer.write(upgrade(head) + build_frame(Opcode.BINARY, b"", length=HUGE))
        chunk = os.urandom(1024 * 1024)
        for _ in range(HUGE_SENT // len(chunk)):
            writer.write(chunk)
            await writer.drain()
        await reader.read()  # until the peer gives up on us

    async def headers_nth(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A status line, then header lines for as long as the client reads them."""
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\n")
        line = b"X-Padding: " + b"a" * 1000 + b"\r\n"
        while True:
            writer.write(line * 64)
            await writer.drain()


def endless_output(mib: int | None) -> None:
    """``mib`` MiB (None: without end) to stdout and to stderr, alternating, as fast as the pipe takes."""
    block = (b"x" * 1023 + b"\n") * 1024
    n = 0
    while mib is None or n < mib:
        sys.stdout.buffer.write(block)
        sys.stderr.buffer.write(block)
        n += 1
    sys.stdout.buffer.flush()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="text")
    parser.add_argument("--frame", choices=("data", "tiny", "ping"), default="data")
    parser.add_argument("--n", type=int, default=3, help="crash-after, headers-nth: which connection")
    parser.add_argument("--delay", type=float, default=5.0, help="ready-late: seconds before listening")
    parser.add_argument("--output-mib", type=int, default=256)
    parser.add_argument("--pid-file")
    args = parser.parse_args()
    record_pid(args.pid_file, os.getpid())
    if args.mode == "never-ready":
        while True:
            await asyncio.sleep(3600)
    if args.mode == "ready-late":
        time.sleep(args.delay)
    if args.mode == "child-ignores-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", IGNORING_CHILD])
        record_pid(args.pid_file, child.pid)
    if args.mode == "endless-output":
        endless_output(args.output_mib)
    server = await asyncio.start_server(Hostile(args).handle, "127.0.0.1", args.port)
    print("ready", flush=True)
    if args.mode == "endless-output":
        threading.Thread(target=endless_output, args=(None,), daemon=True).start()
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
