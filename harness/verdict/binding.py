"""Bindings and grades: how far a verdict on a case's question binds the target.

``binding: whatwg`` marks a rule of the WHATWG WebSockets standard rather than RFC 6455 (a 101 that
selects no subprotocol after the client offered some must fail the connection, Fetch "establish a
WebSocket connection"). It binds targets that declare ``policies.whatwg_api`` (the browsers); for any
other target a FAIL *of the case's own expectation* is recorded as INFORMATIONAL with what the target
did. A wire violation, a missing close reply or a missed deadline in the same case stays FAIL: those
are RFC 6455 rules that bind everybody.

``grade: informational`` records what the target did where no rule decides. It applies to the
question the case asks; a case whose exchange never happened (no connection, a failed handshake the
case did not ask about, a crash, a deadline) is FAIL all the same.
"""

from __future__ import annotations

from typing import Literal

from harness.outcome import Outcome
from harness.verdict.base import Verdict


def apply_binding(verdict: Verdict, binding: Literal["rfc", "whatwg"], whatwg_api: bool) -> Verdict:
    if binding != "whatwg" or whatwg_api or verdict.outcome is not Outcome.FAIL:
        return verdict
    if verdict.basis != "expectation":
        return verdict
    return verdict.graded(
        Outcome.INFORMATIONAL, f"WHATWG API rule, not binding on this target: {verdict.reason}"
    )


def apply_grade(verdict: Verdict, grade: Literal["strict", "informational"]) -> Verdict:
    if grade != "informational" or verdict.outcome in (Outcome.ERROR, Outcome.UNIMPLEMENTED):
        return verdict
    if verdict.basis == "exchange" and verdict.outcome is Outcome.FAIL:
        return verdict
    return verdict.graded(Outcome.INFORMATIONAL)
