"""The only place an outcome is decided (docs/architecture.md, "Where each verdict is decided")."""

from harness.outcome import Outcome
from harness.verdict.judge import Verdict, judge, judge_api

__all__ = ["Outcome", "Verdict", "judge", "judge_api"]
