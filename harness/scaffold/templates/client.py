"""wsconform client adapter for $name: started once per case, it connects to the harness's peer.

The contract (docs/targets.md): connect to --url offering the subprotocols in --protocols, echo every
message with its own type, complete the closing handshake, and print what the API reported as JSON
lines on stdout, nothing else (logs go to stderr):

  {"event": "open", "protocol": "...", "extensions": "..."}
  {"event": "message", "type": "text"|"binary", "size": N, "sha256": "<hex>"}
  {"event": "error", "message": "..."}
  {"event": "close", "code": N, "reason": "...", "wasClean": true|false}
  {"event": "exception", "name": "InvalidAccessError", "during": "close(999)"}

Exit 0 after the close event; exit 127 for a scenario (WSCONFORM_SCENARIO) the adapter does not
implement, which grades the case UNIMPLEMENTED instead of FAIL.

This skeleton is a working adapter for the `websockets` library; replace `run` with your library's
client, keeping the events, the exit statuses and the safety timeout.
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

SAFETY_TIMEOUT = 30.0  # never outlive a case: the harness waits for the exit


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def run(url: str, protocols: list[str]) -> None:
    try:
        ws = await connect(url, subprotocols=[Subprotocol(p) for p in protocols] or None,
                           compression=None, ping_interval=None, open_timeout=10)  # fmt: skip
    except (InvalidHandshake, OSError, TimeoutError) as exc:
        emit("error", message=f"{type(exc).__name__}: {exc}")
        emit("close", code=1006, reason="", wasClean=False)
        return
    extensions = ws.response.headers.get("Sec-WebSocket-Extensions", "") if ws.response else ""
    emit("open", protocol=ws.subprotocol or "", extensions=extensions)
    try:
        async for message in ws:
            data = message.encode() if isinstance(message, str) else message
            emit("message", type="text" if isinstance(message, str) else "binary", size=len(data),
                 sha256=hashlib.sha256(data).hexdigest())  # fmt: skip
            await ws.send(message)
    except ConnectionClosed:
        pass
    received = ws.protocol.close_rcvd
    clean = received is not None and ws.protocol.close_sent is not None
    if not clean:
        emit("error", message="connection closed abnormally")
    emit("close", code=received.code if received else 1006, reason=received.reason if received else "",
         wasClean=clean)  # fmt: skip


def main() -> None:
    if os.environ.get("WSCONFORM_SCENARIO"):
        sys.exit(127)  # no API scenario (close(999), slow-reader...) implemented yet: UNIMPLEMENTED
    parser = argparse.ArgumentParser(description="$name client adapter for wsconform")
    parser.add_argument("--url", required=True)
    parser.add_argument("--protocols", default="")
    args = parser.parse_args()
    protocols = [p for p in args.protocols.split(",") if p]
    try:
        asyncio.run(asyncio.wait_for(run(args.url, protocols), SAFETY_TIMEOUT))
    except TimeoutError:
        emit("error", message=f"adapter safety timeout ({SAFETY_TIMEOUT:g} s)")
        emit("close", code=1006, reason="", wasClean=False)
    sys.exit(0)


if __name__ == "__main__":
    main()
