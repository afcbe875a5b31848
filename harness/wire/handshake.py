"""Build and leniently parse the HTTP/1.1 opening handshake (RFC 6455 §4).

The peer must be able to send requests no library would produce (duplicated, missing or oddly cased
headers, wrong versions, raw bytes) and must parse whatever comes back without rejecting it, so the
verdict can say precisely what was wrong with a response. Headers are kept as an ordered list of
(name, value) pairs for that reason: a dict would hide duplicates.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass, field

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEAD = 64 * 1024


def accept_value(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (§4.2.2 step 5.4)."""
    digest = hashlib.sha1((key + GUID).encode("latin-1")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


Headers = list[tuple[str, str]]


@dataclass(slots=True)
class HttpHead:
    """A parsed request or response head; ``start_line`` split into ``parts``."""

    start_line: str
    headers: Headers = field(default_factory=list)
    raw: bytes = b""
    errors: list[str] = field(default_factory=list)

    def get_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers if k.lower() == lname]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> list[str]:
        """Comma-separated tokens across every header line of that name, lower-cased."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(t.strip().lower() for t in value.split(",") if t.strip())
        return out

    @property
    def status(self) -> int | None:
        parts = self.start_line.split(" ", 2)
        if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
            return int(parts[1])
        return None

    @property
    def http_version(self) -> str:
        return self.start_line.split(" ", 1)[0]


def build_request(
    host: str,
    path: str = "/",
    *,
    key: str | None = None,
    method: str = "GET",
    http_version: str = "HTTP/1.1",
    headers: Headers | None = None,
) -> bytes:
    """A request head; ``headers`` replaces the defaults entirely when given."""
    if headers is None:
        headers = default_request_headers(host, key or new_key())
    lines = [f"{method} {path} {http_version}"] + [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def default_request_headers(host: str, key: str) -> Headers:
    return [
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]


def find_head_end(buf: bytes | bytearray) -> int:
    """Index just past the blank line ending an HTTP head, or -1 when not complete yet."""
    idx = buf.find(b"\r\n\r\n")
    if idx >= 0:
        return idx + 4
    idx = buf.find(b"\n\n")  # lenient: bare LF line endings
    return idx + 2 if idx >= 0 else -1


def parse_head(raw: bytes) -> HttpHead:
    """Parse a head without rejecting anything; problems are listed in ``errors``."""
    text = raw.decode("latin-1")
    lines = text.split("\n")
    errors: list[str] = []
    if "\r\n" not in text and lines:
        errors.append("bare LF line endings")
    lines = [line.rstrip("\r") for line in lines]
    while lines and lines[-1] == "":
        lines.pop()
    start = lines[0] if lines else ""
    headers: Headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            errors.append("obsolete line folding")
            name, value = headers[-1]
            headers[-1] = (name, value + " " + line.strip())
            continue
        name, sep, value = line.partition(":")
        if not sep:
            errors.append(f"malformed header line {line[:40]!r}")
            continue
        if name != name.strip():
            errors.append(f"whitespace around header name {name!r}")
        headers.append((name.strip(), value.strip()))
    return HttpHead(start, headers, raw, errors)
