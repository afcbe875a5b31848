"""Sec-WebSocket-Extensions parsing and RFC 7692 negotiation checks (negotiation only, no I/O).

A server's answer to an extension offer is only legal relative to what was offered: it may accept at
most one offer per extension, must not name an extension the client did not offer (RFC 6455 §9.1), and
for permessage-deflate must answer with parameters RFC 7692 §7.1 allows for that offer. Parameters
are kept as an ordered list of pairs so that duplicates stay visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PMD = "permessage-deflate"
PMD_PARAMS = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
}


@dataclass(slots=True)
class Extension:
    name: str
    params: list[tuple[str, str | None]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [k for k, _ in self.params]

    def get(self, key: str) -> str | None:
        return next((v for k, v in self.params if k == key), None)

    def has(self, key: str) -> bool:
        return key in self.names()


def parse(values: list[str]) -> list[Extension]:
    """All extensions across every header line, in order (RFC 6455 §9.1 grammar, leniently)."""
    out: list[Extension] = []
    for value in values:
        for item in _split(value, ","):
            parts = [p.strip() for p in _split(item, ";")]
            if not parts or not parts[0]:
                continue
            ext = Extension(parts[0].lower())
            for param in parts[1:]:
                if not param:
                    continue
                key, sep, val = param.partition("=")
                val = val.strip()
                if len(val) >= 2 and val[0] == val[-1] == '"':
                    val = val[1:-1]
                ext.params.append((key.strip().lower(), val if sep else None))
            out.append(ext)
    return out


def _split(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside double quotes."""
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


WINDOW_BITS = frozenset(str(n) for n in range(8, 16))


def _window_bits(value: str | None) -> bool:
    """RFC 7692 §7.1.2: a decimal integer 8..15 without leading zeros."""
    return value in WINDOW_BITS


def offer_problem(offer: Extension) -> str | None:
    """Why a client's permessage-deflate offer is invalid (RFC 7692 §7.1), or None."""
    names = offer.names()
    for key in set(names):
        if names.count(key) > 1:
            return f"duplicated parameter {key}"
    for key, value in offer.params:
        if key not in PMD_PARAMS:
            return f"unknown parameter {key}"
        if key.endswith("no_context_takeover") and value is not None:
            return f"{key} takes no value"
        if key == "server_max_window_bits" and not _window_bits(value):
            return f"server_max_window_bits={value}"
        if key == "client_max_window_bits" and value is not None and not _window_bits(value):
            return f"client_max_window_bits={value}"
    return None


def response_problem(response: Extension, offers: list[Extension]) -> str | None:
    """Why a server's permessage-deflate response is not a legal answer to any valid offer, or None."""
    names = response.names()
    for key in set(names):
        if names.count(key) > 1:
            return f"duplicated parameter {key} in the response"
    for key, value in response.params:
        if key not in PMD_PARAMS:
            return f"unknown parameter {key} in the response"
        if key.endswith("no_context_takeover") and value is not None:
            return f"{key} with a value in the response"
        if key.endswith("max_window_bits") and not _window_bits(value):
            return f"{key}={value} in the response (RFC 7692 §7.1.2: a value from 8 to 15 is required)"
    reasons = []
    for offer in (o for o in offers if o.name == PMD):
        bad = offer_problem(offer)
        if bad:
            reasons.append(f"offer with {bad} must be declined")
            continue
        why = _answers(response, offer)
        if why is None:
            return None
        reasons.append(why)
    return "; ".join(reasons) or "no permessage-deflate offer was made"


def _answers(response: Extension, offer: Extension) -> str | None:
    if response.has("client_max_window_bits") and not offer.has("client_max_window_bits"):
        return "client_max_window_bits in the response but not in the offer (RFC 7692 §7.1.2.2)"
    if offer.has("server_no_context_takeover") and not response.has("server_no_context_takeover"):
        return "server_no_context_takeover offered but not in the response (RFC 7692 §7.1.1.1)"
    offered = offer.get("server_max_window_bits")
    if offered is not None:
        got = response.get("server_max_window_bits")
        if got is None or int(got) > int(offered):
            return f"server_max_window_bits={offered} offered, response has {got} (RFC 7692 §7.1.2.1)"
    limit = offer.get("client_max_window_bits")
    got_client = response.get("client_max_window_bits")
    if got_client is not None and limit is not None and int(got_client) > int(limit):
        return f"client_max_window_bits={got_client} exceeds the offered {limit} (RFC 7692 §7.1.2.2)"
    return None
