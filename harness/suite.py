"""What a run consists of: the targets it opens and the outcome rules both front ends share.

``wsconform run`` and the pytest plugin are thin: they ask this module which targets a run covers,
run each (case, target) pair through ``engine.run_case``, and grade a result against the target's
``expected.yaml`` with ``judge_expected`` (``verdict.expected``), so a deviation means the same in both.
"""

from __future__ import annotations

from harness.engine import CaseResult
from harness.targets.selection import Selection, default_targets, open_sessions
from harness.verdict.expected import Grade, judge_record

__all__ = ["Grade", "Selection", "default_targets", "judge_expected", "judge_record", "open_sessions"]


def judge_expected(result: CaseResult, *, strict: bool = False) -> Grade:
    return judge_record(result.record(), strict=strict)
