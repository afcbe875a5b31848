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
from harness.scheduler import run_all
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
