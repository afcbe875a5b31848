"""The end of a run, in words a CI log reader needs: what failed unexpectedly, what was a known
deviation, and why the exit status is what it is.

A bare count of FAIL says nothing about whether the job is red: 8 FAIL all listed in the target's
expected.yaml is a green run, 1 FAIL not listed is a red one, and a listed deviation that no longer
happens is red too (the file must be updated). ``RunTally`` grades each result once, with the same
rule as the pytest plugin and the JUnit export (``suite.judge_expected``), and keeps what the
summary and the exit status need.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from harness.engine import CaseResult
from harness.outcome import Outcome
from harness.suite import judge_expected
from harness.terminal import tally
from harness.verdict.expected import Grade

OUTCOMES = [str(o) for o in Outcome]
BAD = {"FAIL", "ERROR"}


@dataclass(frozen=True)
class Unexpected:
    target: str
    nodeid: str
    outcome: str
    message: str

    def line(self) -> str:
        return f"{self.target} {self.nodeid}: {self.outcome}: {self.message}"


@dataclass
class TargetTally:
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)  # outcome -> results that fail the run
    known: Counter[str] = field(default_factory=Counter)  # outcome -> deviations listed and seen


class RunTally:
    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.families: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        self.targets: dict[str, TargetTally] = defaultdict(TargetTally)
        self.failures: list[Unexpected] = []

    def add(self, result: CaseResult) -> Grade:
        grade = judge_expected(result, strict=self.strict)
        outcome = str(result.outcome)
        self.families[(result.target, result.case.family)][outcome] += 1
        t = self.targets[result.target]
        t.outcomes[outcome] += 1
        if grade.failed:
            t.unexpected[outcome] += 1
            self.failures.append(Unexpected(result.target, result.case.nodeid, outcome, grade.message))
        elif result.expected and result.expected.get("outcome") == outcome:
            t.known[outcome] += 1
        return grade

    @property
    def unexpected(self) -> int:
        return len(self.failures)

    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def target_lines(self) -> list[str]:
        """One line per target: all outcomes, then which FAIL/ERROR (or, strict, NON-STRICT) are
        unexpected and which are listed in expected.yaml."""
        lines = []
        for name, t in sorted(self.targets.items()):
            total = sum(t.outcomes.values())
            notes = []
            for o in OUTCOMES:
                seen, bad, known = t.outcomes[o], t.unexpected[o], t.known[o]
                if not (bad or (known and o in BAD | {"NON-STRICT"})):
                    continue
                if bad and not known:
                    some = f"{bad} of {seen}" if bad != seen else f"{bad}"
                    notes.append(f"{some} {o} unexpected")
                elif known and not bad:
                    notes.append(f"{o}: all {known} listed in expected.yaml" if known == seen
                                 else f"{o}: {known} listed in expected.yaml")  # fmt: skip
                else:
                    notes.append(f"{bad} {o} unexpected, {known} listed in expected.yaml")
            extra = f" ({'; '.join(notes)})" if notes else ""
            lines.append(f"{name}: {total} results: {tally(t.outcomes, OUTCOMES)}{extra}")
        return lines

    def exit_reason(self, code: int, *, selected: int | None = None) -> str:
        """The last line of a run: the exit status and the reason for it."""
        done = sum(sum(t.outcomes.values()) for t in self.targets.values())
        known = sum(sum(t.known.values()) for t in self.targets.values())
        known_note = f"; {known} known deviation(s) listed in expected.yaml" if known else ""
        if code == 130:
            of = f" of {selected}" if selected is not None else ""
            return (
                f"exit 130: interrupted after {done}{of} results; results.json is marked partial "
                f'("complete": false)'
            )
        if code == 0:
            allowed = "PASS, INFORMATIONAL, UNIMPLEMENTED" + ("" if self.strict else ", NON-STRICT")
            return f"exit 0: no unexpected result: every one of the {done} is {allowed} or listed{known_note}"
        by_outcome = Counter(f.outcome for f in self.failures)
        stale = sum(1 for f in self.failures if "update expected.yaml" in f.message)
        stale_note = f", {stale} of them no longer matching their expected.yaml entry" if stale else ""
        return (
            f"exit 1: {self.unexpected} unexpected result(s) ({tally(by_outcome, OUTCOMES)}) not listed "
            f"in expected.yaml{stale_note}{known_note}"
        )
