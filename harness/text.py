"""Target-controlled text made safe to show: control characters become visible escapes.

A close reason, a subprotocol, a header value or a client's event is chosen by the implementation
under test. Printed raw, ``\\x1b[31m`` recolours the CI log (or worse: terminal escapes can move the
cursor and rewrite lines), NUL truncates text in some viewers and is a parse error in HTML, and bidi
overrides reorder what a reader sees. Every front end and report passes such text through
``printable`` first; markup escaping (rich, HTML, XML, Markdown) is each output's own second step.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, C1 controls (0x9b is a one-byte CSI on some terminals),
# and the bidirectional overrides/isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """``value`` as text with every unsafe character written as ``\\xNN`` / ``\\uNNNN``."""
    return _UNSAFE.sub(_escape, str(value))


def one_line(value: object, limit: int | None = None) -> str:
    """``printable`` on one line (newlines as ``\\n``), cut at ``limit`` characters with a marker."""
    text = printable(value).replace("\n", "\\n")
    if limit is not None and len(text) > limit:
        return text[: limit - 1] + "…"
    return text
