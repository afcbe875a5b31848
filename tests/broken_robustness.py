"""The robustness defects of tests/broken_server.py: the denial-of-service shapes of real CVEs.

Each is what a real library shipped, made deliberate: a header-list parser built on a regular
expression with nested quantifiers (backtracking: exponential in a run of blanks, an unclosed quoted
string of backslashes, a run of empty list elements), an HTTP layer that crashes above N header
fields, a message buffer that keeps every fragment as its own allocation with no bound on their
number, and name lookups in a registry that behaves like a JavaScript plain object (``{}``), whose
prototype answers ``constructor``, ``__proto__``, ``toString``... The correct server reads at most
``MAX_HEAD`` bytes of head (431 beyond), parses lists by splitting, and keeps one buffer per message.
"""

from __future__ import annotations

import asyncio
import os
import re

DEFECTS = {
    "backtracking-header-parser": "parses Sec-WebSocket-Protocol/-Extensions with an exponential regex",
    "crash-above-n-fields": "the process exits (status 70) on more than --max-fields header fields",
    "unbounded-fragments": "keeps every fragment as its own 1 KiB allocation, however many",
    "object-registry": "looks names up in a JavaScript-like plain object: prototype names are found",
}
MAX_HEAD = 64 * 1024  # the correct server's head limit: beyond it, 431 (RFC 6585 §5)
CRASH_FIELDS = 1000  # --max-fields: how many header fields the crashing HTTP layer survives
FRAGMENT_COST = 1024  # what the defect allocates per fragment

TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
OWS = r"(?:[ \t]+)*"  # nested quantifiers: a run of n blanks splits 2^n ways when the match fails
QUOTED = r'"(?:[^"]|\\.)*"'  # a backslash is both [^"] and the start of \\. : Fibonacci many ways
PARAM = rf";{OWS}{TOKEN}(?:{OWS}={OWS}(?:{TOKEN}|{QUOTED}))?"
ELEMENT = rf"(?:{TOKEN}|{QUOTED})(?:{OWS}{PARAM})*"
EMPTY = rf"(?:{OWS},?{OWS})*"  # empty list elements: a blank belongs to either side of a comma
SEPARATOR = rf"(?:{OWS},{OWS})+"
BACKTRACKING_LIST = re.compile(rf"^{EMPTY}{ELEMENT}(?:{SEPARATOR}{ELEMENT})*{EMPTY}$")

# What ``{}`` answers in JavaScript without own properties: Object.prototype's members.
JS_PROTOTYPE = {
    name: f"[native code {name}]"
    for name in (
        "constructor", "__proto__", "toString", "toLocaleString", "valueOf", "hasOwnProperty",
        "isPrototypeOf", "propertyIsEnumerable", "__defineGetter__", "__defineSetter__",
        "__lookupGetter__", "__lookupSetter__",
    )
}  # fmt: skip


def registry_has(own: list[str], name: str, defect: str | None) -> bool:
    """Is ``name`` a registered subprotocol/extension? With object-registry, ``registry[name]``."""
    if defect == "object-registry":
        return name in own or name in JS_PROTOTYPE
    return name in own


def list_is_valid(value: str, defect: str | None) -> bool:
    """The backtracking defect validates the whole list first, with the exponential expression."""
    if defect != "backtracking-header-parser":
        return True
    return BACKTRACKING_LIST.match(value) is not None


async def read_head(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    defect: str | None,
    max_fields: int = CRASH_FIELDS,
) -> bytes | None:
    """The request head, or None once the server refused it (431) because it is too long."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        if defect == "crash-above-n-fields":  # its HTTP layer reads on, then dies on the count
            head = await _read_unbounded(reader)
        else:
            writer.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            return None
    if defect == "crash-above-n-fields" and head.count(b"\r\n") - 2 > max_fields:
        os._exit(70)
    return head


async def _read_unbounded(reader: asyncio.StreamReader) -> bytes:
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        chunk = await reader.read(65536)
        if not chunk:
            raise asyncio.IncompleteReadError(bytes(buf), None)
        buf += chunk
    return bytes(buf)


class Fragments:
    """The unbounded-fragments defect: every fragment of a message kept as its own allocation."""

    def __init__(self, defect: str | None) -> None:
        self.on = defect == "unbounded-fragments"
        self.kept: list[bytearray] = []

    def add(self, payload: bytes) -> None:
        if self.on:
            piece = bytearray(FRAGMENT_COST)
            piece[: len(payload)] = payload[:FRAGMENT_COST]
            self.kept.append(piece)

    def clear(self) -> None:
        self.kept.clear()
