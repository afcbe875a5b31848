"""Turn an expectation and what the peer observed into an outcome with a one-line reason.

The order of checks is the order a reader would ask: did we even connect, did the target break a rule
in what it sent, did it accept or reject what it had to, did it echo the right bytes, did it close
properly. The first problem found is the verdict; every reason names what was expected and what
happened instead, and cites the rule where one decides it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.model.payloads import resolve
from harness.model.schema import Expect, HandshakeExpect, ResourcesExpect
from harness.observed import Observed
from harness.outcome import Outcome
from harness.peer.client import expected_counts
from harness.resources import describe


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str


def _codes(codes: list[int]) -> str:
    return " or ".join("no code" if c == 1005 else str(c) for c in codes)


def _reason(reason: bytes) -> str:
    """A close reason for a verdict line, shown only when there is one."""
    text = reason.decode("utf-8", "replace").strip()
    return f" ({text[:60]!r})" if text else ""


def _code(code: int | None) -> int:
    """A close frame without a status code counts as 1005, the code its receiver reports (§7.1.5)."""
    return 1005 if code is None else code


def _describe_end(obs: Observed) -> str:
    if obs.close is not None:
        code = obs.close.code if obs.close.code is not None else "no code"
        return f"target sent close ({code}) at {obs.close.t * 1000:.0f} ms"
    if obs.tcp_closed_by == "target":
        return "target dropped TCP without a close frame"
    return "target stayed open"


def _expected_messages(expect: Expect, obs: Observed, data_dir: Path) -> list[tuple[int, int, str]]:
    if expect.messages is not None:
        out = []
        for m in expect.messages:
            payload = resolve(m.payload, data_dir)
            out.append((m.opcode, len(payload), hashlib.sha256(payload).hexdigest()))
        return out
    count, _ = expected_counts(expect, obs)
    return obs.sent_messages[:count]


def _kind(opcode: int) -> str:
    return {1: "text", 2: "binary"}.get(opcode, f"opcode {opcode}")


def _check_messages(expect: Expect, obs: Observed, data_dir: Path) -> str | None:
    wanted = _expected_messages(expect, obs, data_dir)
    got = obs.messages
    for i, (opcode, length, digest) in enumerate(wanted):
        if i >= len(got):
            return (
                f"expected {len(wanted)} message(s) back, got {len(got)}: "
                f"missing {_kind(opcode)} of {length} bytes"
            )
        m = got[i]
        if (m.opcode, m.length, m.sha256) != (opcode, length, digest):
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
    wanted = _expected_messages(expect, obs, data_dir)
    got = [(m.opcode, m.length, m.sha256) for m in obs.messages]
    _, pong_count = expected_counts(expect, obs)
    pongs_ok = obs.pongs == obs.pings_sent[: len(obs.pongs)] and len(obs.pongs) <= pong_count
    return len(got) <= len(wanted) and got == wanted[: len(got)] and pongs_ok


def _check_pongs(expect: Expect, obs: Observed) -> tuple[str | None, str | None]:
    """(failure, note): pongs must answer pings in order with identical payloads (§5.5.3)."""
    _, count = expected_counts(expect, obs)
    wanted = obs.pings_sent[:count]
    got = obs.pongs
    if len(got) > len(wanted):
        return (
            f"expected {len(wanted)} pong(s), got {len(got)} (unexpected pong {got[len(wanted)][:16]!r})",
            None,
        )
    # §5.5.3: an endpoint MAY answer only the most recent of several pending pings.
    pos = 0
    for pong in got:
        while pos < len(wanted) and wanted[pos] != pong:
            pos += 1
        if pos == len(wanted):
            return f"pong payload {pong[:24]!r} answers no ping sent (§5.5.3: identical payload)", None
        pos += 1
    if wanted and (not got or got[-1] != wanted[-1]):
        return f"expected a pong for each of {len(wanted)} ping(s), got {len(got)}", None
    if len(got) < len(wanted):
        return None, f"answered {len(got)} of {len(wanted)} pings (allowed by §5.5.3)"
    return None, None


def judge(expect: Expect, obs: Observed, data_dir: Path, figures: dict[str, Any] | None = None) -> Verdict:
    verdict = _judge_strict(expect, obs, data_dir)
    if expect.resources is not None and figures is not None and verdict.outcome is not Outcome.ERROR:
        verdict = _judge_resources(expect.resources, figures, verdict)
    if expect.grade == "informational" and verdict.outcome is not Outcome.ERROR:
        return Verdict(Outcome.INFORMATIONAL, verdict.reason)
    return verdict


def _judge_resources(bounds: ResourcesExpect, figures: dict[str, Any], verdict: Verdict) -> Verdict:
    """Grade what the target absorbed against the case's bounds; lost or corrupt data stays FAIL.

    Beyond a bound is "unbounded": INFORMATIONAL by default with the figures, because RFC 6455 sets
    no number (§10.4: implementations "MUST protect themselves" against their own limits), or FAIL
    where the case says ``unbounded: fail`` (e.g. a 2^63-1 length that made the target allocate).
    """
    numbers = describe(figures)
    over = []
    growth, absorbed = figures.get("peak_rss_growth"), figures.get("absorbed_bytes")
    held = figures.get("held_bytes")
    if bounds.max_growth is not None and isinstance(growth, int) and growth > bounds.max_growth:
        over.append(f"RSS growth over {bounds.max_growth // 2**20} MiB")
    if bounds.max_held is not None and isinstance(held, int) and held > bounds.max_held:
        over.append(f"held over {bounds.max_held // 2**20} MiB")
    if bounds.max_absorbed is not None and isinstance(absorbed, int) and absorbed > bounds.max_absorbed:
        over.append(f"absorbed over {bounds.max_absorbed // 2**20} MiB")
    if verdict.outcome is Outcome.FAIL:
        return Verdict(Outcome.FAIL, f"{verdict.reason} [{numbers}]")
    if over:
        if bounds.unbounded == "fail":
            return Verdict(Outcome.FAIL, f"unbounded ({'; '.join(over)}): {numbers}; RFC 6455 §10.4")
        if verdict.outcome is Outcome.PASS:
            return Verdict(
                Outcome.INFORMATIONAL,
                f"unbounded ({'; '.join(over)}): {numbers}; data intact. RFC 6455 sets no limit "
                "(§10.4: implementations protect themselves)",
            )
        return Verdict(verdict.outcome, f"{verdict.reason}; unbounded: {numbers}")
    bounded = (bounds.max_growth, bounds.max_held, bounds.max_absorbed) != (None, None, None)
    if verdict.outcome is Outcome.PASS and bounded:
        return Verdict(Outcome.PASS, f"bounded: {numbers}; {verdict.reason}")
    return Verdict(verdict.outcome, f"{verdict.reason} [{numbers}]")


def _status_matches(status: int | None, specs: list[int | str]) -> bool:
    if status is None:
        return False
    return any(status == s if isinstance(s, int) else str(status)[0] == s[0] for s in specs)


def _status_list(specs: list[int | str]) -> str:
    return " or ".join(str(s) for s in specs)


def _judge_handshake(hx: HandshakeExpect, obs: Observed) -> Verdict | None:
    """The response against a case's handshake expectation; None when the exchange goes on (101)."""
    head = obs.response
    if head is None:
        if obs.response_dropped:
            grade = {"fail": Outcome.FAIL, "non-strict": Outcome.NON_STRICT, "pass": Outcome.PASS}[hx.drop]
            why = "server closed TCP without any HTTP response"
            if grade is not Outcome.PASS:
                why += " (§4.2.1: it returns an error code such as 400)"
            return Verdict(grade, why)
        return Verdict(Outcome.FAIL, f"no usable handshake response: {obs.handshake_error}")
    status = head.status
    note = None
    accepting = _status_matches(101, hx.status) or _status_matches(101, hx.non_strict_status)
    if status == 101 and not obs.handshake_ok and accepting:  # what every client MUST check comes first
        return Verdict(Outcome.FAIL, f"invalid handshake response: {obs.handshake_error}")
    if not _status_matches(status, hx.status):
        if not _status_matches(status, hx.non_strict_status):
            expected = _status_list(hx.status)
            return Verdict(Outcome.FAIL, f"status {status} ({head.start_line!r}), expected {expected}")
        note = f"status {status}, {_status_list(hx.status)} recommended"
    for name, value in hx.headers.items():
        present = head.get_all(name)
        if value is None and present:
            return Verdict(Outcome.FAIL, f"response has {name}: {', '.join(present)!r}; it must be absent")
        if value is not None:
            tokens = [t.strip().lower() for t in value.split(",")]
            if not set(tokens) <= set(head.tokens(name)):
                shown = ", ".join(present) if present else "no such header"
                return Verdict(Outcome.FAIL, f"response {name} is {shown!r}, expected {value!r}")
    if "protocol" in hx.model_fields_set and status == 101:
        chosen = head.get_all("Sec-WebSocket-Protocol")
        selected = chosen[0].strip() if chosen else None
        if selected != hx.protocol:
            want = repr(hx.protocol) if hx.protocol else "no subprotocol"
            why = f"server selected {selected!r}, expected {want} (offered {obs.offered_protocols})"
            if selected not in hx.non_strict_protocols:
                return Verdict(Outcome.FAIL, why)
            note = f"{note}; {why}" if note else why
    if hx.extensions == "none" and head.get_all("Sec-WebSocket-Extensions"):
        return Verdict(
            Outcome.FAIL,
            f"server accepted {head.get('Sec-WebSocket-Extensions')!r}; no offered extension was acceptable",
        )
    if status == 101:
        return Verdict(Outcome.NON_STRICT, note) if note else None
    if note:
        return Verdict(Outcome.NON_STRICT, note)
    return Verdict(Outcome.PASS, f"status {status} ({head.start_line!r}), as expected")


def _judge_strict(expect: Expect, obs: Observed, data_dir: Path) -> Verdict:
    fail = Outcome.FAIL
    if expect.handshake is not None:
        early = _judge_handshake(expect.handshake, obs)
        if early is not None and (early.outcome is not Outcome.NON_STRICT or not obs.handshake_ok):
            return early
        if early is not None:  # NON-STRICT handshake, usable connection: a worse frame verdict wins
            rest = _judge_frames(expect, obs, data_dir)
            return rest if rest.outcome is not Outcome.PASS else early
    if not obs.handshake_ok:
        return Verdict(fail, f"opening handshake failed: {obs.handshake_error}")
    return _judge_frames(expect, obs, data_dir)


def _judge_frames(expect: Expect, obs: Observed, data_dir: Path) -> Verdict:
    fail = Outcome.FAIL
    if obs.violations:
        return Verdict(fail, f"target sent an invalid frame: {obs.violations[0]}")
    if obs.unmet:
        return Verdict(fail, obs.unmet[0])
    codes = expect.fail_codes
    problem = _check_messages(expect, obs, data_dir)
    if problem is None:
        problem, note = _check_pongs(expect, obs)
    else:
        note = None
    if codes is not None:
        wanted = f"close {_codes(codes)} or TCP drop" if codes else "the target to fail the connection"
        if obs.waited_out:
            detail = f"; {problem}" if problem else ""
            if expect.stayed_open == "informational" and not problem:
                return Verdict(
                    Outcome.INFORMATIONAL, f"expected {wanted}; target stayed open, waiting for more input"
                )
            return Verdict(fail, f"expected {wanted}; target stayed open{detail}")
        if problem:
            if _only_missing_echoes(expect, obs, data_dir):
                return Verdict(
                    Outcome.NON_STRICT,
                    f"{_describe_end(obs)} as expected, but before echoing "
                    f"the valid message(s) that preceded the invalid input ({problem})",
                )
            return Verdict(fail, f"{problem}; then {_describe_end(obs)}")
        close = obs.close
        if codes and close is not None and _code(close.code) not in codes:
            got = close.code if close.code is not None else "a close frame without code"
            return Verdict(
                Outcome.NON_STRICT, f"expected {wanted}; target closed with {got}{_reason(close.reason)}"
            )
        if expect.fail_fast and obs.failed_at_checkpoint is False:
            return Verdict(
                Outcome.NON_STRICT,
                f"expected {wanted} at the offending frame; target failed only later ({_describe_end(obs)})",
            )
        return Verdict(Outcome.PASS, f"{_describe_end(obs)}, as expected")
    limit_codes = (1009, 1008)  # §7.4.1: 1009 "too big to process"; 1008 a policy (e.g. a fragment limit)
    refused = obs.target_failed and obs.close is not None and obs.close.code in limit_codes
    if expect.too_big == "informational" and refused and obs.close is not None:
        return Verdict(
            Outcome.INFORMATIONAL,
            f"target refused with {obs.close.code}{_reason(obs.close.reason)} after {len(obs.messages)} "
            "message(s): an implementation limit, which RFC 6455 §10.4 allows",
        )
    if problem:
        return Verdict(fail, f"{problem}; {_describe_end(obs)}")
    if obs.peer_disconnected:
        return Verdict(Outcome.PASS, "the peer dropped TCP as scripted; everything before it was right")
    if obs.target_failed:
        return Verdict(fail, f"valid input, yet {_describe_end(obs)}")
    if obs.close is None:
        return Verdict(fail, "no close frame in reply to the peer's close (§5.5.1)")
    if obs.tcp_closed_by != "target" and not obs.peer_is_server:
        return Verdict(fail, "server did not close TCP after the closing handshake (§5.5.1: MUST close)")
    if expect.close is not None and _code(obs.close.code) not in expect.close:
        # §5.5.1: a reply "typically echos the status code it received"; another valid code is no violation.
        return Verdict(
            Outcome.NON_STRICT,
            f"close reply carried {obs.close.code}, expected "
            f"{_codes(expect.close)} (§5.5.1: the reply typically echoes the code)",
        )
    summary = f"{len(obs.messages)} message(s), {len(obs.pongs)} pong(s), clean close"
    if obs.close.code is not None:
        summary += f" ({obs.close.code})"
    return Verdict(Outcome.PASS, f"{summary}; {note}" if note else summary)


def _reports_failure(kinds: list[Any], close: dict[str, Any]) -> bool:
    """An error event before a close event with code 1006 and wasClean false."""
    failed = close.get("code") == 1006 and close.get("wasClean") is False
    return failed and "error" in kinds and kinds.index("error") < kinds.index("close")


def judge_api(
    expect: Expect, obs: Observed, events: list[dict[str, Any]], exit_code: int | None, garbage: list[str]
) -> Verdict | None:
    """A client target's API events against the WebSocket API rules; None when they are fine.

    The rules that hold for every case (WHATWG WebSocket "fail the WebSocket connection" and "the
    WebSocket connection is closed"): a failed connection reports an error event before its close event,
    with code 1006 and wasClean false; a clean close reports the code and reason the server sent (1005
    for a close frame without a code); the protocol reported at open is the one the server selected.
    """
    if exit_code == 127:
        return Verdict(Outcome.UNIMPLEMENTED, "the client adapter does not support this case (exit 127)")
    if garbage:
        return Verdict(
            Outcome.FAIL, f"the client adapter printed something that is not an event: {garbage[0]!r}"
        )
    kinds = [e.get("event") for e in events]
    api = expect.api
    if api is not None and api.throws is not None:
        thrown = [str(e.get("name")) for e in events if e.get("event") == "exception"]
        if api.throws not in thrown:
            got = f"it threw {', '.join(thrown)}" if thrown else "nothing was thrown"
            return Verdict(Outcome.FAIL, f"the API call must throw {api.throws}; {got}")
    if "close" not in kinds:
        status = f"; the client exited with status {exit_code}" if exit_code else ""
        return Verdict(Outcome.FAIL, f"the client API reported no close event (events: {kinds}){status}")
    close = events[kinds.index("close")]
    opened = "open" in kinds
    if api is not None and api.open is not None and opened != api.open:
        return Verdict(Outcome.FAIL, "the client API reported open" if opened else "the client never opened")
    handshake_done = obs.close is not None and obs.close_sent is not None
    replied = (
        handshake_done
        and obs.close_sent is not None
        and obs.close is not None
        and (obs.close_sent.t <= obs.close.t)
    )
    codes = expect.fail_codes
    failure_reply = replied and obs.close is not None and (not codes or obs.close.code in codes)
    client_failed = codes is not None and obs.target_ended and (not replied or failure_reply)
    # A client that sent the first close with an error code failed the connection on its own (e.g. it
    # refused a non-minimal length the case only records): the failure rules apply to what it reported.
    if obs.close is not None and not replied and obs.close.code not in (None, 1000, 1001):
        client_failed = client_failed or _reports_failure(kinds, close)
    if client_failed or not handshake_done:
        # The client failed the connection (or TCP was lost): an error event, then close. RFC 6455 §7.1.5
        # gives the code of the close frame received (our echo of the client's own code) when the
        # closing handshake completed; browsers report 1006 (WHATWG "fail the WebSocket connection").
        # A connection the server merely dropped was not *failed* by the client: WHATWG fires error
        # only when the user agent was required to fail the connection, so there it is optional.
        dropped = obs.peer_disconnected and not client_failed
        if not dropped and ("error" not in kinds or kinds.index("error") > kinds.index("close")):
            return Verdict(
                Outcome.FAIL, f"failed connection without an error event before close (events: {kinds})"
            )
        frames = [obs.close, obs.close_sent] if handshake_done else []
        allowed = {1006} | {c.code for c in frames if c is not None and c.code is not None}
        code, clean = close.get("code"), close.get("wasClean")
        if code not in allowed or (code == 1006 and clean is not False):
            return Verdict(
                Outcome.FAIL,
                f"{'dropped' if dropped else 'failed'} connection reported close code {code}, "
                f"wasClean {clean}; "
                f"expected {' or '.join(map(str, sorted(allowed)))} (1006 with wasClean false)",
            )
    elif codes is not None and _reports_failure(kinds, close):
        pass  # a case that expects failure: the API may report one even if the wire reply looked normal
    elif obs.close_sent is not None and obs.close is not None:
        sent = obs.close_sent if obs.close_sent.t <= obs.close.t else obs.close
        want = sent.code if sent.code is not None else 1005
        refusal = sent is obs.close_sent and obs.close.code != sent.code
        unclean = close.get("wasClean") is False and close.get("code") in (1006, want)
        if (refusal and _reports_failure(kinds, close)) or (obs.sent_after_close and unclean):
            # the client failed the connection instead of echoing (1002 to code 5000), or it refused
            # the frames the peer sent after its own close (§5.5.1): both allowed here
            pass
        elif close.get("code") != want or close.get("wasClean") is not True:
            return Verdict(
                Outcome.FAIL,
                f"clean close reported as code {close.get('code')}, wasClean "
                f"{close.get('wasClean')}; expected {want} and true",
            )
        if sent.code is not None and close.get("reason", "") != sent.reason.decode("utf-8", "replace"):
            return Verdict(
                Outcome.FAIL,
                f"close reason reported as {close.get('reason')!r}, "
                f"the close frame said {sent.reason.decode('utf-8', 'replace')!r}",
            )
    if opened and obs.response is not None:
        chosen = obs.response.get("Sec-WebSocket-Protocol") or ""
        got = events[kinds.index("open")].get("protocol", "")
        if got != chosen:
            return Verdict(Outcome.FAIL, f"the API reported protocol {got!r}; the server selected {chosen!r}")
        accepted = ",".join(v.replace(" ", "") for v in obs.response.get_all("Sec-WebSocket-Extensions"))
        reported = events[kinds.index("open")].get("extensions")
        if isinstance(reported, str) and reported.replace(" ", "") != accepted:
            return Verdict(
                Outcome.FAIL, f"the API reported extensions {reported!r}; the server accepted {accepted!r}"
            )
    if api is not None:
        if api.close_code is not None and close.get("code") != api.close_code:
            return Verdict(Outcome.FAIL, f"close code {close.get('code')}, expected {api.close_code}")
        if api.close_reason is not None and close.get("reason") != api.close_reason:
            return Verdict(
                Outcome.FAIL, f"close reason {close.get('reason')!r}, expected {api.close_reason!r}"
            )
        if api.clean is not None and close.get("wasClean") is not api.clean:
            return Verdict(Outcome.FAIL, f"wasClean {close.get('wasClean')}, expected {api.clean}")
    return None
