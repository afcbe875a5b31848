"""Client adapters that attack the harness through their stdout: one ``--mode`` each.

A client target reports its API events as JSON lines, which makes its stdout a second channel a
hostile implementation controls besides the wire. Each mode plays the case correctly on the wire
(tests/broken_client.py without a defect) and abuses the event channel in one way:

    text          every event carries rich markup, terminal escapes, NUL, C1 and HTML in a field, one
                  event's name is that text, the close event reports it as the reason (so the case
                  FAILs with it in the reason), and stderr (the target's log) gets it raw
    event-flood   from the start, a thread prints ``message`` events of about ``--event-kib`` KiB
                  each as fast as the pipe takes them, and never stops: the adapter never exits
    endless-line  after ``open``, one line without end: ``--line-mib`` MiB without a newline, then the
                  adapter exits without reporting ``close``
    endless-request  no event abuse, but on the wire: a request line, then header lines without end
                  (no handshake ever completes), then ``error`` and ``close`` as a failed connection
    never-connects   reports a failed connection and exits without ever connecting

``--pid-file`` gets the adapter's pid, so a test can prove it did not outlive its case.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import broken_client
from tests.hostile_server import HOSTILE

MODES = ("text", "event-flood", "endless-line", "endless-request", "never-connects")
_lock = threading.Lock()


def write_line(data: bytes) -> None:
    with _lock:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def text_emit(event: str, **fields: Any) -> None:
    """The adapter's events with hostile text in them (the close reason replaced by it)."""
    if event == "close":
        fields["reason"] = HOSTILE
    line = json.dumps({"event": event, **fields, "note": HOSTILE}, ensure_ascii=False)
    write_line(line.encode("utf-8") + b"\n")


def flood_emit(event: str, **fields: Any) -> None:
    write_line(json.dumps({"event": event, **fields}).encode() + b"\n")


def flood_events(kib: int) -> None:
    """Bogus ``message`` events as fast as the pipe takes them, each about ``kib`` KiB long."""
    junk = "j" * (kib * 1024)
    n = 0
    while True:
        n += 1
        flood_emit("message", type="text", size=n, sha256="0" * 64, junk=junk)


def endless_line_emit(mib: int) -> Any:
    def emit(event: str, **fields: Any) -> None:
        if event == "close":
            sys.stdout.buffer.flush()
            os._exit(0)  # the endless line was the last thing on stdout
        flood_emit(event, **fields)
        if event == "open":
            block = b"x" * (1024 * 1024)
            for _ in range(mib):
                write_line(block)

    return emit


async def endless_request(url: str) -> None:
    """Header lines for as long as the server reads them; the server must give up on us."""
    parts = urlsplit(url)
    _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode())
    line = b"X-Padding: " + b"a" * 1000 + b"\r\n"
    with contextlib.suppress(OSError):
        while True:
            writer.write(line * 64)
            await asyncio.wait_for(writer.drain(), 20)
    broken_client.fail(message="the server closed the connection")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--protocols", default="")
    ap.add_argument("--mode", choices=MODES, default="text")
    ap.add_argument("--event-kib", type=int, default=48)
    ap.add_argument("--line-mib", type=int, default=256)
    ap.add_argument("--pid-file")
    args = ap.parse_args()
    if args.pid_file:
        with open(args.pid_file, "a", encoding="ascii") as fh:
            fh.write(f"{os.getpid()}\n")
    protocols = [p for p in args.protocols.split(",") if p]
    if args.mode == "text":
        sys.stderr.write(f"stderr: {HOSTILE}\n")
        sys.stderr.flush()
        text_emit(HOSTILE)  # an event whose name is the hostile text
        broken_client.emit = text_emit
    elif args.mode == "event-flood":
        broken_client.emit = flood_emit
        threading.Thread(target=flood_events, args=(args.event_kib,), daemon=True).start()
    elif args.mode == "endless-line":
        broken_client.emit = endless_line_emit(args.line_mib)
    elif args.mode == "never-connects":
        broken_client.fail(message="not even trying")
        return
    else:
        asyncio.run(endless_request(args.url))
        return
    try:
        asyncio.run(asyncio.wait_for(broken_client.run(args.url, protocols, None, ""), 30))
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
        broken_client.fail(message=repr(exc))
    if args.mode == "event-flood":
        threading.Event().wait()  # the flood goes on; the harness must kill us


if __name__ == "__main__":
    main()
