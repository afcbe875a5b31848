"""A verdict: an outcome, a one-line reason, and what it rests on.

``basis`` says what decided the verdict, which is what later grading may and may not soften:

- ``expectation``: the case's own question (an echo, a close code, a status, an API call that must
  throw). A ``binding: whatwg`` case softens a FAIL of this kind to INFORMATIONAL on a target the
  WHATWG standard does not bind, and ``grade: informational`` records it instead of grading it.
- ``rule``: a rule of ``harness.wire.rules`` the target broke (``rule`` names it). Always FAIL under a
  binding; ``grade: informational`` records it, because such cases ask about behaviour the RFC leaves
  open and the rule at stake is usually the question itself (a close code outside every range).
- ``exchange``: there was no exchange to ask anything about: the connection or the opening handshake
  failed where the case did not ask about it, the case missed its hard deadline, the target crashed.
  A case about the handshake asks about the response, so for it "no exchange" means no HTTP response
  at all: a head without end, one cut short by a drop, a start line that is not HTTP (a server that
  sends nothing while it waits for more of the request is the case's answer, not this). Never softened.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from harness.outcome import Outcome
from harness.wire.rules import Violation

Basis = Literal["expectation", "rule", "exchange"]


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str
    rule: str | None = None
    basis: Basis = "exchange"

    def with_reason(self, reason: str) -> Verdict:
        return replace(self, reason=reason)

    def graded(self, outcome: Outcome, reason: str | None = None) -> Verdict:
        return replace(self, outcome=outcome, reason=self.reason if reason is None else reason)


def expectation(outcome: Outcome, reason: str) -> Verdict:
    """A verdict on the case's own question."""
    return Verdict(outcome, reason, basis="expectation")


def broken(v: Violation, what: str = "target sent an invalid frame") -> Verdict:
    """FAIL for a named rule the target broke."""
    return Verdict(Outcome.FAIL, f"{what}: {v}", rule=v.rule, basis="rule")


def hard_fail(reason: str, rule: str | None = None) -> Verdict:
    """FAIL for a rule (when named) or for an exchange that never happened."""
    return Verdict(Outcome.FAIL, reason, rule=rule, basis="rule" if rule else "exchange")
