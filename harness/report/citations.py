"""Spec citations as text with links to the RFC sections they name.

Cases cite like ``RFC 6455 §5.5.1 ("quoted text"); §7.4``: a bare ``§`` belongs to the last RFC
named before it. The result is a list of (text, href) pieces so that the template, with autoescape
on, does all the escaping; no markup is built here. Only a link is produced, nothing is fetched.
"""

from __future__ import annotations

import re

RFC_BASE = "https://www.rfc-editor.org/rfc/rfc"
_TOKEN = re.compile(r"RFC\s?(\d{3,5})|§\s?(\d+(?:\.\d+)*)")

Piece = tuple[str, str | None]


def rfc_link(rfc: str, section: str | None = None) -> str:
    return f"{RFC_BASE}{rfc}" + (f"#section-{section}" if section else "")


def link_spec(spec: str | None) -> list[Piece]:
    """Split a citation into plain pieces (href None) and linked ones."""
    if not spec:
        return []
    pieces: list[Piece] = []
    rfc: str | None = None
    pos = 0
    for m in _TOKEN.finditer(spec):
        if m.group(1):
            rfc = m.group(1)
            href = rfc_link(rfc)
        elif rfc is not None:
            href = rfc_link(rfc, m.group(2))
        else:
            continue  # a section with no RFC before it: left as text
        if m.start() > pos:
            pieces.append((spec[pos : m.start()], None))
        pieces.append((m.group(0), href))
        pos = m.end()
    if pos < len(spec):
        pieces.append((spec[pos:], None))
    return pieces
