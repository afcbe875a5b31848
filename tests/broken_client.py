"""A small client adapter built on wsconform's own codec, with one switchable defect at a time.

It honours the client adapter contract (JSON events on stdout) and, without ``--defect``, checks the
server's handshake and frames as RFC 6455 §4.1 and §5 require; each defect breaks exactly one rule,
so the tests can prove that the client-role cases catch it, by name.

    python tests/broken_client.py --url ws://127.0.0.1:PORT/x [--protocols a,b] [--defect accept-wrong-accept]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.observed import close_code_valid
from harness.peer.compression import DeflateSession, session_from_response
from harness.wire import extensions as ext
from harness.wire import handshake as hs
from harness.wire.deflate import Compressor, DeflateError, DeflateParams
from harness.wire.frames import FrameParser, Opcode, build_frame, close_payload
from harness.wire.utf8 import Utf8Validator
from tests.broken_robustness import list_is_valid

DEFECTS = {
    "accept-wrong-accept": "does not check Sec-WebSocket-Accept (§4.1)",
    "accept-unoffered-protocol": "accepts a subprotocol it did not offer (§4.1)",
    "no-mask": "sends unmasked frames (§5.1: a client MUST mask)",
    "accept-masked": "accepts masked frames from the server (§5.1)",
    "report-1000-on-abnormal": "reports close 1000, clean, when TCP drops without a close frame (§7.1.5)",
    "api-close-no-throw": "close(999) sends a close frame with 999 instead of throwing InvalidAccessError",
    "accept-invalid-utf8": "does not validate UTF-8 in text messages (§8.1)",
    "accept-orphan-continuation": "accepts a continuation frame with no message in progress (§5.4)",
    "empty-pong": "answers a ping with an empty pong instead of the same payload (§5.5.3)",
    "echo-invalid-close-code": "echoes an invalid close code instead of failing with 1002 (§7.4)",
    "drop-when-slow": "a slow consumer (slow-reader) that skips every other message to keep up (data loss)",
    "close-normally-on-error": "fails the connection with close 1000, not an error code (§7.1.7)",
    "send-after-close": "sends a text frame after its close reply (§5.5.1: no data after a Close frame)",
    "constant-mask-key": "masks every frame with the same key (§5.3: a fresh key per frame)",
    "zero-mask-key": "masks every frame with the key 00 00 00 00 (§5.3: unpredictable keys)",
    "fixed-key": "sends the same Sec-WebSocket-Key on every connection (§4.1: randomly selected)",
    "sample-key": "sends RFC 6455's sample nonce as Sec-WebSocket-Key (§4.1: randomly selected)",
    "api-no-throw-silent": "close(999) neither throws nor sends anything (a WHATWG API rule only)",
    "backtracking-response-parser": "parses the 101's Protocol/Extensions values with an exponential regex",
    # permessage-deflate (RFC 7692): the reference client offers it and honours the agreement
    "deflate-rsv1-on-control": "accepts RSV1 on a control frame (RFC 7692 §6.1)",
    "deflate-rsv1-on-continuation": "accepts RSV1 on a non-first fragment (RFC 7692 §6.1)",
    "deflate-rsv1-unnegotiated": "inflates RSV1 messages although nothing was agreed (RFC 6455 §5.2)",
    "deflate-ignore-corrupt": "drops a message that does not inflate instead of failing (RFC 7692 §7.2.2)",
    "deflate-keep-context": "keeps its LZ77 window although client_no_context_takeover was agreed (§7.1.1.2)",
    "deflate-full-window": "compresses with 2^15 whatever client_max_window_bits says (§7.1.2.2)",
}
OFFER = "permessage-deflate; client_max_window_bits"
MAX_MESSAGE = 64 * 1024 * 1024
FIXED_KEY = "AQIDBAUGBwgJCgsMDQ4PEA=="
# API scenarios (WSCONFORM_SCENARIO): the call that a WHATWG API must refuse, and the DOMException name.
REFUSED_CALLS = {
    "close-999": "InvalidAccessError",
    "close-5000": "InvalidAccessError",
    "close-long-reason": "SyntaxError",
    "duplicate-protocols": "SyntaxError",
}


def extensions_problem(answered: list[str]) -> str | None:
    """Why the response's extensions are not an answer to our one offer (RFC 6455 §9.1, RFC 7692 §5)."""
    if not answered:
        return None
    found = ext.parse(answered)
    if len(found) != 1 or found[0].name != ext.PMD:
        return f"extensions {answered!r} answer no offer"
    return ext.response_problem(found[0], ext.parse([OFFER]))


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def fail(code: int = 1006, message: str = "failed") -> None:
    emit("error", message=message)
    emit("close", code=code, reason="", wasClean=False)


async def run(url: str, protocols: list[str], defect: str | None, scenario: str, delay_ms: int = 0) -> None:
    parts = urlsplit(url)
    silent = defect in ("api-close-no-throw", "api-no-throw-silent")
    if scenario in REFUSED_CALLS and not (scenario == "close-999" and silent):
        emit("exception", name=REFUSED_CALLS[scenario], message="refused", during=scenario)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    key = {"fixed-key": FIXED_KEY, "sample-key": "dGhlIHNhbXBsZSBub25jZQ=="}.get(defect or "", hs.new_key())
    headers = hs.default_request_headers(f"{parts.hostname}:{parts.port}", key)
    if protocols:
        headers.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
    headers.append(("Sec-WebSocket-Extensions", OFFER))
    writer.write(hs.build_request("", parts.path or "/", headers=headers))
    try:
        wait = 0.3 if scenario == "abort-before-open" else 20.0
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
    except TimeoutError:
        writer.close()
        emit("exception", name="AbortError", message="aborted", during="opened")
        return fail(message="aborted before the handshake completed")
    head = hs.parse_head(raw)
    if defect == "backtracking-response-parser":  # validated before anything else: it never returns
        for name in ("Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions"):
            list_is_valid(head.get(name) or "x", "backtracking-header-parser")
    selected = head.get("Sec-WebSocket-Protocol") or ""
    bad = (
        len(head.get_all("Sec-WebSocket-Accept")) > 1
        or (protocols and not selected)
        or head.status != 101
        or "websocket" not in head.tokens("Upgrade")
        or "upgrade" not in head.tokens("Connection")
        or (head.get("Sec-WebSocket-Accept") != hs.accept_value(key) and defect != "accept-wrong-accept")
        or (selected and selected not in protocols and defect != "accept-unoffered-protocol")
    )
    answered = head.get_all("Sec-WebSocket-Extensions")
    problem = extensions_problem(answered)
    if bad or problem:
        writer.close()
        return fail(message=f"handshake rejected: {head.start_line}{f' ({problem})' if problem else ''}")
    session = session_from_response(answered, [OFFER], "client", MAX_MESSAGE) if answered else None
    if session is not None:
        if defect == "deflate-keep-context":
            session.compressor = Compressor(session.ours, context_takeover=True)
        elif defect == "deflate-full-window":
            session.compressor = Compressor(session.ours, window_bits=15)
    elif defect == "deflate-rsv1-unnegotiated":
        session = DeflateSession(DeflateParams(), "client", MAX_MESSAGE)
    emit("open", protocol=selected, extensions=", ".join(answered))
    mask = defect != "no-mask"
    mask_key = {"constant-mask-key": b"wsck", "zero-mask-key": bytes(4)}.get(defect or "")
    error_code = (lambda code: 1000) if defect == "close-normally-on-error" else (lambda code: code)

    def outgoing(opcode: int, payload: bytes = b"", rsv: int = 0) -> bytes:
        if opcode == Opcode.CLOSE and payload[:2] in (close_payload(1002), close_payload(1007)):
            payload = close_payload(error_code(int.from_bytes(payload[:2], "big")))
        return build_frame(opcode, payload, rsv=rsv, mask=mask, mask_key=mask_key if mask else None)

    def echo(kind: int, payload: bytes) -> bytes:
        if session is None or defect == "deflate-rsv1-unnegotiated":
            return outgoing(kind, payload)
        return outgoing(kind, session.compress_parts([payload])[0], rsv=4)

    if scenario == "close-999" and defect == "api-close-no-throw":
        writer.write(outgoing(Opcode.CLOSE, close_payload(999)))
    parser = FrameParser(expect_masked=defect == "accept-masked", rsv_allowed=4 if session else 0)
    parts_of: list[bytes] = []
    opcode = 0
    compressed = False
    text = Utf8Validator()
    # slow-reader: sleep before handling each message; nothing is read meanwhile (backpressure).
    delay = delay_ms / 1000 if scenario == "slow-reader" else 0.0
    handled = 0
    while True:
        data = await reader.read(65536)
        if not data:
            writer.close()
            if defect == "report-1000-on-abnormal":
                emit("close", code=1000, reason="", wasClean=True)
                return None
            return fail(message="connection lost")
        frames = parser.feed(data)
        if parser.oversized is not None:
            writer.write(outgoing(Opcode.CLOSE, close_payload(1009)))
            writer.close()
            return fail(message=f"declared length {parser.oversized} refused")
        for frame in frames:
            if frame.violations:
                writer.write(outgoing(Opcode.CLOSE, close_payload(1002)))
                writer.close()
                return fail(message=", ".join(frame.violations))
            rsv1 = bool(frame.rsv & 4)
            control = frame.opcode >= 8
            misplaced = (control and defect != "deflate-rsv1-on-control") or (
                frame.opcode == Opcode.CONTINUATION and defect != "deflate-rsv1-on-continuation"
            )
            if rsv1 and misplaced:
                writer.write(outgoing(Opcode.CLOSE, close_payload(1002)))
                writer.close()
                return fail(message="RSV1 on a control frame or a continuation (RFC 7692 §6.1)")
            if frame.opcode == Opcode.PING:
                pong = b"" if defect == "empty-pong" else frame.payload
                writer.write(outgoing(Opcode.PONG, pong))
            elif frame.opcode == Opcode.CLOSE:
                code = int.from_bytes(frame.payload[:2], "big") if len(frame.payload) >= 2 else None
                bad_body = len(frame.payload) == 1 or not Utf8Validator().feed(frame.payload[2:], final=True)
                if bad_body:
                    writer.write(outgoing(Opcode.CLOSE, close_payload(1002)))
                    writer.close()
                    return fail(message="close frame with a 1-byte body or a reason that is not UTF-8")
                if code is not None and not close_code_valid(code) and defect != "echo-invalid-close-code":
                    writer.write(outgoing(Opcode.CLOSE, close_payload(1002)))
                    writer.close()
                    return fail(message=f"invalid close code {code}")
                writer.write(outgoing(Opcode.CLOSE, frame.payload[:2]))
                if defect == "send-after-close":
                    writer.write(outgoing(Opcode.TEXT, b"after my close"))
                await writer.drain()
                await reader.read()  # the server closes TCP first (§7.1.1)
                reason = frame.payload[2:].decode("utf-8", "replace")
                emit("close", code=1005 if code is None else code, reason=reason, wasClean=True)
                return None
            elif frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONTINUATION):
                orphan = frame.opcode == Opcode.CONTINUATION and not opcode
                interleaved = frame.opcode != Opcode.CONTINUATION and opcode
                if (orphan and defect != "accept-orphan-continuation") or interleaved:
                    writer.write(outgoing(Opcode.CLOSE, close_payload(1002)))
                    writer.close()
                    return fail(message="continuation frame out of place (§5.4)")
                if frame.opcode != Opcode.CONTINUATION:
                    opcode, parts_of, text = frame.opcode, [], Utf8Validator()
                    compressed = rsv1
                parts_of.append(frame.payload)
                checking = opcode == Opcode.TEXT and defect != "accept-invalid-utf8"
                if checking and not compressed and not text.feed(frame.payload, final=frame.fin):
                    writer.write(outgoing(Opcode.CLOSE, close_payload(1007)))  # fail fast (§8.1)
                    writer.close()
                    return fail(message="invalid UTF-8")
                if frame.fin:
                    payload = b"".join(parts_of)
                    kind, opcode = opcode or Opcode.BINARY, 0
                    if compressed:
                        assert session is not None  # RSV1 passed the parser only with an agreement
                        try:
                            inflated = session.decompressor.inflate(parts_of)
                        except DeflateError as exc:
                            if defect == "deflate-ignore-corrupt":
                                continue
                            writer.write(outgoing(Opcode.CLOSE, close_payload(1007)))
                            writer.close()
                            return fail(message=f"permessage-deflate: {exc}")
                        payload = inflated.data
                        if checking and not Utf8Validator().feed(payload, final=True):
                            writer.write(outgoing(Opcode.CLOSE, close_payload(1007)))
                            writer.close()
                            return fail(message="invalid UTF-8 (inflated)")
                    handled += 1
                    if delay and defect == "drop-when-slow" and handled % 2 == 0:
                        continue
                    if delay:
                        await asyncio.sleep(delay)
                    emit(
                        "message",
                        type="text" if kind == Opcode.TEXT else "binary",
                        size=len(payload),
                        sha256=hashlib.sha256(payload).hexdigest(),
                    )
                    writer.write(echo(kind, payload))
        await writer.drain()


def play(url: str, protocols: list[str], defect: str | None, scenario: str, delay_ms: int) -> int:
    """One case; its exit status (127: a scenario this client cannot play)."""
    if scenario and scenario not in (*REFUSED_CALLS, "abort-before-open", "slow-reader"):
        return 127
    try:
        asyncio.run(asyncio.wait_for(run(url, protocols, defect, scenario, delay_ms), 30))
    except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
        fail(message=repr(exc))
    return 0


def serve_persistent(defect: str | None) -> int:
    """Persistent mode (docs/adapter-protocol.md §1): a case per stdin line, then its ``done`` line.

    The defects are the same in both modes; the tests run the reference client this way because one
    interpreter start per case was most of the time of its 700-case sweep."""
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        protocols = [p for p in case.get("protocols") or [] if p]
        scenario, delay_ms = case.get("scenario") or "", int(case.get("delay_ms") or 0)
        code = play(case["url"], protocols, defect, scenario, delay_ms)
        emit("done", case=case.get("case", ""), exit=code)
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url")
    ap.add_argument("--protocols", default="")
    ap.add_argument("--defect", choices=sorted(DEFECTS))
    ap.add_argument("--persistent", action="store_true", help="cases on stdin (adapter-protocol §1)")
    args = ap.parse_args()
    if args.persistent:
        sys.exit(serve_persistent(args.defect))
    if not args.url:
        sys.exit("--url is required (or --persistent)")
    protocols = [p for p in args.protocols.split(",") if p]
    scenario = os.environ.get("WSCONFORM_SCENARIO", "")
    sys.exit(play(args.url, protocols, args.defect, scenario, int(os.environ.get("WSCONFORM_DELAY_MS") or 0)))


if __name__ == "__main__":
    main()
