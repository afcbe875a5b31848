"""Interop mode for Python client adapters (docs/adapter-protocol.md §2): the plan and how to play it.

In an interop run the client target *originates* the traffic against a real server target (through
the harness's validating relay). This module turns the plan into payloads and plays it over a thin
wrapper of the library's connection, so every adapter sends, paces, pings and closes the same way
and only the library calls differ:

* payloads are built, never shipped: ``unit`` (UTF-8) or ``unit_hex`` repeated and cut to ``size``
  bytes, checked against ``sha256`` before anything is sent (a wrong builder would look like the
  server corrupting data);
* ``messages`` ``repeat`` times in order; ``pace: echo`` waits for each echo, ``pace: burst`` sends
  them all while a reader collects the echoes (reading concurrently, so a burst larger than the
  socket buffers cannot deadlock the pair: the server waits for us to read its echoes while we wait
  for it to read our messages);
* ``read_delay_ms`` before each received message is handled (a slow reader), ``ping`` after the last
  echo, then ``close``: the API's close with code and reason, or the server's close trigger (the text
  message ``wsconform:close C R``, §2.3) and the server's close awaited.

A plan that needs what the library's API lacks (``Plan.needs``: ``ping``, ``permessage-deflate``) is
refused before connecting; the adapter exits 127.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

TRIGGER = "wsconform:close"
PONG_TIMEOUT = 5.0  # seconds to wait for the pong where the API lets us (it is not reported)
PACES = ("echo", "burst")

Report = Callable[[str, bytes], None]  # emits the event of one received message


class PlanError(ValueError):
    """A plan this adapter cannot read, or a payload that does not hash to the plan's sha256."""


class ConnectionEnded(Exception):
    """The library says the connection is closing or closed: stop sending, let the reader finish."""


@dataclass(frozen=True)
class PlannedMessage:
    type: str  # "text" | "binary"
    payload: bytes

    @property
    def data(self) -> str | bytes:
        """What the library's send() takes: str for text, bytes for binary."""
        return self.payload.decode("utf-8") if self.type == "text" else self.payload


@dataclass(frozen=True)
class ClosePlan:
    by: str  # "client" | "server"
    code: int
    reason: str


@dataclass(frozen=True)
class Plan:
    scenario: str
    messages: tuple[PlannedMessage, ...]
    repeat: int = 1
    pace: str = "echo"
    protocols: tuple[str, ...] | None = None
    deflate: bool = False  # the plan has a permessage_deflate block: offer compression
    deflate_offer: str | None = None  # the exact offer, when given
    ping: bytes | None = None
    read_delay: float = 0.0
    close: ClosePlan = ClosePlan("client", 1000, "")

    @property
    def total(self) -> int:
        return len(self.messages) * self.repeat

    def sequence(self) -> Iterator[PlannedMessage]:
        for _ in range(self.repeat):
            yield from self.messages

    def needs(self) -> set[str]:
        """The capabilities this plan asks of the API beyond connect, send, receive and close."""
        out = set()
        if self.ping is not None:
            out.add("ping")
        if self.deflate:
            out.add("permessage-deflate")
        return out

    def budget(self, base: float) -> float:
        """Seconds the whole scenario may take: ``base``, plus the reader's prescribed sleeps."""
        return base + self.read_delay * self.total

    def offer_parameters(self) -> dict[str, str | None] | None:
        """The permessage-deflate offer's parameters (``None`` for a value-less one), None if no
        exact offer was given. Raises ``PlanError`` for an offer of another extension (``parse_plan``
        does, so an adapter never sees one)."""
        if self.deflate_offer is None:
            return None
        name, *params = (part.strip() for part in self.deflate_offer.split(";"))
        if name != "permessage-deflate":
            raise PlanError(f"not a permessage-deflate offer: {self.deflate_offer!r}")
        out: dict[str, str | None] = {}
        for param in params:
            if not param:
                continue
            key, eq, value = param.partition("=")
            out[key.strip()] = value.strip().strip('"') if eq else None
        return out


def build_payload(spec: Mapping[str, Any]) -> bytes:
    """``unit`` (UTF-8) or ``unit_hex`` repeated and cut to ``size`` bytes, checked against ``sha256``."""
    size = int(spec.get("size", 0))
    if "unit_hex" in spec:
        unit = bytes.fromhex(str(spec["unit_hex"]))
    else:
        unit = str(spec.get("unit", "")).encode("utf-8")
    if size < 0 or (size and not unit):
        raise PlanError(f"cannot build {size} bytes from an empty unit")
    payload = (unit * (size // len(unit) + 1))[:size] if size else b""
    expected = spec.get("sha256")
    if expected and hashlib.sha256(payload).hexdigest() != str(expected).lower():
        raise PlanError(f"the payload built for {dict(spec)!r} does not hash to the plan's sha256")
    return payload


def parse_plan(scenario: str, raw: Mapping[str, Any]) -> Plan:
    """The plan of adapter-protocol §2.1 (every field optional except ``messages``)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("messages"), list):
        raise PlanError("a plan is an object with a 'messages' list")
    messages = []
    for spec in raw["messages"]:
        kind = spec.get("type")
        if kind not in ("text", "binary"):
            raise PlanError(f"message type {kind!r}")
        payload = build_payload(spec)
        if kind == "text":
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PlanError(f"a text payload that is not UTF-8 (a cut character?): {exc}") from exc
        messages.append(PlannedMessage(kind, payload))
    pace = raw.get("pace", "echo")
    if pace not in PACES:
        raise PlanError(f"pace {pace!r}")
    deflate = raw.get("permessage_deflate")
    ping = raw.get("ping")
    close = raw.get("close") or {}
    by, code, reason = close.get("by", "client"), int(close.get("code", 1000)), str(close.get("reason") or "")
    if by not in ("client", "server"):
        raise PlanError(f"close.by {by!r}")
    protocols = raw.get("protocols")
    plan = Plan(
        scenario=scenario,
        messages=tuple(messages),
        repeat=int(raw.get("repeat", 1)),
        pace=pace,
        protocols=tuple(protocols) if protocols is not None else None,
        deflate=deflate is not None,
        deflate_offer=(deflate or {}).get("offer") if isinstance(deflate, Mapping) else None,
        ping=_ping_payload(ping) if ping is not None else None,
        read_delay=int(raw.get("read_delay_ms", 0)) / 1000,
        close=ClosePlan(by, code, reason),
    )
    plan.offer_parameters()  # an offer of another extension is the plan's error, found before connecting
    return plan


def _ping_payload(ping: Mapping[str, Any]) -> bytes:
    if "payload_hex" in ping:
        return bytes.fromhex(str(ping["payload_hex"]))
    return str(ping.get("payload", "")).encode("utf-8")


def trigger(code: int, reason: str) -> PlannedMessage:
    """The text message that asks a server adapter to close with ``code`` and ``reason`` (§2.3)."""
    return PlannedMessage("text", f"{TRIGGER} {code} {reason}".encode())


# -- playing a plan ------------------------------------------------------------------------------------


class Connection(Protocol):
    """What an adapter wraps around its library's connection for ``play``.

    ``receive`` returns the next data message as ``(type, payload)`` or None once the connection is
    closing or closed (the adapter keeps the close details for its close event); ``send``, ``ping``
    and ``close`` raise ``ConnectionEnded`` when the library says the connection is gone. ``ping``
    returns once the ping is sent, or once the pong came if the API can wait for it.
    """

    async def send(self, message: PlannedMessage) -> None: ...

    async def receive(self) -> tuple[str, bytes] | None: ...

    async def ping(self, payload: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


async def play(plan: Plan, conn: Connection, report: Report) -> None:
    """Play ``plan`` over ``conn``; ``report(kind, payload)`` emits each received message's event.

    Returns when the connection has ended (the reader got None); the caller reports the close.
    """
    received = 0
    ended = False
    changed = asyncio.Condition()

    async def reader() -> None:
        nonlocal received, ended
        try:
            while (message := await conn.receive()) is not None:
                if plan.read_delay:
                    await asyncio.sleep(plan.read_delay)
                report(*message)
                async with changed:
                    received += 1
                    changed.notify_all()
        finally:
            async with changed:
                ended = True
                changed.notify_all()

    async def echoes(count: int) -> bool:
        async with changed:
            await changed.wait_for(lambda: received >= count or ended)
            return received >= count

    task = asyncio.ensure_future(reader())
    with contextlib.suppress(ConnectionEnded):
        await _originate(plan, conn, echoes)
    await task


async def _originate(plan: Plan, conn: Connection, echoes: Callable[[int], Awaitable[bool]]) -> None:
    sent = 0
    for message in plan.sequence():
        await conn.send(message)
        sent += 1
        if plan.pace == "echo" and not await echoes(sent):
            return
    if not await echoes(sent):
        return
    if plan.ping is not None:
        await conn.ping(plan.ping)
    if plan.close.by == "server":
        await conn.send(trigger(plan.close.code, plan.close.reason))
    else:
        await conn.close(plan.close.code, plan.close.reason)


class SyncConnection(Protocol):
    """``Connection`` for a blocking API (websocket-client). ``close`` sends the Close frame and reads
    until the server's answer; ``wait_close`` reads until the server's own Close frame (and answers it).
    """

    def send(self, message: PlannedMessage) -> None: ...

    def receive(self) -> tuple[str, bytes] | None: ...

    def ping(self, payload: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def wait_close(self) -> None: ...


def play_sync(plan: Plan, conn: SyncConnection, report: Report, *, timeout: float) -> None:
    """``play`` for a blocking API: a reader thread receives the plan's echoes while this thread sends.

    The reader stops after the last expected echo, so that only this thread reads from then on: a
    blocking library's own close (which reads until the server's Close frame) must not race a reader
    that would answer that Close a second time.
    """
    state = {"received": 0, "ended": False}
    changed = threading.Condition()

    def reader() -> None:
        try:
            for _ in range(plan.total):
                message = conn.receive()
                if message is None:
                    return
                if plan.read_delay:
                    time.sleep(plan.read_delay)
                report(*message)
                with changed:
                    state["received"] += 1
                    changed.notify_all()
        finally:
            with changed:
                state["ended"] = True
                changed.notify_all()

    def echoes(count: int) -> bool:
        with changed:
            changed.wait_for(lambda: state["received"] >= count or bool(state["ended"]), timeout)
            return state["received"] >= count

    thread = threading.Thread(target=reader, name="wsconform-reader", daemon=True)
    thread.start()
    try:
        sent = 0
        for message in plan.sequence():
            conn.send(message)
            sent += 1
            if plan.pace == "echo" and not echoes(sent):
                return
        if not echoes(sent):
            return
        thread.join(timeout)
        if plan.ping is not None:
            conn.ping(plan.ping)
        if plan.close.by == "server":
            conn.send(trigger(plan.close.code, plan.close.reason))
            conn.wait_close()
        else:
            conn.close(plan.close.code, plan.close.reason)
    except ConnectionEnded:
        pass
    finally:
        thread.join(timeout)
