"""The wire judge: an expectation and what the peer observed on the wire, to an outcome and a reason.

The order of checks is the order a reader would ask: did we even connect, did the target break a rule
in what it sent (a named rule of ``wire.rules``: FAIL whatever the case), did it accept or reject what
it had to, did it echo the right bytes, did it close properly. The first problem found is the verdict;
every reason names what was expected and what happened instead, and cites the rule where one decides.

Failing cases: the target must fail the connection (a close frame with an error code, or dropping
TCP). A *normal* close in reply (1000, 1001, or a close frame without a code) means the target did not
detect the error: FAIL. Another error code than the case lists is NON-STRICT (§7.4.1 leaves the choice
of code to the endpoint; a 1002 where 1007 is more precise still says "error").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.model.payloads import resolve
from harness.model.schema import Expect, HandshakeExpect
from harness.observed import Observed
from harness.outcome import Outcome
from harness.verdict.base import Verdict, broken, expectation, hard_fail

LIMIT_CODES = (1009, 1008)  # §7.4.1: 1009 "too big to process"; 1008 a policy (e.g. a fragment limit)


def codes_text(codes: list[int]) -> str:
    return " or ".join("no code" if c == 1005 else str(c) for c in codes)


def close_reason_text(reason: bytes) -> str:
    """A close reason for a verdict line, shown only when there is one."""
    text = reason.decode("utf-8", "replace").strip()
    return f" ({text[:60]!r})" if text else ""


def code_or_1005(code: int | None) -> int:
    """A close frame without a status code counts as 1005, the code its receiver reports (§7.1.5)."""
    return 1005 if code is None else code


def describe_end(obs: Observed) -> str:
    if obs.close is not None:
        code = obs.close.code if obs.close.code is not None else "no code"
        return f"target sent close ({code}) at {obs.close.t * 1000:.0f} ms"
    if obs.tcp_closed_by == "target":
        return "target dropped TCP without a close frame"
    return "target stayed open"


def _kind(opcode: int) -> str:
    return {1: "text", 2: "binary"}.get(opcode, f"opcode {opcode}")


def expected_messages(expect: Expect, obs: Observed, data_dir: Path) -> list[tuple[int, int, str]]:
    if expect.messages is not None:
        out = []
        for m in expect.messages:
            payload = resolve(m.payload, data_dir)
            out.append((m.opcode, len(payload), hashlib.sha256(payload).hexdigest()))
        return out
    count, _ = expect.counts(len(obs.sent_messages), len(obs.pings_sent))
    return obs.sent_messages[:count]


def check_messages(expect: Expect, obs: Observed, data_dir: Path) -> str | None:
    wanted = expected_messages(expect, obs, data_dir)
    got = obs.messages
    for i, (opcode, length, digest) in enumerate(wanted):
        if i >= len(got):
            return (
                f"expected {len(wanted)} message(s) back, got {len(got)}: "
                f"missing {_kind(opcode)} of {length} bytes"
            )
        m = got[i]
        if m.key != (opcode, length, digest):
            return (
                f"message {i + 1}: expected {_kind(opcode)} of {length} bytes (sha256 {digest[:12]}…), "
                f"got {m.describe()}"
            )
    if len(got) > len(wanted):
        extra = got[len(wanted)]
        return (
            f"expected {len(wanted)} message(s) back, got {len(got)}: "
            f"unexpected {extra.describe()} at {extra.t * 1000:.0f} ms"
        )
    return None


def _only_missing_echoes(expect: Expect, obs: Observed, data_dir: Path) -> bool:
    """True when the target sent a correct prefix of the expected echoes and pongs, and nothing else."""
    wanted = expected_messages(expect, obs, data_dir)
    got = [m.key for m in obs.messages.head]
    _, pong_count = expect.counts(len(obs.sent_messages), len(obs.pings_sent))
    pongs = obs.pongs.head
    pongs_ok = pongs == obs.pings_sent[: len(pongs)] and len(obs.pongs) <= pong_count
    return len(obs.messages) <= len(wanted) and got == wanted[: len(got)] and pongs_ok


def check_pongs(expect: Expect, obs: Observed) -> tuple[str | None, str | None]:
    """(failure, note): pongs must answer pings in order with identical payloads (§5.5.3)."""
    _, count = expect.counts(len(obs.sent_messages), len(obs.pings_sent))
    wanted = obs.pings_sent[:count]
    got = obs.pongs
    if len(got) > len(wanted):
        extra = got[len(wanted)]
        return f"expected {len(wanted)} pong(s), got {len(got)} (unexpected pong {extra[:16]!r})", None
    # §5.5.3: an endpoint MAY answer only the most recent of several pending pings.
    pos = 0
    for pong in got:
        while pos < len(wanted) and wanted[pos] != pong:
            pos += 1
        if pos == len(wanted):
            return f"pong payload {pong[:24]!r} answers no ping sent (§5.5.3: identical payload)", None
        pos += 1
    if wanted and (not got or got.last != wanted[-1]):
        return f"expected a pong for each of {len(wanted)} ping(s), got {len(got)}", None
    if len(got) < len(wanted):
        return None, f"answered {len(got)} of {len(wanted)} pings (allowed by §5.5.3)"
    return None, None


def _status_matches(status: int | None, specs: list[int | str]) -> bool:
    if status is None:
        return False
    return any(status == s if isinstance(s, int) else str(status)[0] == s[0] for s in specs)


def _status_list(specs: list[int | str]) -> str:
    return " or ".join(str(s) for s in specs)


def judge_handshake(hx: HandshakeExpect, obs: Observed) -> Verdict | None:
    """The response against a case's handshake expectation; None when the exchange goes on (101)."""
    head = obs.response
    if head is None:
        if obs.response_dropped:
            grade = {"fail": Outcome.FAIL, "non-strict": Outcome.NON_STRICT, "pass": Outcome.PASS}[hx.drop]
            why = "server closed TCP without any HTTP response"
            if grade is not Outcome.PASS:
                why += " (§4.2.1: it returns an error code such as 400)"
            return expectation(grade, why)
        if obs.response_silent:  # still waiting for more of a request it cannot parse: the case's question
            return expectation(Outcome.FAIL, f"no usable handshake response: {obs.handshake_error}")
        # A head without end, or cut by a drop: no handshake happened at all, whatever the case asked.
        return hard_fail(f"no usable handshake response: {obs.handshake_error}")
    status = head.status
    if status is None:
        return hard_fail(f"the response is not HTTP: {head.start_line[:80]!r}")
    note = None
    accepting = _status_matches(101, hx.status) or _status_matches(101, hx.non_strict_status)
    if status == 101 and obs.handshake_violation is not None and accepting:
        return broken(obs.handshake_violation, "invalid handshake response")  # what every client MUST check
    if not _status_matches(status, hx.status):
        if not _status_matches(status, hx.non_strict_status):
            expected = _status_list(hx.status)
            return expectation(Outcome.FAIL, f"status {status} ({head.start_line!r}), expected {expected}")
        note = f"status {status}, {_status_list(hx.status)} recommended"
    for name, value in hx.headers.items():
        present = head.get_all(name)
        if value is None and present:
            return expectation(
                Outcome.FAIL, f"response has {name}: {', '.join(present)!r}; it must be absent"
            )
        if value is not None:
            tokens = [t.strip().lower() for t in value.split(",")]
            if not set(tokens) <= set(head.tokens(name)):
                shown = ", ".join(present) if present else "no such header"
                return expectation(Outcome.FAIL, f"response {name} is {shown!r}, expected {value!r}")
    if "protocol" in hx.model_fields_set and status == 101:
        chosen = head.get_all("Sec-WebSocket-Protocol")
        selected = chosen[0].strip() if chosen else None
        if selected != hx.protocol:
            want = repr(hx.protocol) if hx.protocol else "no subprotocol"
            why = f"server selected {selected!r}, expected {want} (offered {obs.offered_protocols})"
            if selected not in hx.non_strict_protocols:
                return expectation(Outcome.FAIL, why)
            note = f"{note}; {why}" if note else why
    if hx.extensions == "none" and head.get_all("Sec-WebSocket-Extensions"):
        return expectation(
            Outcome.FAIL,
            f"server accepted {head.get('Sec-WebSocket-Extensions')!r}; no offered extension was acceptable",
        )
    if status == 101:
        return expectation(Outcome.NON_STRICT, note) if note else None
    if note:
        return expectation(Outcome.NON_STRICT, note)
    return expectation(Outcome.PASS, f"status {status} ({head.start_line!r}), as expected")


def judge_wire(expect: Expect, obs: Observed, data_dir: Path) -> Verdict:
    """The whole wire verdict of one case (before resource grades, API events and bindings)."""
    if obs.connect_failed:
        return hard_fail(f"no connection: {obs.handshake_error}")
    if obs.peer_is_server and obs.handshake_violation is not None:
        return broken(obs.handshake_violation, "client request breaks a rule")
    if expect.handshake is not None:
        early = judge_handshake(expect.handshake, obs)
        if early is not None and (early.outcome is not Outcome.NON_STRICT or not obs.handshake_ok):
            return early
        if early is not None:  # NON-STRICT handshake, usable connection: a worse frame verdict wins
            rest = judge_frames(expect, obs, data_dir)
            return rest if rest.outcome is not Outcome.PASS else early
    if not obs.handshake_ok:
        if obs.handshake_violation is not None:
            return broken(obs.handshake_violation, "invalid handshake response")
        return hard_fail(f"opening handshake failed: {obs.handshake_error}")
    if obs.unimplemented is not None:
        return expectation(Outcome.UNIMPLEMENTED, obs.unimplemented)
    return judge_frames(expect, obs, data_dir)


def judge_frames(expect: Expect, obs: Observed, data_dir: Path) -> Verdict:
    fail = Outcome.FAIL
    if obs.violations:
        first = obs.violations.head[0] if obs.violations.head else obs.violations[-1]
        more = f" (and {len(obs.violations) - 1} more)" if len(obs.violations) > 1 else ""
        return broken(first).with_reason(f"target sent an invalid frame: {first}{more}")
    if obs.oversized_frame is not None:
        return hard_fail(
            f"target sent a frame declaring {obs.oversized_frame} bytes, beyond the {obs.frame_cap} bytes "
            "the peer buffers for one frame (more than anything this case needs); the peer dropped the "
            "connection"
        )
    if obs.unmet:
        return expectation(fail, obs.unmet[0])
    codes = expect.fail_codes
    problem = check_messages(expect, obs, data_dir)
    if problem is None:
        problem, note = check_pongs(expect, obs)
    else:
        note = None
    if codes is not None:
        return _judge_failing(expect, obs, data_dir, codes, problem)
    refused = obs.target_failed and obs.close is not None and obs.close.code in LIMIT_CODES
    if expect.too_big == "informational" and refused and obs.close is not None:
        return expectation(
            Outcome.INFORMATIONAL,
            f"target refused with {obs.close.code}{close_reason_text(obs.close.reason)} after "
            f"{len(obs.messages)} message(s): an implementation limit, which RFC 6455 §10.4 allows",
        )
    if problem:
        return expectation(fail, f"{problem}; {describe_end(obs)}")
    if obs.peer_disconnected:
        return expectation(Outcome.PASS, "the peer dropped TCP as scripted; everything before it was right")
    if obs.target_failed:
        return expectation(fail, f"valid input, yet {describe_end(obs)}")
    if obs.close is None:
        why = "§5.5.1 close-no-reply: no close frame in reply to the peer's close"
        return hard_fail(why, "close-no-reply")
    if obs.tcp_closed_by != "target" and not obs.peer_is_server:
        return hard_fail(
            "§5.5.1 server-keeps-tcp-open: server did not close TCP after the closing handshake",
            "server-keeps-tcp-open",
        )
    if expect.close is not None and code_or_1005(obs.close.code) not in expect.close:
        # §5.5.1: a reply "typically echos the status code it received"; another valid code is no violation.
        return expectation(
            Outcome.NON_STRICT,
            f"close reply carried {obs.close.code}, expected "
            f"{codes_text(expect.close)} (§5.5.1: the reply typically echoes the code)",
        )
    summary = f"{len(obs.messages)} message(s), {len(obs.pongs)} pong(s), clean close"
    if obs.close.code is not None:
        summary += f" ({obs.close.code})"
    return expectation(Outcome.PASS, f"{summary}; {note}" if note else summary)


def _judge_failing(
    expect: Expect, obs: Observed, data_dir: Path, codes: list[int], problem: str | None
) -> Verdict:
    """A case in which the target must fail the connection."""
    fail = Outcome.FAIL
    wanted = f"close {codes_text(codes)} or TCP drop" if codes else "the target to fail the connection"
    if obs.waited_out:
        detail = f"; {problem}" if problem else ""
        if expect.stayed_open == "informational" and not problem:
            return expectation(
                Outcome.INFORMATIONAL, f"expected {wanted}; target stayed open, waiting for more input"
            )
        return expectation(fail, f"expected {wanted}; target stayed open{detail}")
    close = obs.close
    if close is not None and close.normal:
        got = close.code if close.code is not None else "a close frame without a code"
        return expectation(
            fail,
            f"expected {wanted}; target closed normally ({got}){close_reason_text(close.reason)}, so it did "
            "not detect the error (§7.1.7: _Fail the WebSocket Connection_; 1000 means the purpose of "
            "the connection was fulfilled, §7.4.1)",
        )
    if problem:
        if _only_missing_echoes(expect, obs, data_dir):
            return expectation(
                Outcome.NON_STRICT,
                f"{describe_end(obs)} as expected, but before echoing "
                f"the valid message(s) that preceded the invalid input ({problem})",
            )
        return expectation(fail, f"{problem}; then {describe_end(obs)}")
    if codes and close is not None and code_or_1005(close.code) not in codes:
        return expectation(
            Outcome.NON_STRICT,
            f"expected {wanted}; target closed with {close.code}{close_reason_text(close.reason)}",
        )
    if expect.fail_fast and obs.failed_at_checkpoint is False:
        return expectation(
            Outcome.NON_STRICT,
            f"expected {wanted} at the offending frame; target failed only later ({describe_end(obs)})",
        )
    return expectation(Outcome.PASS, f"{describe_end(obs)}, as expected")
