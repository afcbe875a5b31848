"""A small echo server built on wsconform's own codec, with one switchable defect at a time.

Without ``--defect`` it follows RFC 6455 closely enough to pass the server-role families; each defect
breaks exactly one rule, so the tests can prove that every family is able to fail, and fails with the
right reason. It is deliberately not built on a protocol library: those cannot be told to break rules.

    python tests/broken_server.py --port 9001 [--defect ignore-rsv]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.observed import close_code_valid
from harness.peer.compression import accept_offer
from harness.wire import deflate, extensions
from harness.wire import handshake as hs
from harness.wire.frames import FrameParser, Opcode, build_frame, close_payload, is_control
from harness.wire.utf8 import Utf8Validator
from tests.broken_robustness import DEFECTS as ROBUSTNESS_DEFECTS
from tests.broken_robustness import Fragments, list_is_valid, read_head, registry_has

DEFECTS = {
    "ignore-rsv": "accepts frames with RSV bits set (§5.2)",
    "accept-reserved-opcode": "ignores frames with reserved opcodes instead of failing (§5.2)",
    "accept-unmasked": "accepts unmasked client frames (§5.1)",
    "accept-long-ping": "answers pings with payloads over 125 bytes (§5.5)",
    "accept-fragmented-control": "accepts fragmented control frames (§5.5)",
    "no-pong": "never answers pings (§5.5.2)",
    "wrong-pong": "answers pings with an empty payload (§5.5.3)",
    "accept-orphan-continuation": "ignores a continuation frame with nothing to continue (§5.4)",
    "no-utf8-check": "echoes invalid UTF-8 text (§8.1)",
    "late-utf8-check": "validates UTF-8 only at the end of a message (fail-fast: §8.1)",
    "echo-bad-close-code": "echoes invalid close codes back instead of failing (§7.4)",
    "no-close-reply": "closes TCP without answering a close frame (§5.5.1)",
    "keep-tcp-open": "never closes TCP after the closing handshake (§5.5.1)",
    "corrupt-large": "flips one byte of echoes over 60 000 bytes (data corruption)",
    "drop-after-100": "stops echoing after 100 messages (data loss)",
    "mask-frames": "masks the frames it sends (§5.1: servers MUST NOT)",
    "wrong-accept": "answers with a wrong Sec-WebSocket-Accept value (§4.2.2)",
    "unoffered-subprotocol": "selects 'chat' even when the client did not offer it (§4.2.2)",
    "no-version-check": "accepts any Sec-WebSocket-Version (§4.2.2)",
    "version-400": "rejects unsupported versions with 400 and no Sec-WebSocket-Version header (§4.2.2)",
    "duplicate-accept": "sends the Sec-WebSocket-Accept header twice (§4.1)",
    "echo-extensions": "accepts every offered extension by echoing the offer (§4.2.2, §9.1)",
    "unbounded-queue": "reads everything into an unbounded queue before echoing (no backpressure)",
    "drop-under-load": "drops echoes while its send buffer is backed up (data loss under load)",
    "reorder-under-load": "swaps pairs of echoes while its send buffer is backed up (reordering)",
    "close-normally-on-error": "fails the connection with close 1000 instead of an error code (§7.1.7)",
    "refuse-big-and-reset": "refuses a message over 1 MiB with close 1009, then resets TCP unread",
    "exit-on-handshake": "the process exits (status 3) when it receives an opening request",
    **ROBUSTNESS_DEFECTS,
    # permessage-deflate (with --deflate, which every deflate-* defect implies)
    "deflate-rsv1-continuation": "accepts RSV1 on continuation frames (RFC 7692 §6.1)",
    "deflate-rsv1-control": "accepts RSV1 on control frames (RFC 7692 §6.1)",
    "deflate-keep-context": "keeps its context although server_no_context_takeover was agreed (§7.1.1.1)",
    "deflate-wide-window": "compresses with a 32 KiB window whatever server_max_window_bits says (§7.1.2.1)",
    "deflate-control-breaks-message": "a control frame between compressed fragments drops the message (§6.1)",
    "deflate-inflate-unnegotiated": "inflates RSV1 messages although nothing was negotiated (RFC 6455 §5.2)",
    "deflate-limit-on-compressed": "checks its 64 MiB limit on the compressed size, not the inflated (§8.1)",
}
RESET_LIMIT = 1 << 20

SUBPROTOCOLS = ["chat", "superchat"]

MAX_MESSAGE = 64 * 1024 * 1024


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except ValueError:
        return False


class LoadDefect:
    """How echoes leave under load: directly (correct), or through one of the load defects.

    The correct server drains after each read, so a peer that stops reading stops it reading too
    (backpressure). ``unbounded-queue`` reads on regardless and queues every echo in memory;
    ``drop-under-load`` drops echoes while the send buffer is backed up; ``reorder-under-load``
    swaps pairs of echoes while it is backed up.
    """

    def __init__(self, defect: str | None, writer: asyncio.StreamWriter) -> None:
        self.defect = defect
        self.writer = writer
        self.reads_ahead = defect in ("unbounded-queue", "drop-under-load")
        self.backlog: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()  # no maxsize: the defect
        self.held: list[tuple[int, bytes]] = []
        self.task = asyncio.ensure_future(self._drain_backlog()) if defect == "unbounded-queue" else None

    def _send(self, op: int, payload: bytes) -> None:
        self.writer.write(build_frame(op, payload))

    def echo(self, op: int, payload: bytes) -> None:
        backed_up = self.writer.transport.get_write_buffer_size() > 0
        if self.defect == "unbounded-queue":
            self.backlog.put_nowait((op, payload))
        elif self.defect == "drop-under-load" and backed_up:
            return
        elif self.defect == "reorder-under-load" and (self.held or backed_up):
            self.held.append((op, payload))
            if len(self.held) == 2:
                for later in reversed(self.held):
                    self._send(*later)
                self.held.clear()
        else:
            self._send(op, payload)

    async def _drain_backlog(self) -> None:
        while True:
            op, payload = await self.backlog.get()
            self._send(op, payload)
            await self.writer.drain()
            self.backlog.task_done()

    async def flush(self) -> None:
        """Before answering a close: the queued echoes go first."""
        for op, payload in self.held:
            self._send(op, payload)
        self.held.clear()
        if self.task is not None:
            await self.backlog.join()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


class _Deflate:
    """The server's permessage-deflate codecs (the harness's own, correct unless a defect says)."""

    def __init__(self, params: deflate.DeflateParams, defect: str | None) -> None:
        ours = params.sent_by("server")
        self.compressor = deflate.Compressor(
            ours,
            window_bits=15 if defect == "deflate-wide-window" else None,
            context_takeover=True if defect == "deflate-keep-context" else None,
        )
        bound = 4 * 1024 * MAX_MESSAGE if defect == "deflate-limit-on-compressed" else MAX_MESSAGE
        self.decompressor = deflate.Decompressor(params.sent_by("client"), max_output=bound)

    def inflate(self, payload: bytes) -> bytes | int:
        """The message, or the close code that refuses it (1009 too big, 1007 not DEFLATE)."""
        try:
            return self.decompressor.inflate(payload).data
        except deflate.DeflateError as exc:
            return 1009 if exc.rule == deflate.TOO_LARGE else 1007

    def echo(self, opcode: int, message: bytes) -> bytes:
        return build_frame(opcode, self.compressor.compress(message), rsv=4)


class Server:
    def __init__(
        self,
        defect: str | None,
        max_message: int = MAX_MESSAGE,
        max_fields: int = 1000,
        deflate_on: bool = False,
    ) -> None:
        self.defect = defect
        self.max_message = max_message
        self.max_fields = max_fields
        self.deflate_on = deflate_on or (defect or "").startswith("deflate-")
        self._agreed: deflate.DeflateParams | None = None  # set by _handshake, read right after it

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader, writer, self.defect, self.max_fields)
        if head is None:
            return
        if self.defect == "exit-on-handshake":
            os._exit(3)
        if not self._handshake(hs.parse_head(head), writer):
            await writer.drain()
            return
        agreed, self._agreed = self._agreed, None
        lenient = self.defect == "deflate-inflate-unnegotiated"
        parser = FrameParser(
            expect_masked=self.defect != "accept-unmasked", rsv_allowed=4 if agreed or lenient else 0
        )
        pmd = _Deflate(agreed or deflate.DeflateParams(), self.defect) if agreed or lenient else None
        compressed = False
        message: bytearray | None = None
        opcode = 0
        utf8: Utf8Validator | None = None
        echoed = 0
        d = self.defect
        load = LoadDefect(d, writer)
        fragments = Fragments(d)

        def send(op: int, payload: bytes = b"") -> None:
            writer.write(build_frame(op, payload, mask=d == "mask-frames"))

        async def fail(code: int) -> None:
            send(Opcode.CLOSE, close_payload(1000 if d == "close-normally-on-error" else code))
            await writer.drain()
            writer.close()

        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                frames = parser.feed(data)
                if d == "refuse-big-and-reset" and parser.buffered > RESET_LIMIT:
                    send(Opcode.CLOSE, close_payload(1009))
                    await writer.drain()
                    writer.transport.abort()  # unread data in the kernel: the peer gets a reset
                    return
                for frame in frames:
                    v = set(frame.violations)
                    if d == "ignore-rsv":
                        v.discard("rsv-without-extension")
                    if "masked-by-server" in v:
                        v.discard("masked-by-server")
                    if d == "accept-long-ping":
                        v.discard("control-frame-too-long")
                    if d == "accept-fragmented-control":
                        v.discard("fragmented-control-frame")
                    if "reserved-opcode" in v and d == "accept-reserved-opcode":
                        continue
                    if v & {
                        "unmasked-by-client",
                        "rsv-without-extension",
                        "reserved-opcode",
                        "control-frame-too-long",
                        "fragmented-control-frame",
                        "length-msb-set",
                    }:
                        return await fail(1002)
                    if pmd is not None and frame.rsv & 4:
                        if is_control(frame.opcode) and d != "deflate-rsv1-control":
                            return await fail(1002)
                        if frame.opcode == Opcode.CONTINUATION and d != "deflate-rsv1-continuation":
                            return await fail(1002)
                    breaks = d == "deflate-control-breaks-message"
                    if breaks and is_control(frame.opcode) and message is not None and compressed:
                        message = None
                    if frame.opcode == Opcode.PING:
                        if d != "no-pong":
                            send(Opcode.PONG, b"" if d == "wrong-pong" else frame.payload)
                    elif frame.opcode == Opcode.PONG:
                        pass
                    elif frame.opcode == Opcode.CLOSE:
                        await load.flush()
                        return await self._close(frame.payload, send, writer, reader)
                    elif not is_control(frame.opcode):
                        if frame.opcode == Opcode.CONTINUATION:
                            if message is None:
                                if d == "accept-orphan-continuation":
                                    continue
                                return await fail(1002)
                        else:
                            if message is not None:
                                return await fail(1002)
                            message, opcode = bytearray(), frame.opcode
                            compressed = pmd is not None and bool(frame.rsv & 4)
                            utf8 = Utf8Validator() if opcode == Opcode.TEXT and d != "no-utf8-check" else None
                        message += frame.payload
                        fragments.add(frame.payload)
                        if compressed:
                            if not frame.fin:
                                continue
                            assert pmd is not None
                            plain = pmd.inflate(bytes(message))
                            message = None
                            if isinstance(plain, int):
                                return await fail(plain)
                            if utf8 is not None and not utf8.feed(plain, final=True):
                                return await fail(1007)
                            writer.write(pmd.echo(opcode, plain))
                            continue
                        if len(message) > self.max_message:
                            return await fail(1009)
                        if (
                            utf8 is not None
                            and d != "late-utf8-check"
                            and not utf8.feed(frame.payload, final=frame.fin)
                        ):
                            return await fail(1007)
                        if frame.fin:
                            if (
                                utf8 is not None
                                and d == "late-utf8-check"
                                and not utf8.feed(bytes(message), final=True)
                            ):
                                return await fail(1007)
                            payload = bytes(message)
                            message = None
                            fragments.clear()
                            if d == "corrupt-large" and len(payload) > 60000:
                                payload = payload[:100] + bytes([payload[100] ^ 1]) + payload[101:]
                            echoed += 1
                            if not (d == "drop-after-100" and echoed > 100):
                                load.echo(opcode, payload)
                if not load.reads_ahead:
                    await writer.drain()  # backpressure: read no more until the echoes are out
        finally:
            load.stop()

    def _handshake(self, request: hs.HttpHead, writer: asyncio.StreamWriter) -> bool:
        """A strict server handshake (§4.2.1, §4.2.2) unless a defect says otherwise."""
        d = self.defect
        key = request.get("Sec-WebSocket-Key") or ""
        parts = request.start_line.split(" ")
        versions = request.get_all("Sec-WebSocket-Version")
        bad_request = (
            len(parts) != 3
            or parts[0] != "GET"
            or parts[2] != "HTTP/1.1"
            or not request.get("Host")
            or "websocket" not in request.tokens("Upgrade")
            or "upgrade" not in request.tokens("Connection")
            or len(request.get_all("Sec-WebSocket-Key")) != 1
            or not _valid_key(key)
        )
        if bad_request:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return False
        if versions != ["13"] and d != "no-version-check":
            if d == "version-400":
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            else:
                writer.write(
                    b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
                )
            return False
        lists = request.get_all("Sec-WebSocket-Protocol") + request.get_all("Sec-WebSocket-Extensions")
        if not all(list_is_valid(v, d) for v in lists):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return False
        offered = [
            t.strip() for v in request.get_all("Sec-WebSocket-Protocol") for t in v.split(",") if t.strip()
        ]
        chosen = next((p for p in offered if registry_has(SUBPROTOCOLS, p, d)), None)
        if d == "unoffered-subprotocol":
            chosen = "chat"
        accept = hs.accept_value(key) if d != "wrong-accept" else hs.accept_value(key + "x")
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {accept}",
        ]
        if d == "duplicate-accept":
            lines.append(f"Sec-WebSocket-Accept: {accept}")
        if chosen:
            lines.append(f"Sec-WebSocket-Protocol: {chosen}")
        offers = request.get_all("Sec-WebSocket-Extensions")
        if d == "echo-extensions" and offers:
            lines.append(f"Sec-WebSocket-Extensions: {offers[0]}")
        elif self.deflate_on and offers:
            answer = accept_offer(offers)
            if answer is not None:
                lines.append(f"Sec-WebSocket-Extensions: {answer}")
                self._agreed = deflate.DeflateParams.from_response(extensions.parse([answer])[0])
        else:
            names = [e.split(";")[0].strip() for v in offers for e in v.split(",")]
            known = [n for n in dict.fromkeys(names) if n and registry_has([], n, d)]
            if known:  # no extension is registered: only the object-registry defect finds one
                lines.append(f"Sec-WebSocket-Extensions: {', '.join(known)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        return True

    async def _close(
        self, body: bytes, send, writer: asyncio.StreamWriter, reader: asyncio.StreamReader
    ) -> None:  # type: ignore[no-untyped-def]
        d = self.defect
        code = int.from_bytes(body[:2], "big") if len(body) >= 2 else None
        bad = len(body) == 1 or (code is not None and not close_code_valid(code))
        if code is not None and not bad:
            try:
                body[2:].decode("utf-8")
            except UnicodeDecodeError:
                send(Opcode.CLOSE, close_payload(1007))
                await writer.drain()
                return
        if bad and d != "echo-bad-close-code":
            send(Opcode.CLOSE, close_payload(1000 if d == "close-normally-on-error" else 1002))
        elif d != "no-close-reply":
            send(Opcode.CLOSE, body[:2])
        await writer.drain()
        if d == "keep-tcp-open":
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader.read(), 30)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--defect", choices=sorted(DEFECTS))
    ap.add_argument("--max-size", type=int, default=MAX_MESSAGE, help="close 1009 beyond")
    ap.add_argument("--max-fields", type=int, default=1000, help="crash-above-n-fields: the N")
    ap.add_argument("--deflate", action="store_true", help="accept permessage-deflate offers")
    args = ap.parse_args()
    server = await asyncio.start_server(
        Server(args.defect, args.max_size, args.max_fields, args.deflate).handle, "127.0.0.1", args.port
    )
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
