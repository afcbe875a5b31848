"""expected.yaml grading: how a result counts for the run, given the target's listed deviations.

Both front ends and the JUnit export grade through here, so a listed deviation means the same thing
everywhere: an outcome equal to the listed one is a known deviation (xfail for FAIL); anything else,
a fixed deviation included, turns the run red until the file is updated. ``intermittent`` entries also
accept every milder outcome (PASS; NON-STRICT for a listed FAIL): the deviation depends on timing the
harness cannot control, and the same race can end in the clean or the lenient way. A harsher outcome,
or ERROR, still turns the run red.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from harness.outcome import Outcome

#: The outcomes an ``intermittent`` entry accepts besides the listed one: the milder ends of a race.
MILDER: dict[str, frozenset[Outcome]] = {
    str(Outcome.FAIL): frozenset({Outcome.PASS, Outcome.NON_STRICT}),
    str(Outcome.NON_STRICT): frozenset({Outcome.PASS}),
    str(Outcome.INFORMATIONAL): frozenset({Outcome.PASS}),
}


class Deviation(Protocol):
    outcome: Outcome
    reason: str
    intermittent: bool


def expected_key(case_id: str, case_role: str, role: str, entries: dict[str, Any]) -> Any | None:
    """The expected.yaml entry for a case in a role.

    ``case-id@client`` / ``case-id@server`` name one role; a bare ``case-id`` names the role the case
    has, and for a ``role: both`` case the server role (client-role deviations of symmetric cases are
    always written ``@client``, so one file serves a target that plays both roles).
    """
    qualified = entries.get(f"{case_id}@{role}")
    if qualified is not None:
        return qualified
    if case_role == "both" and role != "server":
        return None
    return entries.get(case_id)


@dataclass(frozen=True)
class Grade:
    """How a result counts for the run: ``failed`` turns the run red; ``xfail`` marks a known deviation."""

    failed: bool
    xfail: bool
    message: str


def judge_record(record: dict[str, Any], *, strict: bool = False) -> Grade:
    """Grade a result record (also one read back from results.json, as the JUnit export does)."""
    outcome = Outcome(record["outcome"])
    reason = str(record.get("reason") or "")
    bad = outcome.failed or (strict and outcome is Outcome.NON_STRICT)
    expected = record.get("expected")
    if not expected:
        return Grade(bad, False, reason)
    listed = expected["outcome"]
    if expected.get("intermittent") and outcome in MILDER.get(listed, ()):
        why = expected.get("reason", "")
        return Grade(
            bad, False, f"{outcome} this time (listed as intermittent {listed}: {why}): {reason}"
        )
    if str(outcome) == listed:
        return Grade(False, bad, f"known deviation ({listed}): {expected.get('reason', '')}")
    return Grade(
        True,
        False,
        f"expected.yaml lists {listed} for this case but the outcome is {outcome} "
        f"({reason}); update expected.yaml",
    )
