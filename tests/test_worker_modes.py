"""Thread workers and process workers give the same outcomes (durations aside).

The process workers (``harness.workers``) change where a case runs, never what it does: the same
cases against the same defect-free server, once on threads and once on two worker processes, must
give identical outcomes and reasons (timings in reasons masked). Kept cheap: the Autobahn-equivalent
cases of two families.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from harness.engine import CaseResult, applies
from harness.model.loader import Case
from harness.scheduler import concurrent_shares, run_all
from harness.targets.session import TargetSession
from tests.conftest import CASES, broken_session

FAMILIES = {"framing", "fragmentation"}


def _outcomes(cases: list[Case], tmp_path: Path, processes: bool) -> dict[str, tuple[str, str]]:
    session = broken_session(tmp_path / ("processes" if processes else "threads"), None)
    got: dict[str, tuple[str, str]] = {}

    def record(result: CaseResult, worker: object) -> None:
        got[result.case.id] = (str(result.outcome), re.sub(r"\d+(\.\d+)? ?m?s\b", "T", result.reason))

    try:
        run_all(
            [c for c in cases if applies(c, session)],
            [session],
            jobs=2,
            data_dir=CASES / "data",
            trace_dir=None,
            timeout_scale=1.0,
            on_start=lambda case, worker: None,
            on_result=record,
            stop=threading.Event(),
            processes=processes,
        )
    finally:
        session.stop()
    return got


def test_threads_and_processes_agree(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    cases = [c for c in repo_cases.values() if c.family in FAMILIES and c.model.autobahn]
    assert len(cases) > 20
    threads = _outcomes(cases, tmp_path, processes=False)
    processes = _outcomes(cases, tmp_path, processes=True)
    assert set(threads) == set(processes) == {c.id for c in cases if c.model.role != "client"}
    diffs = {k: (threads[k], processes[k]) for k in threads if threads[k] != processes[k]}
    assert not diffs, diffs


def test_sessions_run_side_by_side_and_share_the_workers(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    """Two targets in one ``wsconform run`` no longer run one after the other: the second one's cases
    start before the first one's end, each case runs once per target, and the outcomes are those of
    a session run alone (the correct server passes, the broken one fails exactly its defect's cases)."""
    cases = [c for c in repo_cases.values() if c.family == "framing" and c.model.autobahn]
    good = broken_session(tmp_path / "good", None)
    bad = broken_session(tmp_path / "bad", "mask-frames")
    events: list[tuple[str, str, str]] = []

    def on_start(case: Case, worker: TargetSession) -> None:
        events.append(("start", worker.name, case.id))

    def on_result(result: CaseResult, worker: TargetSession) -> None:
        events.append(("result", worker.name, str(result.outcome)))

    try:
        run_all(
            [c for c in cases if applies(c, good)],
            [good, bad],
            jobs=4,
            data_dir=CASES / "data",
            trace_dir=None,
            timeout_scale=1.0,
            on_start=on_start,
            on_result=on_result,
            stop=threading.Event(),
            processes=True,
        )
    finally:
        good.stop()
        bad.stop()
    names = (good.name, bad.name)
    starts = {name: [i for i, e in enumerate(events) if e[:2] == ("start", name)] for name in names}
    ends = {name: [i for i, e in enumerate(events) if e[:2] == ("result", name)] for name in names}
    applicable = [c for c in cases if applies(c, good)]
    assert len(ends[good.name]) == len(ends[bad.name]) == len(applicable) > 10
    assert min(starts[bad.name]) < max(ends[good.name]), "the second target waited for the first"
    assert {e[2] for e in events if e[:2] == ("result", good.name)} == {"PASS"}
    assert "FAIL" in {e[2] for e in events if e[:2] == ("result", bad.name)}


def test_worker_shares_follow_the_number_of_cases() -> None:
    assert concurrent_shares(6, [1275, 334]) == [4, 2]
    assert concurrent_shares(8, [1275, 334]) == [6, 2]
    assert concurrent_shares(4, [1275, 334]) == [2, 2]  # at least two each
    assert concurrent_shares(4, [10, 10, 10]) == [2, 2, 2]
    assert sum(concurrent_shares(7, [5, 5])) == 7
