"""The same target gives the same outcomes run after run.

Every server-role case runs three times against each Python server target; the outcomes must be
identical. A case whose outcome depends on timing the harness cannot control (how a target schedules
its handler against its own parser, how the kernel batches writes) must say so in the target's
expected.yaml (``intermittent: true``, with the reason): only those may differ between runs, and only
between the listed outcome and PASS. Anything else that flips is a harness bug (a wait that ends on a
timer instead of an event, a race in the peer) or an unlisted race in the target.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import pytest

from harness.engine import CaseResult, applies
from harness.model.loader import Case
from harness.scheduler import run_all
from harness.targets.availability import runner_problem
from harness.targets.session import open_session
from harness.targets.spec import load_targets
from harness.verdict.expected import MILDER
from tests.conftest import CASES, ROOT

PYTHON_SERVERS = ["websockets", "aiohttp", "wsproto", "tornado", "autobahn"]
RUNS = 3


def _run_once(cases: list[Case], target: str, log_dir: Path) -> dict[str, CaseResult]:
    session = open_session(target, targets_root=ROOT / "targets", log_dir=log_dir, role="server")
    results: dict[str, CaseResult] = {}
    try:
        run_all(
            [c for c in cases if applies(c, session)],
            [session],
            jobs=2,
            data_dir=CASES / "data",
            trace_dir=None,
            timeout_scale=1.0,
            on_start=lambda case, worker: None,
            on_result=lambda result, worker: results.__setitem__(result.case.id, result),
            stop=threading.Event(),
        )
    finally:
        session.stop()
    return results


@pytest.mark.slow
@pytest.mark.parametrize("target", PYTHON_SERVERS)
def test_outcomes_are_identical_across_runs(repo_cases: dict[str, Case], target: str, tmp_path: Path) -> None:
    spec = load_targets(ROOT / "targets")[target]
    problem = runner_problem(spec, "process", role="server")
    if problem:
        pytest.skip(f"{target} cannot run here: {problem}")
    cases = list(repo_cases.values())
    seen: dict[str, set[str]] = defaultdict(set)
    reasons: dict[str, list[str]] = defaultdict(list)
    for n in range(RUNS):
        for case_id, result in _run_once(cases, target, tmp_path / f"run{n}").items():
            seen[case_id].add(str(result.outcome))
            reasons[case_id].append(f"{result.outcome}: {result.reason[:160]}")
    flips = []
    for case_id, outcomes in sorted(seen.items()):
        if len(outcomes) == 1:
            continue
        entry = spec.expected.get(case_id)
        if entry is not None and entry.intermittent:
            listed = str(entry.outcome)
            if outcomes <= {listed} | {str(o) for o in MILDER.get(listed, ())}:
                continue
        flips.append(f"{case_id}: " + " | ".join(reasons[case_id]))
    assert not flips, f"{len(flips)} case(s) changed outcome between runs:\n" + "\n".join(flips)
