"""The API-event judge: a client target's reported events against the WebSocket API rules.

A client adapter prints what its API saw (``open``, ``message``, ``error``, ``close``, ``exception``).
The rules that hold for every case come from the WHATWG WebSocket standard's "fail the WebSocket
connection" and "the WebSocket connection is closed" (and RFC 6455 §7.1.5 for the codes): they are
checked for every client target. What a case asks specifically (``expect.api``: an exception thrown,
an open event or none, a close code) is the case's own question: soft, so a ``binding: whatwg`` case
records it rather than failing a library the WHATWG standard does not bind.
"""

from __future__ import annotations

from typing import Any

from harness.model.schema import Expect
from harness.observed import Observed
from harness.outcome import Outcome
from harness.verdict.base import Verdict, expectation


def hard_fail(reason: str) -> Verdict:
    """An API rule that holds for every client target (WHATWG, RFC 6455 §7.1.5)."""
    return Verdict(Outcome.FAIL, reason, basis="rule")


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
        return expectation(Outcome.UNIMPLEMENTED, "the client adapter does not support this case (exit 127)")
    if garbage:
        return hard_fail(f"the client adapter printed something that is not an event: {garbage[0]!r}"
        )
    kinds = [e.get("event") for e in events]
    api = expect.api
    if api is not None and api.throws is not None:
        thrown = [str(e.get("name")) for e in events if e.get("event") == "exception"]
        if api.throws not in thrown:
            got = f"it threw {', '.join(thrown)}" if thrown else "nothing was thrown"
            return expectation(Outcome.FAIL, f"the API call must throw {api.throws}; {got}")
    if "close" not in kinds:
        status = f"; the client exited with status {exit_code}" if exit_code else ""
        return hard_fail(f"the client API reported no close event (events: {kinds}){status}")
    close = events[kinds.index("close")]
    opened = "open" in kinds
    if api is not None and api.open is not None and opened != api.open:
        return expectation(
            Outcome.FAIL, "the client API reported open" if opened else "the client never opened"
        )
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
            return hard_fail(f"failed connection without an error event before close (events: {kinds})"
            )
        frames = [obs.close, obs.close_sent] if handshake_done else []
        allowed = {1006} | {c.code for c in frames if c is not None and c.code is not None}
        code, clean = close.get("code"), close.get("wasClean")
        if code not in allowed or (code == 1006 and clean is not False):
            return hard_fail(f"{'dropped' if dropped else 'failed'} connection reported close code {code}, "
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
        refused = refusal and _reports_failure(kinds, close)
        if refused or (obs.sent_after_close and unclean):
            # the client failed the connection instead of echoing (1002 to code 5000), or it refused
            # the frames the peer sent after its own close (§5.5.1): both allowed here, and a failed
            # connection has no close reason to report (WHATWG: the reason is "" after a failure)
            pass
        elif close.get("code") != want or close.get("wasClean") is not True:
            return hard_fail(f"clean close reported as code {close.get('code')}, wasClean "
                f"{close.get('wasClean')}; expected {want} and true",
            )
        elif sent.code is not None and close.get("reason", "") != sent.reason.decode("utf-8", "replace"):
            return hard_fail(f"close reason reported as {close.get('reason')!r}, "
                f"the close frame said {sent.reason.decode('utf-8', 'replace')!r}",
            )
    if opened and obs.response is not None:
        chosen = obs.response.get("Sec-WebSocket-Protocol") or ""
        got = events[kinds.index("open")].get("protocol", "")
        if got != chosen:
            return hard_fail(f"the API reported protocol {got!r}; the server selected {chosen!r}")
        accepted = ",".join(v.replace(" ", "") for v in obs.response.get_all("Sec-WebSocket-Extensions"))
        reported = events[kinds.index("open")].get("extensions")
        if isinstance(reported, str) and reported.replace(" ", "") != accepted:
            return hard_fail(f"the API reported extensions {reported!r}; the server accepted {accepted!r}"
            )
    if api is not None:
        if api.close_code is not None and close.get("code") != api.close_code:
            return expectation(Outcome.FAIL, f"close code {close.get('code')}, expected {api.close_code}")
        if api.close_reason is not None and close.get("reason") != api.close_reason:
            return expectation(
                Outcome.FAIL, f"close reason {close.get('reason')!r}, expected {api.close_reason!r}"
            )
        if api.clean is not None and close.get("wasClean") is not api.clean:
            return expectation(Outcome.FAIL, f"wasClean {close.get('wasClean')}, expected {api.clean}")
    return None
