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


Citation = tuple[str | None, str | None]  # (RFC number, section), either may be absent


def citations(spec: str | None) -> list[Citation]:
    """The (RFC, section) pairs a citation names: ``RFC 6455 §5.5.1; §7.4`` gives (6455, 5.5.1) and
    (6455, 7.4); an RFC named without a section gives (rfc, None). Text in quotes is skipped, so a
    quoted "see Section 5.5" is not a citation (it has no § anyway)."""
    out: list[Citation] = []
    rfc: str | None = None
    pending: str | None = None  # an RFC named, not yet followed by a section
    for m in _TOKEN.finditer(_unquoted(spec or "")):
        if m.group(1):
            if pending is not None:
                out.append((pending, None))
            rfc = pending = m.group(1)
        else:
            out.append((rfc, m.group(2)))
            pending = None
    if pending is not None:
        out.append((pending, None))
    return out


def _unquoted(spec: str) -> str:
    return re.sub(r'"[^"]*"', '""', spec)


_QUERY = re.compile(r"^\s*(?:RFC\s?(\d{3,5}))?\s*(?:§?\s?(\d+(?:\.\d+)*)(\.\*|\*)?)?\s*$", re.IGNORECASE)


class CiteQuery:
    """What ``cases list --cites`` asks for, matched on whole section numbers.

    ``§5.5`` matches a citation of exactly §5.5 (not §5.5.1, not §5.50); ``§5.5.*`` (or ``§5.5*``)
    matches §5.5 and every subsection; ``RFC 7692 §7`` restricts the match to that RFC (a bare §
    matches in any RFC); ``RFC 7692`` alone matches any citation of that RFC. The § is optional.
    """

    def __init__(self, text: str) -> None:
        m = _QUERY.match(text)
        if m is None or not (m.group(1) or m.group(2)):
            raise ValueError(
                f"cannot read {text!r} as a citation: use §5.5.1, §5.5.* (with subsections), "
                "RFC 7692 §7 or RFC 7692"
            )
        self.text = text
        self.rfc, self.section, self.subsections = m.group(1), m.group(2), bool(m.group(3))

    def matches(self, spec: str | None) -> bool:
        return any(self._one(rfc, section) for rfc, section in citations(spec))

    def _one(self, rfc: str | None, section: str | None) -> bool:
        if self.rfc is not None and rfc != self.rfc:
            return False
        if self.section is None:
            return True
        if section is None:
            return False
        return section == self.section or (self.subsections and section.startswith(self.section + "."))
