"""What one detail page shows, computed from a result record and its trace file.

Everything a target sends (close reasons, header values, payload previews, log lines) reaches the page
as plain strings; the templates escape them. This module only decodes and arranges: close frames get
their code and reason, control characters become visible symbols, and events that are not frames
(TCP notes, raw writes, elisions) keep their extra fields as ``key=value`` notes.

Client API events (what a client target's WebSocket API reported: open, message, error, close) are
read from ``trace.api`` or from events whose ``dir`` is ``"api"``, whichever a trace carries.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from harness.model.citations import Piece, link_spec

# Fields the frame table shows in their own columns; any other field of an event is a note.
_COLUMNS = frozenset(
    {"t", "dir", "type", "name", "opcode", "fin", "rsv", "masked", "length", "text", "hex", "violations"}
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
ARROWS = {"out": "→", "in": "←", "tcp": "⇄", "note": "·"}
LOG_LINES = 2000


def visible(text: str) -> str:
    """Control characters as Unicode control pictures (␀ ␃ ␡), so a preview shows what was there."""
    return _CONTROL.sub(lambda m: chr(0x2421) if m.group() == "\x7f" else chr(0x2400 + ord(m.group())), text)


def spaced_hex(hexstr: str) -> str:
    try:
        return bytes.fromhex(hexstr).hex(" ")
    except ValueError:
        return hexstr


def close_info(event: dict[str, Any]) -> tuple[int | None, str | None]:
    """Status code and reason of a close frame event (from its hex preview), if it carries them."""
    if event.get("type") != "frame" or event.get("opcode") != 8:
        return None, None
    raw = event.get("hex") or ""
    if len(raw) < 4:
        return None, None
    try:
        data = bytes.fromhex(raw)
    except ValueError:
        return None, None
    return int.from_bytes(data[:2], "big"), data[2:].decode("utf-8", "replace")


def remote_close_code(trace_doc: dict[str, Any]) -> int | None:
    """Code of the first close frame the target sent, or None if it sent none (or an empty one)."""
    for e in (trace_doc.get("trace") or {}).get("events") or []:
        if e.get("dir") == "in" and e.get("type") == "frame" and e.get("opcode") == 8:
            return close_info(e)[0]
    return None


def read_trace(path: str | None) -> dict[str, Any]:
    """A trace file's content, or {} when the record has none or the file is gone or damaged."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


@dataclass
class EventRow:
    t_ms: str
    dir: str
    arrow: str
    kind: str
    opcode: str
    fin: str
    rsv: str
    mask: str
    length: str
    text: str
    hex: str
    violations: list[str]
    notes: str
    close: str


def _flag(value: Any) -> str:
    return "" if value is None else ("1" if value else "0")


def event_row(e: dict[str, Any]) -> EventRow:
    extra = {k: v for k, v in e.items() if k not in _COLUMNS}
    if e.get("type") == "elided":
        extra = {}
    notes = " ".join(f"{k}={v}" for k, v in extra.items())
    code, reason = close_info(e)
    close = "" if code is None else f"code {code}" + (f", reason {visible(reason)!r}" if reason else "")
    rsv = e.get("rsv")
    opcode = e.get("opcode")
    t = e.get("t")
    return EventRow(
        t_ms="" if t is None else f"{float(t) * 1000:.3f}",
        dir=str(e.get("dir") or ""),
        arrow=ARROWS.get(str(e.get("dir")), ""),
        kind=(
            f"… {e.get('count')} events elided …"
            if e.get("type") == "elided"
            else str(e.get("name") or e.get("type") or "")
        ),
        opcode="" if opcode is None else f"0x{int(opcode):x}",
        fin=_flag(e.get("fin")),
        rsv="" if rsv is None else f"{int(rsv):03b}",
        mask=_flag(e.get("masked")),
        length="" if e.get("length") is None else str(e.get("length")),
        text="" if e.get("text") is None else visible(str(e["text"])),
        hex=spaced_hex(str(e.get("hex") or "")),
        violations=[str(v) for v in e.get("violations") or []],
        notes=visible(notes),
        close=close,
    )


@dataclass
class ApiEvent:
    t_ms: str
    event: str
    fields: str


def api_events(trace: dict[str, Any]) -> list[ApiEvent]:
    raw = list(trace.get("api") or []) + [e for e in trace.get("events") or [] if e.get("dir") == "api"]
    out = []
    for e in raw:
        t = e.get("t")
        name = str(e.get("event") or e.get("type") or "")
        rest = {k: v for k, v in e.items() if k not in ("t", "event", "type", "dir")}
        out.append(
            ApiEvent(
                "" if t is None else f"{float(t) * 1000:.3f}",
                name,
                visible(" ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in rest.items())),
            )
        )
    return out


_PARAM = re.compile(r"\$\{(\w+)\}")
_ID_LINE = re.compile(r"id:\s*['\"]?([^'\"\n]+)")


@lru_cache(maxsize=4096)
def _id_pattern(template: str) -> re.Pattern[str] | None:
    """A regex matching the ids a parametrised id template expands to (None if it has no params)."""
    if "${" not in template:
        return None
    pattern, seen, pos = "", set(), 0
    for m in _PARAM.finditer(template):
        pattern += re.escape(template[pos : m.start()])
        name = m.group(1)
        pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
        seen.add(name)
        pos = m.end()
    pattern += re.escape(template[pos:])
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _id_params(template: str, case_id: str) -> dict[str, str]:
    """Recover ``${name}`` values from the expanded id, e.g. close-code-${code} vs close-code-1000."""
    pattern = _id_pattern(template)
    found = pattern.fullmatch(case_id) if pattern else None
    return found.groupdict() if found else {}


def expectation(record: dict[str, Any], trace_doc: dict[str, Any]) -> str:
    """The case's expectation: the record's own if it carries one, else the ``expect:`` block of the
    case source, with the parameters that the case id reveals filled in."""
    given = record.get("expect", trace_doc.get("expect"))
    if given is not None:
        if not given:
            return "expect: {}  # defaults: every message echoed, every ping answered, clean close"
        return yaml.safe_dump({"expect": given}, sort_keys=False, allow_unicode=True).rstrip()
    source = str(trace_doc.get("source") or "")
    lines = source.splitlines()
    starts = [
        (len(ln) - len(ln.lstrip()), i) for i, ln in enumerate(lines) if ln.lstrip().startswith("expect:")
    ]
    if not starts:
        return ""
    indent, first = min(starts)
    block = [lines[first][indent:]]
    for ln in lines[first + 1 :]:
        if ln.strip() and len(ln) - len(ln.lstrip()) <= indent:
            break
        block.append(ln[indent:])
    text = "\n".join(block).rstrip()
    id_line = _ID_LINE.search(source)
    params = _id_params(id_line.group(1).strip(), str(record.get("case"))) if id_line else {}
    return _PARAM.sub(lambda m: params.get(m.group(1), m.group(0)), text)


@dataclass
class Detail:
    citation: list[Piece]
    expectation: str
    source: str
    request: str
    response: str
    events: list[EventRow]
    api: list[ApiEvent]
    log: list[str]
    log_cut: int
    notes: list[str] = field(default_factory=list)
    has_trace: bool = False


def _head(raw: Any) -> str:
    """An HTTP head for display: CRLF as line breaks, the blank line that ends it dropped."""
    return visible(str(raw or "").replace("\r\n", "\n").rstrip("\n"))


def detail(record: dict[str, Any], trace_doc: dict[str, Any]) -> Detail:
    trace = trace_doc.get("trace") or {}
    hs = trace.get("handshake") or {}
    log = str(trace_doc.get("log") or "").splitlines()
    cut = max(0, len(log) - LOG_LINES)
    return Detail(
        citation=link_spec(record.get("spec")),
        expectation=expectation(record, trace_doc),
        source=str(trace_doc.get("source") or ""),
        request=_head(hs.get("request")),
        response=_head(hs.get("response")),
        events=[event_row(e) for e in trace.get("events") or [] if e.get("dir") != "api"],
        api=api_events(trace),
        log=[visible(ln) for ln in log[cut:]],
        log_cut=cut,
        notes=[str(n) for n in trace.get("notes") or []],
        has_trace=bool(trace_doc),
    )
