"""The interop verdict: one (client, server, scenario) graded from what the relay saw and the client reported.

Every FAIL names the **side at fault** and a rule: a wire rule of ``wire.rules`` when the relay found
one broken (the relay attributes it to the sender), else one of ``INTEROP_RULES`` below, which say
what a side of a pair must do beyond the wire rules (echo what it received, report what the wire
carried, honour the scenario's close). The side is decided by comparing the two directions: a
message the server received intact and echoed corrupted is the server's fault; one it echoed intact
that the client reported otherwise is the client's.

UNIMPLEMENTED: the client exits 127, a side declares the scenario's capability in
``interop.unsupported``, a server does not declare permessage-deflate for a compression scenario, or
permessage-deflate is not agreed on the wire (the client did not offer it, or the server declined).
Never PASS for a compression scenario without a validated agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.model.interop import Scenario
from harness.observed_pair import PairSeen, Side
from harness.outcome import Outcome
from harness.wire import extensions as ext
from harness.wire.rules import RULES, Rule

TRIGGER = "wsconform:close"

INTEROP_RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule("interop-no-connection", "docs/adapter-protocol.md §2.1", "In interop mode the client adapter "
             "connects to the URL it is given and originates the scenario's traffic.", "interop"),
        Rule("interop-refused", "RFC 6455 §4.2.2", "A server that accepts a valid opening handshake answers "
             "101 Switching Protocols.", "interop"),
        Rule("interop-client-sent", "docs/adapter-protocol.md §2.1", "The client sends the plan's messages in "  # noqa: E501
             "order, each exactly the payload its unit and size build.", "interop"),
        Rule("interop-echo", "docs/targets.md (server contract)", "The server echoes every text message as "
             "text and every binary message as binary, byte for byte, in order.", "interop"),
        Rule("interop-client-report", "RFC 6455 §6.2", "When a data frame is received the endpoint delivers "
             "the message as it arrived: the client reports every echo the wire carried, intact.", "interop"),
        Rule("interop-protocol-declared", "docs/targets.md (server contract)", "The server selects the first "
             "client-offered subprotocol among those it declares in policies.subprotocols.", "interop"),
        Rule("interop-protocol-reported", "RFC 6455 §4.1", "The subprotocol in use is the value of the "
             "server's |Sec-WebSocket-Protocol| header (the client reports that one at open).", "interop"),
        Rule("interop-ping-sent", "RFC 6455 §5.5.2", "An endpoint MAY send a Ping frame any time after the "
             "connection is established: a client asked to ping sends one with the plan's payload.",
             "interop"),
        Rule("pong-payload", "RFC 6455 §5.5.3", "A Pong frame sent in response to a Ping frame must have "
             "identical \"Application data\" as found in the message body of the Ping frame being replied "
             "to.", "interop"),
        Rule("interop-close-sent", "RFC 6455 §7.1.2", "To _Start the WebSocket Closing Handshake_ with a "
             "status code (Section 7.4) /code/ and an optional close reason (Section 7.1.6) /reason/, an "
             "endpoint MUST send a Close control frame ... whose status code is set to /code/ and whose "
             "close reason is set to /reason/.", "interop"),
        Rule("interop-close-trigger", "docs/adapter-protocol.md §2.3", "A server adapter that receives the "
             "text message `wsconform:close <code> <reason>` closes with that code and reason.", "interop"),
        Rule("api-close-reported", "RFC 6455 §7.1.5, §7.1.6", "The WebSocket Connection Close Code is the "
             "status code contained in the first Close control frame received; the Close Reason is its "
             "reason; the close was clean when the closing handshake completed.", "interop"),
        Rule("interop-not-finished", "RFC 6455 §7.1.1", "After the closing handshake both endpoints close "
             "the TCP connection (the server first); the scenario did not end within its time.", "interop"),
    )
}  # fmt: skip


def rule_definition(rule: str) -> Rule | None:
    return RULES.get(rule) or INTEROP_RULES.get(rule)


@dataclass(frozen=True, slots=True)
class PairVerdict:
    outcome: Outcome
    reason: str
    side: Side | None = None  # the side at fault (FAIL), or the side that lacks a capability
    rule: str | None = None

    def describe(self) -> str:
        who = f"{self.side}: " if self.side else ""
        return f"{self.outcome} {who}{self.reason}"


def _fail(side: Side, rule: str, detail: str) -> PairVerdict:
    definition = rule_definition(rule)
    where = f"{definition.short_section} " if definition and definition.section.startswith("RFC 6455") else ""
    return PairVerdict(Outcome.FAIL, f"{where}{rule}: {detail}", side, rule)


def unsupported(
    scenario: Scenario,
    *,
    client_unsupported: list[str],
    server_unsupported: list[str],
    server_deflate: bool,
) -> PairVerdict | None:
    """UNIMPLEMENTED before anything runs: a side declares it cannot play the scenario."""
    for side, declared in (("client", client_unsupported), ("server", server_unsupported)):
        missing = [c for c in scenario.requires if c in declared]
        if missing:
            return PairVerdict(Outcome.UNIMPLEMENTED, f"the {side} declares {missing[0]} unsupported", side)  # type: ignore[arg-type]
    if "permessage-deflate" in scenario.requires and not server_deflate:
        return PairVerdict(Outcome.UNIMPLEMENTED, "the server does not declare permessage-deflate", "server")
    return None


def _events(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == kind]


def _reported(events: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    kinds = {"text": 1, "binary": 2}
    return [
        (kinds.get(str(e.get("type")), 0), int(e.get("size", -1)), str(e.get("sha256")))
        for e in _events(events, "message")
    ]


def _first_difference(got: list[tuple[int, int, str]], want: list[tuple[int, int, str]]) -> str:
    names = {1: "text", 2: "binary"}
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            return f"message {i + 1}: {names.get(g[0], g[0])} of {g[1]} bytes (sha256 {g[2][:12]}), planned {names.get(w[0], w[0])} of {w[1]} bytes (sha256 {w[2][:12]})"  # noqa: E501
    return f"{len(got)} messages, planned {len(want)}"


def judge_pair(
    scenario: Scenario,
    pair: PairSeen,
    events: list[dict[str, Any]],
    exit_code: int | None,
    *,
    server_subprotocols: list[str],
    finished: bool = True,
    garbage: list[str] | None = None,
) -> PairVerdict:
    """Grade one pair run. ``finished``: the relay saw the connection end within the scenario's time."""
    if exit_code == 127:
        return PairVerdict(
            Outcome.UNIMPLEMENTED, "the client adapter cannot play this scenario (exit 127)", "client"
        )
    if pair.upstream_failed:
        return PairVerdict(Outcome.ERROR, pair.upstream_failed)
    if garbage:
        return _fail(
            "client",
            "interop-client-report",
            f"the adapter printed something that is not an event: {garbage[0]!r}",
        )
    if pair.connections == 0:
        return _fail(
            "client", "interop-no-connection", f"the client never connected (exit status {exit_code})"
        )
    for finding in pair.findings:
        return _fail(finding.side, finding.rule, finding.detail or "broken on the wire")
    if pair.status is None:
        if pair.client.head is None:
            return _fail(
                "client", "interop-no-connection", "the client connected but sent no opening request"
            )
        return _fail("server", "interop-refused", "no response to the opening request")
    if pair.status != 101:
        return _fail("server", "interop-refused", f"status {pair.status} to a valid opening request")
    opens = _events(events, "open")
    verdict = _negotiation(scenario, pair, opens, server_subprotocols)
    if verdict is not None:
        return verdict
    if scenario.expect.protocol == "none" and not opens:
        return PairVerdict(
            Outcome.PASS,
            "the server selected no subprotocol and the client failed the connection (allowed, §4.1)",
        )
    if not opens:
        return _fail(
            "client",
            "interop-client-report",
            f"the client reported no open event (events: {[e.get('event') for e in events]})",
        )
    verdict = _messages(scenario, pair, events)
    if verdict is not None:
        return verdict
    verdict = _ping(scenario, pair)
    if verdict is not None:
        return verdict
    verdict = _close(scenario, pair, events)
    if verdict is not None:
        return verdict
    if not finished:
        side: Side = "server" if pair.server.eof_t is None else "client"
        return _fail(
            side, "interop-not-finished", f"the {side} did not close TCP within {scenario.timeout:g} s"
        )
    note = " (permessage-deflate validated)" if pair.deflate else ""
    return PairVerdict(Outcome.PASS, f"{len(scenario.planned())} messages echoed, closed as planned{note}")


def _negotiation(
    scenario: Scenario, pair: PairSeen, opens: list[dict[str, Any]], server_subprotocols: list[str]
) -> PairVerdict | None:
    if scenario.expect.deflate and not pair.deflate:
        request = pair.client.head
        offered = request is not None and any(
            e.name == ext.PMD for e in ext.parse(request.get_all("Sec-WebSocket-Extensions"))
        )
        if not offered:
            return PairVerdict(Outcome.UNIMPLEMENTED, "the client did not offer permessage-deflate", "client")
        return PairVerdict(
            Outcome.UNIMPLEMENTED, "the server declined the permessage-deflate offer", "server"
        )
    expect = scenario.expect.protocol
    if expect == "first-supported":
        wanted = next((p for p in scenario.protocols if p in server_subprotocols), None)
        if pair.protocol != wanted:
            return _fail(
                "server",
                "interop-protocol-declared",
                f"selected {pair.protocol!r}, expected {wanted!r} of the offer {scenario.protocols}",
            )
    if opens:
        reported = opens[0].get("protocol") or ""
        if reported != (pair.protocol or ""):
            return _fail(
                "client",
                "interop-protocol-reported",
                f"reported {reported!r}, the server selected {pair.protocol or ''!r}",
            )
    return None


def _messages(scenario: Scenario, pair: PairSeen, events: list[dict[str, Any]]) -> PairVerdict | None:
    planned = scenario.planned()
    sent = [m.key for m in pair.client.messages]
    echoed = [m.key for m in pair.server.messages]
    if scenario.close.by == "server" and sent and sent[-1][0] == 1 and len(sent) == len(planned) + 1:
        sent = sent[:-1]  # the close trigger (adapter-protocol §2.3)
    if (
        len(pair.client.messages) != pair.client.messages.count
        or len(pair.server.messages) != pair.server.messages.count
    ):
        return _fail(
            "client",
            "interop-client-sent",
            f"{pair.client.messages.count} messages, more than any scenario plans",
        )
    if sent != planned:
        return _fail("client", "interop-client-sent", _first_difference(sent, planned))
    if echoed != planned:
        return _fail("server", "interop-echo", _first_difference(echoed, planned))
    reported = _reported(events)
    if reported != planned:
        return _fail("client", "interop-client-report", _first_difference(reported, planned))
    return None


def _ping(scenario: Scenario, pair: PairSeen) -> PairVerdict | None:
    if scenario.ping is None:
        return None
    payload = scenario.ping.payload.encode()
    if payload not in list(pair.client.pings):
        return _fail(
            "client", "interop-ping-sent", f"pings sent: {[bytes(p[:32]) for p in pair.client.pings]}"
        )
    if payload not in list(pair.server.pongs):
        if _close_overtook_ping(pair):
            return None  # §5.5.2: no Pong is owed once the Close has been received
        return _fail(
            "server",
            "pong-payload",
            f"pongs sent: {[bytes(p[:32]) for p in pair.server.pongs]}, ping {payload!r}",
        )
    return None


CLOSE_OVERTAKES = 1.0  # a Close within this of the ping: the pong may be skipped, not just late


def _close_overtook_ping(pair: PairSeen) -> bool:
    """The client sent its Close right behind the ping, before any pong came back.

    RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong frame in response,
    unless it already received a Close frame." A client whose API sends ping and close at once (ping
    and close in one TCP read of the server) may legally get no pong (found: libwebsockets skips it
    about one time in three, behind aiohttp, wsproto and websocket-client). A Close that comes after
    the client waited for the pong in vain is not this case: the server had time to answer."""
    ping_t, close = pair.client.last_ping_t, pair.client.close
    return ping_t is not None and close is not None and 0 <= close.t - ping_t <= CLOSE_OVERTAKES


def _close(scenario: Scenario, pair: PairSeen, events: list[dict[str, Any]]) -> PairVerdict | None:
    plan = scenario.close
    initiator, answerer = (pair.client, pair.server) if plan.by == "client" else (pair.server, pair.client)
    first = initiator.close
    if first is None or pair.first_close != plan.by:
        rule = "interop-close-sent" if plan.by == "client" else "interop-close-trigger"
        got = "no close frame" if first is None else f"the {pair.first_close} closed first"
        return _fail(plan.by, rule, f"{got}; planned close {plan.code} {plan.reason!r} by the {plan.by}")
    reason = first.reason.decode("utf-8", "replace")
    if (first.code, reason) != (plan.code, plan.reason):
        rule = "interop-close-sent" if plan.by == "client" else "interop-close-trigger"
        return _fail(plan.by, rule, f"close {first.code} {reason!r}, planned {plan.code} {plan.reason!r}")
    answerer_side: Side = "server" if plan.by == "client" else "client"
    if answerer.close is None:
        return _fail(answerer_side, "close-no-reply", f"no close frame in reply to the {plan.by}'s close")
    closes = _events(events, "close")
    if not closes:
        return _fail("client", "api-close-reported", "the client reported no close event")
    event = closes[0]
    # The code the client must report is the one in the first close it received (§7.1.5).
    received = pair.server.close
    assert received is not None
    want_code = received.code if received.code is not None else 1005
    want_reason = received.reason.decode("utf-8", "replace")
    if (event.get("code"), event.get("wasClean")) != (want_code, True):
        return _fail(
            "client",
            "api-close-reported",
            f"reported code {event.get('code')} wasClean {event.get('wasClean')}, the wire carried {want_code} in a clean closing handshake",  # noqa: E501
        )
    if plan.by == "server" and event.get("reason") != want_reason:
        return _fail(
            "client",
            "api-close-reported",
            f"reported reason {event.get('reason')!r}, the server's close carried {want_reason!r}",
        )
    return None
