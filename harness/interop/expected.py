"""``interop-expected.yaml``: known pair failures, strict like a target's ``expected.yaml``.

Each entry names a (client, server, scenario), the outcome, the side at fault, the rule, and why
(with the RFC section). A result is *expected* when it matches its entry exactly (outcome, side, rule);
a FAIL or ERROR without an entry, a result that differs from its entry, and an entry whose pair now
passes are all *unexpected*: the run fails, so the file never goes stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from harness.outcome import Outcome
from harness.verdict.interop import PairVerdict

BAD = {Outcome.FAIL, Outcome.ERROR}


class KnownFailure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client: str
    server: str
    scenario: str
    outcome: Outcome = Outcome.FAIL
    side: Literal["client", "server"] | None = None
    rule: str | None = None
    reason: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.client, self.server, self.scenario)


class ExpectedFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    known: list[KnownFailure] = []


FILE = "interop-expected.yaml"


def default_path(targets_dir: Path) -> Path:
    """Where the known pair failures of a set of targets live: beside their folders, so that the
    wheel's bundled targets carry theirs and ``--targets-dir DIR`` brings its own."""
    return targets_dir / FILE


def load(path: Path) -> dict[tuple[str, str, str], KnownFailure]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = ExpectedFile.model_validate(data).known
    out: dict[tuple[str, str, str], KnownFailure] = {}
    for entry in entries:
        if entry.key in out:
            raise ValueError(f"{path}: {entry.key} listed twice")
        out[entry.key] = entry
    return out


def judge(verdict: PairVerdict, entry: KnownFailure | None) -> tuple[bool, str]:
    """(unexpected, note): whether this result fails the run, and what the report says about it."""
    if entry is None:
        return (verdict.outcome in BAD, "")
    same = (verdict.outcome, verdict.side, verdict.rule) == (entry.outcome, entry.side, entry.rule)
    if same:
        return (False, f"expected: {entry.reason}")
    return (True, f"interop-expected.yaml says {entry.outcome} {entry.side} {entry.rule}: {entry.reason}")
