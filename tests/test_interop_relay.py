"""The interop relay can fail, and blames the right side with the rule id.

Each defect is played by a deliberately broken raw peer (our own frames, ``harness.wire``) against a
correct one (the websockets library), through the relay, and judged by ``verdict.interop``: a broken
client against a good server, a good client against a broken server. The defect-free pair PASSes,
so every FAIL below is the defect's. Also: the relay forwards exactly the bytes it reads, chops
kept, and adds a bounded delay. No target processes: about 3 s on one core.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import time
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from harness.interop.relay import Relay
from harness.model.interop import Scenario
from harness.observed_pair import PairSeen
from harness.outcome import Outcome
from harness.verdict.interop import PairVerdict, judge_pair
from harness.wire.frames import FrameParser, Opcode, build_frame, close_payload
from harness.wire.handshake import accept_value, find_head_end, new_key, parse_head

T = 10.0
HELLO = {"type": "text", "size": 5, "unit": "hello"}


def scenario(**extra: Any) -> Scenario:
    return Scenario.model_validate(
        {
            "id": "t",
            "letter": "T",
            "title": "t",
            "description": "t",
            "spec": "RFC 6455",
            "messages": [HELLO],
            **extra,
        }
    )


# -- the correct sides ---------------------------------------------------------------------------------


async def good_handler(ws: ServerConnection) -> None:
    async for message in ws:
        if isinstance(message, str) and message.startswith("wsconform:close "):
            _, code, reason = [*message.split(" ", 2), ""][:3]
            await ws.close(int(code), reason)
            return
        await ws.send(message)


async def good_client(url: str, sc: Scenario) -> list[dict[str, Any]]:
    """What a client adapter reports (adapter-protocol §2.2), played with websockets."""
    events: list[dict[str, Any]] = []
    async with connect(url, subprotocols=sc.protocols or None, compression=None, open_timeout=T) as ws:  # type: ignore[arg-type]
        events.append({"event": "open", "protocol": ws.subprotocol or "", "extensions": ""})
        for m in sc.messages:
            payload = m.payload()
            await ws.send(payload.decode() if m.type == "text" else payload)
            echo = await asyncio.wait_for(ws.recv(), T)
            raw = echo.encode() if isinstance(echo, str) else echo
            kind = "text" if isinstance(echo, str) else "binary"
            events.append(
                {
                    "event": "message",
                    "type": kind,
                    "size": len(raw),
                    "sha256": hashlib.sha256(raw).hexdigest(),
                }
            )
        if sc.close.by == "server":
            await ws.send(f"wsconform:close {sc.close.code} {sc.close.reason}")
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), T)
        else:
            await ws.close(sc.close.code, sc.close.reason)
    rcvd = ws.protocol.close_rcvd
    code, reason = (rcvd.code, rcvd.reason) if rcvd else (1006, "")
    events.append({"event": "close", "code": code, "reason": reason,
                   "wasClean": rcvd is not None and ws.protocol.close_sent is not None})  # fmt: skip
    return events


# -- the broken sides (raw frames) ---------------------------------------------------------------------


async def _read_frames(reader: asyncio.StreamReader, parser: FrameParser, want: int) -> list[Any]:
    frames: list[Any] = []
    while len(frames) < want:
        data = await asyncio.wait_for(reader.read(65536), T)
        if not data:
            break
        frames += parser.feed(data)
    return frames


async def broken_client(url: str, sc: Scenario, defect: str) -> list[dict[str, Any]]:
    port = int(url.split(":")[2].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = new_key()
    writer.write(
        f"GET /t HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    buf = b""
    while find_head_end(buf) < 0:
        buf += await asyncio.wait_for(reader.read(4096), T)
    end = find_head_end(buf)
    parser = FrameParser(expect_masked=False)
    pending = parser.feed(buf[end:])
    payload = b"hello" if defect != "invalid-utf8" else b"hel\xc0\xaf"
    writer.write(build_frame(Opcode.TEXT, payload, mask=defect != "unmasked"))
    frames = pending + await _read_frames(reader, parser, 1)
    echo = frames[0].payload if frames else b""
    events: list[dict[str, Any]] = [
        {"event": "open", "protocol": "", "extensions": ""},
        {"event": "message", "type": "text", "size": len(echo), "sha256": hashlib.sha256(echo).hexdigest()},
    ]
    writer.write(
        build_frame(Opcode.TEXT, f"wsconform:close {sc.close.code} {sc.close.reason}".encode(), mask=True)
    )
    await _read_frames(reader, parser, 1)  # the server's close
    if defect != "no-close-reply":
        writer.write(
            build_frame(Opcode.CLOSE, close_payload(sc.close.code, sc.close.reason.encode()), mask=True)
        )
    writer.close()
    code = 1000 if defect == "wrong-close-code" else sc.close.code
    events.append({"event": "close", "code": code, "reason": sc.close.reason, "wasClean": True})
    return events


def broken_server(defect: str) -> Any:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        while find_head_end(buf) < 0:
            chunk = await asyncio.wait_for(reader.read(4096), T)
            if not chunk:
                return
            buf += chunk
        request = parse_head(buf[: find_head_end(buf)])
        key = request.get("Sec-WebSocket-Key") or ""
        accept = accept_value(key + ("x" if defect == "bad-accept" else ""))
        extra = "Sec-WebSocket-Protocol: never-offered\r\n" if defect == "unoffered-subprotocol" else ""
        writer.write(
            f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n".encode()
        )
        parser = FrameParser(expect_masked=True)
        pending = parser.feed(buf[find_head_end(buf) :])
        while True:
            frames = pending or await _read_frames(reader, parser, 1)
            pending = []
            if not frames:
                break
            for f in frames:
                if f.opcode == Opcode.CLOSE:
                    if defect != "no-close-reply":
                        writer.write(build_frame(Opcode.CLOSE, f.payload))
                    writer.close()
                    return
                payload = b"hel\xc0\xaf" if defect == "invalid-utf8" else f.payload
                writer.write(build_frame(f.opcode, payload, mask=defect == "masked"))
        writer.close()

    return handle


def _first_chat(ws: ServerConnection, offered: Any) -> Any:
    return "chat" if "chat" in offered else None


# -- running a pair ------------------------------------------------------------------------------------


async def _pair(
    sc: Scenario, *, client_defect: str | None = None, server_defect: str | None = None
) -> tuple[PairVerdict, PairSeen]:
    if server_defect is None:
        server_cm: Any = serve(good_handler, "127.0.0.1", 0, compression=None, select_subprotocol=_first_chat)
    else:
        server_cm = await asyncio.start_server(broken_server(server_defect), "127.0.0.1", 0)
    async with server_cm as server:
        port = server.sockets[0].getsockname()[1]
        async with Relay("127.0.0.1", port) as relay:
            url = relay.url("t")
            try:
                if client_defect is None:
                    events = await good_client(url, sc)
                else:
                    events = await broken_client(url, sc, client_defect)
            except Exception as exc:  # a good client that gives up on a broken server
                events = [{"event": "error"}, {"event": "exception", "name": type(exc).__name__}]
            finished = await relay.wait_done(T)
    return judge_pair(sc, relay.pair, events, 0, server_subprotocols=["chat"], finished=finished), relay.pair


def run(sc: Scenario, **kw: Any) -> tuple[PairVerdict, PairSeen]:
    return asyncio.run(_pair(sc, **kw))


def test_good_pair_passes() -> None:
    for sc in (scenario(), scenario(close={"by": "server", "code": 4001, "reason": "bye"}),
               scenario(close={"by": "client", "code": 4000, "reason": "client bye"}),
               scenario(protocols=["x", "chat"], expect={"protocol": "first-supported"})):  # fmt: skip
        verdict, pair = run(sc)
        assert verdict.outcome == Outcome.PASS, verdict
        assert pair.findings.count == 0


CLIENT_DEFECTS = [
    ("unmasked", "unmasked-by-client"),
    ("invalid-utf8", "invalid-utf8"),
    ("no-close-reply", "close-no-reply"),
    ("wrong-close-code", "api-close-reported"),
]


@pytest.mark.parametrize(("defect", "rule"), CLIENT_DEFECTS)
def test_broken_client_is_blamed(defect: str, rule: str) -> None:
    sc = scenario(close={"by": "server", "code": 4001, "reason": "bye"})
    verdict, _ = run(sc, client_defect=defect)
    assert (verdict.outcome, verdict.side, verdict.rule) == (Outcome.FAIL, "client", rule), verdict


def test_broken_client_defect_free_run_passes() -> None:
    """The raw client without a defect passes: the failures above are the defects'."""
    verdict, _ = run(scenario(close={"by": "server", "code": 4001, "reason": "bye"}), client_defect="none")
    assert verdict.outcome == Outcome.PASS, verdict


SERVER_DEFECTS = [
    ("masked", "masked-by-server", {}),
    ("bad-accept", "response-accept", {}),
    ("unoffered-subprotocol", "response-protocol-not-offered", {"protocols": ["chat"]}),
    ("invalid-utf8", "invalid-utf8", {}),
    ("no-close-reply", "close-no-reply", {"close": {"by": "client", "code": 4000, "reason": "x"}}),
]


@pytest.mark.parametrize(("defect", "rule", "extra"), SERVER_DEFECTS)
def test_broken_server_is_blamed(defect: str, rule: str, extra: dict[str, Any]) -> None:
    verdict, _ = run(scenario(**extra), server_defect=defect)
    assert (verdict.outcome, verdict.side, verdict.rule) == (Outcome.FAIL, "server", rule), verdict


def test_broken_server_defect_free_run_passes() -> None:
    verdict, _ = run(scenario(close={"by": "client", "code": 4000, "reason": "x"}), server_defect="none")
    assert verdict.outcome == Outcome.PASS, verdict


# -- the relay adds nothing ----------------------------------------------------------------------------


async def _transparency() -> tuple[bytes, bytes, list[float]]:
    received = bytearray()
    got = asyncio.Event()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            received.extend(data)
            got.set()
            writer.write(data)  # echo every read back at once
            await writer.drain()
        writer.close()

    sent = bytearray()
    delays: list[float] = []
    server = await asyncio.start_server(sink, "127.0.0.1", 0)
    async with server, Relay("127.0.0.1", server.sockets[0].getsockname()[1]) as relay:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        back = bytearray()
        for i in range(50):  # chops of odd sizes, not a valid WebSocket stream: the relay must not care
            chunk = bytes((i * 7 + j) % 256 for j in range(1 + i * 13))
            start = time.monotonic()
            writer.write(chunk)
            sent.extend(chunk)
            while len(back) < len(sent):
                back.extend(await asyncio.wait_for(reader.read(65536), T))
            delays.append(time.monotonic() - start)
        writer.close()
        await relay.wait_done(T)
    return bytes(sent), bytes(received), delays


def test_relay_forwards_bytes_unchanged_with_bounded_delay() -> None:
    sent, received, delays = asyncio.run(_transparency())
    assert received == sent  # no byte added, removed or changed
    # A round trip through the relay twice (there and back) on loopback: milliseconds. The bound is
    # generous for a loaded 2-core machine; a relay that buffered or slept would exceed it.
    assert statistics.median(delays) < 0.05, delays
