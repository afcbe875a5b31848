"""A server whose every answer is hostile text: a subprotocol, a header and a close reason made of rich
markup, terminal escapes, NUL and HTML. It upgrades any request (101, correct Accept), selects that
"subprotocol" although nobody offered it, then closes with the same text as close reason. The cases
FAIL with reasons that quote it, which is what tests/test_text_hygiene.py needs: every output of a run
must show it without breaking (rich MarkupError) and without passing raw control characters on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib

HOSTILE = "[/] [bold]x[/bold] \x1b[31mred\x1b[0m \x00nul <script>alert(1)</script>"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        writer.close()
        return
    key = ""
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    text = HOSTILE.encode("utf-8")
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept}\r\n".encode()
        + b"Sec-WebSocket-Protocol: "
        + text
        + b"\r\nX-Hostile: "
        + text
        + b"\r\n\r\n"
    )
    payload = (1000).to_bytes(2, "big") + text[:123]
    writer.write(bytes([0x88, len(payload)]) + payload)
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = await asyncio.start_server(handle, "127.0.0.1", args.port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
