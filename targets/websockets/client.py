"""wsconform client adapter for the `websockets` library (asyncio client).

The harness runs the peer as a server and starts this program once per case. It connects to the
given URL offering the given subprotocols, echoes every message with the same type, completes the
closing handshake, and reports what the library's API saw as JSON lines on stdout, so the harness can
judge the API (which close code and reason did the application see? was an error reported before the
close?) and not only the bytes. Contract (docs/architecture.md): events `open`, `message`, `error`,
`close`; exit 0 after `close`; exit 127 for an unsupported feature.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

SAFETY_TIMEOUT = 30.0


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


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
    try:
        ws = await connect(
            url,
            subprotocols=[Subprotocol(p) for p in protocols] or None,
            compression=None,
            max_size=max_size,
            ping_interval=None,
            open_timeout=10,
        )
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        emit("close", code=1006, reason="", wasClean=False)
        return
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
    emit("open", protocol=ws.subprotocol or "", extensions=extensions)
    try:
        async for message in ws:
            if delay:
                await asyncio.sleep(delay)  # a slow consumer: the library's queue fills, then the socket
            data = message.encode() if isinstance(message, str) else message
            emit(
                "message",
                type="text" if isinstance(message, str) else "binary",
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )
            await ws.send(message)
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    clean = received is not None and ws.protocol.close_sent is not None
    if not clean:
        emit("error", message=f"connection closed abnormally: {ws.close_reason or 'no close frame'}")
    code = received.code if received is not None else 1006
    emit("close", code=code, reason=received.reason if received is not None else "", wasClean=clean)


def main() -> None:
    delay = slow_reader_delay()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--url", required=True)
    ap.add_argument("--protocols", default="")
    ap.add_argument("--max-size", type=int, default=64 * 1024 * 1024)
    args = ap.parse_args()
    protocols = [p for p in args.protocols.split(",") if p]
    try:
        asyncio.run(asyncio.wait_for(run(args.url, protocols, args.max_size, delay), SAFETY_TIMEOUT))
    except TimeoutError:
        emit("error", message=f"adapter safety timeout ({SAFETY_TIMEOUT:g} s)")
        emit("close", code=1006, reason="", wasClean=False)
    sys.exit(0)


if __name__ == "__main__":
    main()
