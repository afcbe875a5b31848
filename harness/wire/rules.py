"""Every rule the harness checks on the wire, named once: a stable id, its section, its sentence.

The peer *detects* (a parser notices a masked server frame), this module *names* (the detection is the
rule ``masked-by-server``, RFC 6455 §5.1, "A server MUST NOT mask any frames that it sends to the
client."), and the verdict *decides* (a named violation in what the target sent is FAIL). Keeping the
names here, below the peer, lets the parser, the scripted peer, the interop relay and the verdict speak
of the same rule with the same words, and lets a reason print it the way a reader looks it up
("§5.1 masked-by-server: ..."). Ids are kebab-case and never change once published (results files and
expected.yaml reasons quote them).

No I/O and no state: rules are data; ``Violation`` is one occurrence of one rule.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rule:
    """One requirement: ``id`` (stable), ``section`` (``RFC 6455 §5.1``), ``sentence`` (quoted text).

    ``family`` groups rules the way reports and tests do: request, response, frame, message, close,
    masking, deflate.
    """

    id: str
    section: str
    sentence: str
    family: str

    @property
    def short_section(self) -> str:
        """``§5.1`` for RFC 6455, ``RFC 7230 §5.4`` for the others: the way reasons cite."""
        return self.section.removeprefix("RFC 6455 ")


@dataclass(frozen=True, slots=True)
class Violation:
    """One occurrence of a rule: which rule, what exactly (``detail``), and when (trace seconds)."""

    rule: str
    detail: str = ""
    t: float | None = None

    @property
    def definition(self) -> Rule:
        return RULES[self.rule]

    def __str__(self) -> str:
        rule = RULES.get(self.rule)
        where = f"{rule.short_section} " if rule else ""
        return f"{where}{self.rule}: {self.detail}" if self.detail else f"{where}{self.rule}"


def _rules(*rules: Rule) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in out:
            raise ValueError(f"duplicate rule id {rule.id}")
        out[rule.id] = rule
    return out


_6455 = "RFC 6455"
RULES: dict[str, Rule] = _rules(
    # -- the client's opening request (checked by the peer as a server, and by the relay) -------------
    Rule("request-method", f"{_6455} §4.1", "The method of the request MUST be GET, and the HTTP version "
         "MUST be at least 1.1.", "request"),
    Rule("request-http-version", f"{_6455} §4.1", "The method of the request MUST be GET, and the HTTP "
         "version MUST be at least 1.1.", "request"),
    Rule("request-host", f"{_6455} §4.1", "The request MUST contain a |Host| header field whose value "
         "contains /host/ plus optionally \":\" followed by /port/.", "request"),
    Rule("request-upgrade", f"{_6455} §4.1", "The request MUST contain an |Upgrade| header field whose "
         "value MUST include the \"websocket\" keyword.", "request"),
    Rule("request-connection", f"{_6455} §4.1", "The request MUST contain a |Connection| header field "
         "whose value MUST include the \"Upgrade\" token.", "request"),
    Rule("request-key", f"{_6455} §4.1", "The request MUST include a header field with the name "
         "|Sec-WebSocket-Key|. The value of this header field MUST be a nonce consisting of a randomly "
         "selected 16-byte value that has been base64-encoded.", "request"),
    Rule("request-key-not-random", f"{_6455} §4.1", "The nonce MUST be selected randomly for each "
         "connection.", "request"),
    Rule("request-version", f"{_6455} §4.1", "The request MUST include a header field with the name "
         "|Sec-WebSocket-Version|. The value of this header field MUST be 13.", "request"),
    Rule("request-protocol-duplicate", f"{_6455} §4.1", "The elements that comprise this value MUST be "
         "non-empty strings with characters in the range U+0021 to U+007E not including separator "
         "characters as defined in [RFC2616] and MUST all be unique strings.", "request"),
    # -- the server's opening response (checked by the peer as a client, and by the relay) -----------
    Rule("response-status", f"{_6455} §4.1", "If the status code received from the server is not 101, "
         "the client handles the response per HTTP [RFC2616] procedures.", "response"),
    Rule("response-upgrade", f"{_6455} §4.1", "If the response lacks an |Upgrade| header field or the "
         "|Upgrade| header field contains a value that is not an ASCII case-insensitive match for the "
         "value \"websocket\", the client MUST _Fail the WebSocket Connection_.", "response"),
    Rule("response-connection", f"{_6455} §4.1", "If the response lacks a |Connection| header field or "
         "the |Connection| header field doesn't contain a token that is an ASCII case-insensitive match "
         "for the value \"Upgrade\", the client MUST _Fail the WebSocket Connection_.", "response"),
    Rule("response-accept", f"{_6455} §4.1", "If the response lacks a |Sec-WebSocket-Accept| header field "
         "or the |Sec-WebSocket-Accept| contains a value other than the base64-encoded SHA-1 of the "
         "concatenation of the |Sec-WebSocket-Key| (as a string, not base64-decoded) with the string "
         "\"258EAFA5-E914-47DA-95CA-C5AB0DC85B11\" ..., the client MUST _Fail the WebSocket "
         "Connection_.", "response"),
    Rule("response-protocol-not-offered", f"{_6455} §4.1", "If the response includes a "
         "|Sec-WebSocket-Protocol| header field and this header field indicates the use of a subprotocol "
         "that was not present in the client's handshake ..., the client MUST _Fail the WebSocket "
         "Connection_.", "response"),
    Rule("response-protocol-multiple", f"{_6455} §4.2.2", "The server selects one or none of the "
         "acceptable protocols and echoes that value in its handshake.", "response"),
    Rule("response-extension-not-offered", f"{_6455} §4.1", "If the response includes a "
         "|Sec-WebSocket-Extensions| header field and this header field indicates the use of an extension "
         "that was not present in the client's handshake ..., the client MUST _Fail the WebSocket "
         "Connection_.", "response"),
    Rule("response-extension-twice", f"{_6455} §9.1", "Any extension-token used MUST be a registered "
         "token; the server's response lists the extensions in use, each once.", "response"),
    Rule("response-pmd-parameters", "RFC 7692 §7", "A client MUST _Fail the WebSocket Connection_ if ... "
         "the negotiation response contains an extension parameter not defined for use in a response, "
         "... with an invalid value, ... or multiple extension parameters with the same name.",
         "response"),
    # -- frames (§5.2 and the rules it refers to) ----------------------------------------------------
    Rule("masked-by-server", f"{_6455} §5.1", "A server MUST NOT mask any frames that it sends to the "
         "client.", "frame"),
    Rule("unmasked-by-client", f"{_6455} §5.1", "A client MUST mask all frames that it sends to the "
         "server.", "frame"),
    Rule("rsv-without-extension", f"{_6455} §5.2", "RSV1, RSV2, RSV3: MUST be 0 unless an extension is "
         "negotiated that defines meanings for non-zero values.", "frame"),
    Rule("reserved-opcode", f"{_6455} §5.2", "If an unknown opcode is received, the receiving endpoint "
         "MUST _Fail the WebSocket Connection_ (opcodes %x3-7 and %xB-F are reserved).", "frame"),
    Rule("non-minimal-length", f"{_6455} §5.2", "In all cases, the minimal number of bytes MUST be used "
         "to encode the length.", "frame"),
    Rule("length-msb-set", f"{_6455} §5.2", "If 127, the following 8 bytes interpreted as a 64-bit "
         "unsigned integer (the most significant bit MUST be 0) are the payload length.", "frame"),
    Rule("control-frame-too-long", f"{_6455} §5.5", "All control frames MUST have a payload length of "
         "125 bytes or less and MUST NOT be fragmented.", "frame"),
    Rule("fragmented-control-frame", f"{_6455} §5.5", "All control frames MUST have a payload length of "
         "125 bytes or less and MUST NOT be fragmented.", "frame"),
    Rule("truncated-frame", f"{_6455} §5.2", "The connection closed in the middle of a frame: the frame "
         "is incomplete, so the bytes on the wire are not the framing §5.2 defines.", "frame"),
    # -- messages ------------------------------------------------------------------------------------
    Rule("continuation-without-start", f"{_6455} §5.4", "A fragmented message consists of a single frame "
         "with the FIN bit clear and an opcode other than 0, followed by zero or more frames with the FIN "
         "bit clear and the opcode set to 0, and terminated by a single frame with the FIN bit set and an "
         "opcode of 0.", "message"),
    Rule("message-inside-message", f"{_6455} §5.4", "The fragments of one message MUST NOT be "
         "interleaved between the fragments of another message unless an extension has been negotiated "
         "that can interpret the interleaving.", "message"),
    Rule("invalid-utf8", f"{_6455} §8.1", "When an endpoint is to interpret a byte stream as UTF-8 but "
         "finds that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the "
         "WebSocket Connection_ (text messages: §5.6, \"The \"Payload data\" is text data encoded as "
         "UTF-8\").", "message"),
    # -- close ---------------------------------------------------------------------------------------
    Rule("close-payload-1-byte", f"{_6455} §5.5.1", "If there is a body, the first two bytes of the body "
         "MUST be a 2-byte unsigned integer (in network byte order) representing a status code.",
         "close"),
    Rule("invalid-close-code", f"{_6455} §7.4", "Status codes in the range 0-999 are not used; 1004, "
         "1005, 1006 and 1015 MUST NOT be set as a status code in a Close control frame by an endpoint; "
         "unassigned codes of 1000-2999 are reserved (§7.4.1, §7.4.2).", "close"),
    Rule("close-reason-invalid-utf8", f"{_6455} §5.5.1", "Following the 2-byte integer, the body MAY "
         "contain UTF-8-encoded data with value /reason/.", "close"),
    Rule("frame-after-close", f"{_6455} §5.5.1", "The application MUST NOT send any more data frames "
         "after sending a Close frame.", "close"),
    Rule("close-no-reply", f"{_6455} §5.5.1", "If an endpoint receives a Close frame and did not "
         "previously send a Close frame, the endpoint MUST send a Close frame in response.", "close"),
    Rule("server-keeps-tcp-open", f"{_6455} §5.5.1", "After both sending and receiving a Close message, "
         "an endpoint considers the WebSocket connection closed and MUST close the underlying TCP "
         "connection. The server MUST close the underlying TCP connection immediately.", "close"),
    Rule("close-frame-twice", f"{_6455} §5.5.1", "After sending a Close frame, the endpoint MUST NOT send "
         "any more data frames (and a second Close frame has nothing to close).", "close"),
    # -- masking keys --------------------------------------------------------------------------------
    Rule("mask-key-reused", f"{_6455} §5.3", "When preparing a masked frame, the client MUST pick a fresh "
         "masking key from the set of allowed 32-bit values. ... the masking key for a given frame MUST "
         "NOT make it simple for a server/proxy to predict the masking key for a subsequent frame.",
         "masking"),
    Rule("mask-key-zero", f"{_6455} §5.3", "The masking key needs to be unpredictable; thus, the masking "
         "key MUST be derived from a strong source of entropy.", "masking"),
    # -- permessage-deflate (RFC 7692) ---------------------------------------------------------------
    Rule("rsv1-on-control-frame", "RFC 7692 §6.1", "An endpoint MUST NOT set the \"Per-Message "
         "Compressed\" bit of control frames and non-first fragments of a data message.", "deflate"),
    Rule("rsv1-on-continuation", "RFC 7692 §6.1", "An endpoint MUST NOT set the \"Per-Message "
         "Compressed\" bit of control frames and non-first fragments of a data message.", "deflate"),
    Rule("deflate-corrupt", "RFC 7692 §6.2", "An endpoint that received a compressed message inflates "
         "it; data that does not inflate is not a message this extension can produce.", "deflate"),
    Rule("deflate-window-exceeded", "RFC 7692 §7.1.2", "If a received server_max_window_bits (or "
         "client_max_window_bits) parameter is N, the endpoint MUST NOT use an LZ77 sliding window "
         "greater than 2^N bytes to compress messages.", "deflate"),
    Rule("deflate-context-not-reset", "RFC 7692 §7.1.1", "If the peer agreed to no_context_takeover, it "
         "MUST start compressing each new message with an empty LZ77 sliding window.", "deflate"),
    Rule("deflate-truncated", "RFC 7692 §7.2.1", "Compress all the octets of the payload of the message "
         "using DEFLATE. ... If the resulting data does not end with an empty DEFLATE block with no "
         "compression (the \"BTYPE\" bits are set to 00), append an empty DEFLATE block with no "
         "compression to the tail end (the message ends inside a block).", "deflate"),
    Rule("deflate-bfinal-unterminated", "RFC 7692 §7.2.3.4", "A block with BFINAL set is followed by one "
         "octet 0x00: \"This octet is necessary to allow the payload to be decompressed in the same "
         "manner as messages flushed using DEFLATE blocks with BFINAL unset\" (§7.2.1 step 2).",
         "deflate"),
    Rule("deflate-tail-not-removed", "RFC 7692 §7.2.1", "Remove 4 octets (that are 0x00 0x00 0xff 0xff) "
         "from the tail end. After this step, the last octet of the compressed data contains (possibly "
         "part of) the DEFLATE header bits with the \"BTYPE\" bits set to 00.", "deflate"),
    Rule("deflate-empty-payload", "RFC 7692 §7.2.3.6", "An empty compressed message or final fragment "
         "carries the single octet 0x00 (§7.2.1 applied to no data); a zero-length payload with RSV1 "
         "is not the output of the algorithm.", "deflate"),
)  # fmt: skip


def violation(rule: str, detail: str = "", t: float | None = None) -> Violation:
    """A violation of a known rule; an unknown id is a harness bug and raises at once."""
    if rule not in RULES:
        raise KeyError(f"unknown rule id {rule!r}")
    return Violation(rule, detail, t)


def rules_of(family: str) -> list[Rule]:
    return [r for r in RULES.values() if r.family == family]
