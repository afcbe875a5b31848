"""The opening handshake's rules, checked on parsed heads: the request (§4.1) and the response (§4.1, §4.2.2).

Both the scripted peer (as server it checks a client target's request, as client a server target's
101) and the interop relay (which sees both) call these, so a handshake problem has one name wherever
it is found. Request problems are *handshake* problems: they are reported with the request's rule,
never as an invalid frame.
"""

from __future__ import annotations

import base64
import binascii

from harness.wire import extensions as ext
from harness.wire.handshake import HttpHead, accept_value
from harness.wire.rules import Violation

SAMPLE_NONCE = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example key: never random


def offered_protocols(request: HttpHead) -> list[str]:
    """Every subprotocol a request offers, across header lines, in order."""
    return [t.strip() for v in request.get_all("Sec-WebSocket-Protocol") for t in v.split(",") if t.strip()]


def request_key(request: HttpHead) -> str | None:
    keys = request.get_all("Sec-WebSocket-Key")
    return keys[0] if len(keys) == 1 else None


def check_request(head: HttpHead) -> Violation | None:
    """The first rule of §4.1 a client's opening request breaks, or None."""
    parts = head.start_line.split(" ")
    if len(parts) != 3 or parts[0] != "GET":
        return Violation("request-method", f"request line {head.start_line!r}")
    if parts[2] != "HTTP/1.1":
        return Violation("request-http-version", f"request line {head.start_line!r}")
    if not head.get("Host"):
        return Violation("request-host", "no Host header")
    if "websocket" not in head.tokens("Upgrade"):
        return Violation("request-upgrade", f"Upgrade is {head.get('Upgrade')!r}")
    if "upgrade" not in head.tokens("Connection"):
        return Violation("request-connection", f"Connection is {head.get('Connection')!r}")
    keys = head.get_all("Sec-WebSocket-Key")
    if len(keys) != 1:
        return Violation("request-key", f"{len(keys)} Sec-WebSocket-Key headers")
    try:
        if len(base64.b64decode(keys[0], validate=True)) != 16:
            return Violation("request-key", f"Sec-WebSocket-Key {keys[0]!r} is not 16 bytes in base64")
    except (binascii.Error, ValueError):
        return Violation("request-key", f"Sec-WebSocket-Key {keys[0]!r} is not base64")
    if keys[0] == SAMPLE_NONCE:
        return Violation("request-key-not-random", f"Sec-WebSocket-Key is RFC 6455's sample {keys[0]!r}")
    if head.get_all("Sec-WebSocket-Version") != ["13"]:
        return Violation("request-version", f"Sec-WebSocket-Version is {head.get('Sec-WebSocket-Version')!r}")
    protocols = offered_protocols(head)
    if len(set(protocols)) != len(protocols):
        return Violation("request-protocol-duplicate", f"Sec-WebSocket-Protocol offers {protocols}")
    return None


def check_response(head: HttpHead, key: str, request: HttpHead) -> Violation | None:
    """The first rule a server's 101 breaks, as a client MUST check it (§4.1, §4.2.2, §9.1), or None.

    Only for a 101: any other status is a refusal, which a case may expect (see the verdict).
    """
    if "websocket" not in head.tokens("Upgrade"):
        return Violation("response-upgrade", f"Upgrade header is {head.get('Upgrade')!r}")
    if "upgrade" not in head.tokens("Connection"):
        return Violation("response-connection", f"Connection header is {head.get('Connection')!r}")
    accepts = head.get_all("Sec-WebSocket-Accept")
    if len(accepts) != 1:
        return Violation("response-accept", f"{len(accepts)} Sec-WebSocket-Accept headers, expected one")
    if accepts[0] != accept_value(key):
        return Violation(
            "response-accept", f"Sec-WebSocket-Accept is {accepts[0]!r}, expected {accept_value(key)!r}"
        )
    offered = offered_protocols(request)
    chosen = head.get_all("Sec-WebSocket-Protocol")
    if len(chosen) > 1 or (chosen and "," in chosen[0]):
        return Violation("response-protocol-multiple", f"Sec-WebSocket-Protocol {chosen!r}")
    if chosen and chosen[0].strip() not in offered:
        return Violation(
            "response-protocol-not-offered", f"selected {chosen[0]!r}; offered {offered}"
        )
    offers = ext.parse(request.get_all("Sec-WebSocket-Extensions"))
    accepted = ext.parse(head.get_all("Sec-WebSocket-Extensions"))
    offered_names = {o.name for o in offers}
    seen: set[str] = set()
    for e in accepted:
        if e.name not in offered_names:
            return Violation("response-extension-not-offered", f"extension {e.name!r} accepted, not offered")
        if e.name in seen:
            return Violation("response-extension-twice", f"extension {e.name!r} accepted twice")
        seen.add(e.name)
        if e.name == ext.PMD:
            problem = ext.response_problem(e, offers)
            if problem:
                return Violation("response-pmd-parameters", problem)
    return None
