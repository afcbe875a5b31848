"""What a run consists of: the targets it opens and the outcome rules both front ends share.

``wsconform run`` and the pytest plugin are thin: they ask this module which targets a run covers,
run each (case, target) pair through ``engine.run_case``, and grade a result against the target's
``expected.yaml`` with ``judge_expected`` so a listed deviation means the same thing in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.engine import CaseResult
from harness.outcome import Outcome
from harness.targets.selection import Selection, default_targets, open_sessions

__all__ = ["Grade", "Selection", "default_targets", "judge_expected", "judge_record", "open_sessions"]


@dataclass(frozen=True)
class Grade:
    """How a result counts for the run: ``failed`` turns the run red; ``xfail`` marks a known deviation."""

    failed: bool
    xfail: bool
    message: str


def judge_expected(result: CaseResult, *, strict: bool = False) -> Grade:
    return judge_record(result.record(), strict=strict)


def judge_record(record: dict[str, Any], *, strict: bool = False) -> Grade:
    """Grade a result record (also one read back from results.json, as the JUnit export does)."""
    outcome = Outcome(record["outcome"])
    reason = str(record.get("reason") or "")
    bad = outcome.failed or (strict and outcome is Outcome.NON_STRICT)
    expected = record.get("expected")
    if not expected:
        return Grade(bad, False, reason)
    listed = expected["outcome"]
    if expected.get("intermittent") and outcome is Outcome.PASS:
        why = expected.get("reason", "")
        return Grade(False, False, f"passed this time (listed as intermittent {listed}: {why})")
    if str(outcome) == listed:
        return Grade(False, bad, f"known deviation ({listed}): {expected.get('reason', '')}")
    return Grade(
        True,
        False,
        f"expected.yaml lists {listed} for this case but the outcome is {outcome} "
        f"({reason}); update expected.yaml",
    )
