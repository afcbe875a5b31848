"""The half of the client adapter contract that does not depend on the library under test.

Every Python client adapter (websockets, aiohttp, wsproto, tornado, websocket-client) imports this
module from its own folder (a symbolic link to ``targets/_python/``, so a container build, which
copies only the target folder, still gets the file). It holds what docs/targets.md and
docs/adapter-protocol.md say about the *process*, not about WebSockets:

* the events on stdout, one JSON object per line, nothing after ``close`` (a safety timeout may race
  the library's own close);
* what a case asks for (``CaseRequest``): from argv and the environment in per-case mode
  (``WSCONFORM_SCENARIO``, ``WSCONFORM_DELAY_MS``, ``WSCONFORM_INTEROP``/``WSCONFORM_PLAN``), or from one
  stdin line in persistent mode;
* the persistent loop (§1): one case per stdin line, its events, then ``{"event": "done", ...}``;
  EOF ends the process;
* ``Unsupported``: what the adapter's API cannot do, exit 127 (per case) or ``"exit": 127``.

Why one shared file: the two modes must give identical results (adapter-protocol §1), so both run
the same ``run_request`` function of the adapter; only how a request arrives differs, and that part
is the same for every adapter.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wsconform_interop import Plan, PlanError, parse_plan

UNSUPPORTED = 127
ABNORMAL_CLOSURE = 1006
SLOW_READER = "slow-reader"


class Unsupported(Exception):
    """The case asks for something the library's API cannot do: exit 127 (UNIMPLEMENTED, never FAIL)."""


# -- events ------------------------------------------------------------------------------------------


class Events:
    """The event lines of the case in flight. Thread-safe (websocket-client reads in a thread); after
    ``close`` nothing more is printed for that case, so a late timeout cannot add a second close."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._closed = False

    def begin(self) -> None:
        """A new case: the previous case's close no longer silences anything."""
        with self._lock:
            self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def emit(self, event: str, **fields: Any) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = event == "close"
            _write({"event": event, **fields})

    def done(self, case: str, code: int) -> None:
        """The line that ends a case in persistent mode (always printed, even after ``close``)."""
        with self._lock:
            self._closed = True  # a thread of the finished case must not print into the next one
            _write({"event": "done", "case": case, "exit": code})


def _write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


events = Events()
emit = events.emit


def emit_message(kind: str, data: bytes) -> None:
    emit("message", type=kind, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def fail(message: str | None) -> None:
    """An error event (unless ``message`` is None: already reported), then close 1006, not clean."""
    with events._lock:
        if message is not None:
            emit("error", message=message)
        emit("close", code=ABNORMAL_CLOSURE, reason="", wasClean=False)


# -- what a case asks for ----------------------------------------------------------------------------


@dataclass
class CaseRequest:
    """One case for the adapter: where to connect, what to offer, and what to do once connected.

    ``interop`` is the parsed plan of an interop scenario (adapter-protocol §2) or None for a
    conformance case; ``scenario``/``delay_ms`` are the client scenario of docs/targets.md.
    """

    case: str
    url: str
    protocols: list[str]
    scenario: str | None = None
    delay_ms: int = 0
    interop: Plan | None = None

    def echo_delay(self, supported: Sequence[str] = (SLOW_READER,)) -> float:
        """Seconds to sleep before handling each message of the echo client: ``slow-reader`` waits
        ``delay_ms``, no scenario 0; any other scenario is ``Unsupported`` (an adapter must never
        ignore one it does not know)."""
        if not self.scenario:
            return 0.0
        if self.scenario not in supported:
            raise Unsupported(f"scenario {self.scenario!r}")
        return self.delay_ms / 1000 if self.scenario == SLOW_READER else 0.0


def _split(protocols: str | Sequence[str] | None) -> list[str]:
    if protocols is None:
        return []
    items = protocols.split(",") if isinstance(protocols, str) else list(protocols)
    return [p.strip() for p in items if p and p.strip()]


def _interop(scenario: str | None, plan: Any) -> Plan | None:
    if not scenario and plan is None:
        return None
    if isinstance(plan, str):
        plan = json.loads(plan)
    return parse_plan(scenario or "", plan)


def request_from_env(url: str, protocols: str) -> CaseRequest:
    """Per-case mode: argv's URL and protocols, the scenario and the plan from the environment."""
    interop = _interop(os.environ.get("WSCONFORM_INTEROP"), os.environ.get("WSCONFORM_PLAN"))
    offered = _split(protocols)
    if interop is not None and interop.protocols is not None:
        offered = list(interop.protocols)
    return CaseRequest(
        case=url.rsplit("/", 1)[-1],
        url=url,
        protocols=offered,
        scenario=os.environ.get("WSCONFORM_SCENARIO") or None,
        delay_ms=int(os.environ.get("WSCONFORM_DELAY_MS") or 0),
        interop=interop,
    )


def request_from_line(line: str) -> CaseRequest:
    """Persistent mode: one stdin line, ``{"case", "url", "protocols", "scenario", "delay_ms",
    "interop": {"scenario", "plan"} | null}``. Raises ``ValueError`` (``PlanError``) on a bad line."""
    raw = json.loads(line)
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        raise ValueError("a case line is a JSON object with a 'url'")
    block = raw.get("interop")
    if block is not None and not isinstance(block, dict):
        raise ValueError("'interop' is an object or null")
    interop = _interop(block.get("scenario"), block.get("plan")) if block else None
    offered = _split(raw.get("protocols"))
    if interop is not None and interop.protocols is not None:
        offered = list(interop.protocols)
    return CaseRequest(
        case=str(raw.get("case") or raw["url"].rsplit("/", 1)[-1]),
        url=raw["url"],
        protocols=offered,
        scenario=raw.get("scenario") or None,
        delay_ms=int(raw.get("delay_ms") or 0),
        interop=interop,
    )


# -- the two modes -----------------------------------------------------------------------------------

Run = Callable[[CaseRequest], None]


def persistent_requested(argv: Sequence[str] | None = None) -> bool:
    """``--persistent`` in argv, or ``WSCONFORM_PERSISTENT=1`` (what the harness sets, §1)."""
    args = sys.argv[1:] if argv is None else argv
    return "--persistent" in args or os.environ.get("WSCONFORM_PERSISTENT") == "1"


def run_one(run: Run, request: CaseRequest) -> int:
    """Run one case; its exit status: 0, or 127 when the API cannot do what it asks."""
    events.begin()
    try:
        run(request)
    except Unsupported as exc:
        print(f"unsupported: {exc}", file=sys.stderr, flush=True)
        return UNSUPPORTED
    return 0


def run_per_case(run: Run, url: str | None, protocols: str) -> int:
    """Per-case mode: the case of argv and the environment."""
    if not url:
        print("--url is required (or --persistent)", file=sys.stderr)
        return 2
    try:
        request = request_from_env(url, protocols)
    except (ValueError, PlanError) as exc:
        print(f"invalid WSCONFORM_PLAN: {exc}", file=sys.stderr)
        return 2
    return run_one(run, request)


def serve_persistent(run: Run) -> int:
    """Persistent mode (§1): a case per stdin line, answered by its events and one ``done`` line.

    A case that raises is reported as a per-case process that crashed would be (its traceback on
    stderr, ``exit`` 1) and the loop goes on: the next case starts from a fresh connection and a
    fresh event loop. A line that is not a case is an error of the harness: exit 2.
    """
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = request_from_line(line)
        except (ValueError, PlanError) as exc:
            print(f"not a case line ({exc}): {line[:200]!r}", file=sys.stderr, flush=True)
            return 2
        try:
            code = run_one(run, request)
        except Exception:
            traceback.print_exc()
            code = 1
        events.done(request.case, code)
    return 0
