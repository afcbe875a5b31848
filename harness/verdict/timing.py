"""The timing grade: how long the target took to answer a handshake message, against the case's bound.

``expect.respond_within`` is the robustness family's question for inputs a correct parser handles
in milliseconds and a backtracking one in seconds (a run of 8000 spaces in Sec-WebSocket-Protocol,
an unclosed quoted string of backslashes in Sec-WebSocket-Extensions): the time from the end of the
peer's request (or, for a client target, of its response) to the target's first byte or its drop.
Whatever the target answered, answering late is FAIL: RFC 6455 §10.4 asks implementations to
protect themselves, and a server that spends seconds on one header denies service to everybody
else. Within the bound the wire verdict stands, with the measured time appended to its reason.

The second connection of a ``probe`` is judged here too when the handshake was refused: a server
that answers 431 on time but meanwhile served nobody else failed the same question.
"""

from __future__ import annotations

from harness.model.schema import Expect
from harness.observed import Observed
from harness.outcome import Outcome
from harness.verdict.base import Verdict, expectation

SECTION = "RFC 6455 §10.4"


def judge_probe(obs: Observed, verdict: Verdict) -> Verdict:
    """A failed probe is FAIL even where the handshake verdict came first (a refusal on time)."""
    if not obs.unmet or verdict.outcome.failed:
        return verdict
    return expectation(Outcome.FAIL, f"{obs.unmet[0]} (after {verdict.outcome}: {verdict.reason})")


def judge_response_time(expect: Expect, obs: Observed, verdict: Verdict) -> Verdict:
    """FAIL beyond ``respond_within``; else the wire verdict with the measured time appended."""
    bound = expect.respond_within
    if bound is None or obs.connect_failed or obs.answer_started_t is None:
        return verdict
    took = obs.response_s
    if took is None:
        return expectation(
            Outcome.FAIL,
            f"no answer at all (neither a response byte nor a drop) within the case's budget, "
            f"where {bound:g} s was the bound ({SECTION}: a target protects itself; it does not hang)",
        )
    measured = f"{took * 1000:.1f} ms"
    if took > bound:
        return expectation(
            Outcome.FAIL,
            f"answered after {measured}, beyond the {bound:g} s bound for an input a linear parser "
            f"handles in milliseconds ({SECTION}); then: {verdict.outcome}: {verdict.reason}",
        )
    return verdict.with_reason(f"{verdict.reason}; answered in {measured} (bound {bound:g} s)")
