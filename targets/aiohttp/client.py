"""wsconform client adapter for aiohttp (``ClientSession.ws_connect``).

The harness runs the peer as a server and starts this program once per case. It connects to the
given URL offering the given subprotocols, echoes every message with the same type, completes the
closing handshake, and reports what aiohttp's API saw as JSON lines on stdout. Contract
(docs/architecture.md): events ``open``, ``message``, ``error``, ``close``; exit 0 after ``close``;
exit 127 for an unsupported feature.

How aiohttp's API maps onto the events:

* ``ws_connect(url, protocols=..., autoping=True, autoclose=True, compress=0, max_msg_size=...)``:
  no permessage-deflate offer; aiohttp answers pings and a server Close itself (defaults, spelled
  out). A failed handshake raises ``WSServerHandshakeError`` (a ``ClientError``); a refused or dropped
  TCP connection raises another ``ClientError``/``OSError``: error, then close 1006.
* ``receive()`` returns TEXT/BINARY (echoed with ``send_str``/``send_bytes``, awaited before the next
  ``receive``), CLOSE (the server's Close frame: ``data`` is its code, ``extra`` its reason; aiohttp
  has already answered it), ERROR (aiohttp failed the connection: it sent a Close with 1002/1007/1009
  and dropped TCP without reading the server's answer), or CLOSED (TCP ended without a Close frame).
* A Close frame without a status code is delivered as CLOSE with ``data`` 0; reported as 1005.
* A TCP close without a Close frame is delivered as CLOSED, and aiohttp then sets ``close_code``
  to 1000 (EofStream) or 1006 (ClientError); neither is a received Close frame, so the adapter
  reports 1006, wasClean false, after an error event.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from typing import Any

import aiohttp
from aiohttp import WSMsgType

SAFETY_TIMEOUT = 30.0
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
NO_STATUS_RCVD = 1005
ABNORMAL_CLOSURE = 1006


_closed = False


def emit(event: str, **fields: Any) -> None:
    """Print one event; nothing after the close event (the safety timeout may race a late close)."""
    global _closed
    if _closed:
        return
    _closed = event == "close"
    print(json.dumps({"event": event, **fields}), flush=True)


def emit_message(kind: str, data: bytes) -> None:
    emit("message", type=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def fail(message: str) -> None:
    emit("error", message=message)
    emit("close", code=ABNORMAL_CLOSURE, reason="", wasClean=False)


def slow_reader_delay() -> float:
    """Seconds to sleep before handling each message: WSCONFORM_SCENARIO=slow-reader (a slow consumer,
    WSCONFORM_DELAY_MS per message); no scenario: 0; any other scenario is unsupported (exit 127).
    """
    scenario = os.environ.get("WSCONFORM_SCENARIO")
    if not scenario:
        return 0.0
    if scenario != "slow-reader":
        sys.exit(127)  # no other scenario (API-level calls) is implemented in this adapter
    return int(os.environ.get("WSCONFORM_DELAY_MS") or 0) / 1000


async def run(url: str, protocols: list[str], max_size: int, delay: float = 0.0) -> None:
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                url, protocols=protocols, autoping=True, autoclose=True, compress=0, max_msg_size=max_size
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            fail(f"{type(exc).__name__}: {exc}")
            return
        # aiohttp has no public accessor for the 101 response's headers; _response is the ClientResponse.
        emit(
            "open",
            protocol=ws.protocol or "",
            extensions=ws._response.headers.get("Sec-WebSocket-Extensions", ""),
        )
        error: str | None = None
        try:
            while True:
                msg = await ws.receive()
                if delay and msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await asyncio.sleep(delay)  # a slow consumer
                if msg.type is WSMsgType.TEXT:
                    emit_message("text", msg.data.encode("utf-8"))
                    await ws.send_str(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    emit_message("binary", msg.data)
                    await ws.send_bytes(msg.data)
                elif msg.type is WSMsgType.CLOSE:
                    # autoclose: aiohttp has already sent its Close answer (1000) inside receive().
                    code = msg.data or NO_STATUS_RCVD
                    emit("close", code=code, reason=msg.extra or "", wasClean=True)
                    return
                elif msg.type is WSMsgType.ERROR:
                    error = f"{type(msg.data).__name__}: {msg.data} (aiohttp close code {ws.close_code})"
                    break
                else:  # CLOSED / CLOSING: the TCP connection ended without a Close frame.
                    error = f"connection closed without a close frame (aiohttp close code {ws.close_code})"
                    break
        except (aiohttp.ClientError, OSError) as exc:  # sending the echo failed
            error = f"{type(exc).__name__}: {exc}"
        await ws.close()
        fail(error)


def main() -> None:
    delay = slow_reader_delay()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--url", required=True)
    ap.add_argument("--protocols", default="")
    ap.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE)
    args = ap.parse_args()
    protocols = [p for p in args.protocols.split(",") if p]
    try:
        asyncio.run(asyncio.wait_for(run(args.url, protocols, args.max_size, delay), SAFETY_TIMEOUT))
    except TimeoutError:
        fail(f"adapter safety timeout ({SAFETY_TIMEOUT:g} s)")
    sys.exit(0)


if __name__ == "__main__":
    main()
