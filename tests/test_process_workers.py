"""``wsconform run -j 2`` on worker processes: one results file, and a clean stop on a signal.

The same scenario as ``test_hostile``'s signal test, on two worker processes (each with its own target
replica, whose child ignores SIGTERM): after the second result a SIGINT or SIGTERM must keep every
finished result, stop every target of every worker (the ignoring children too), and leave nothing
behind for the next run, which must record every case once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_hostile import check_sound, gone, harness, load, select, server, suite

__all__ = ["suite"]  # the fixture: the suite of hostile targets, shared with test_hostile


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_worker_process_and_keeps_results(
    signame: str, suite: Path, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    argv = [*server("child-ignores-term", f"--pid-file {pids}"), *select("text-len"), "-j", "2"]
    first, second = harness(tmp_path, suite, argv, runs=2, sig={"name": signame, "after_results": 2})
    rep = first.report
    assert rep["signalled_at"] is not None, "the run ended before the signal"
    partial = load(first.snapshot / "results.jsonl")
    assert partial["complete"] is False and 2 <= len(partial["results"]) < 9
    assert all(r["outcome"] == "PASS" for r in partial["results"])
    check_sound(first, complete=False)
    assert rep["exit"] == 130
    doc = first.doc
    assert doc["complete"] is False and doc["stopped_by"] == "interrupted"
    assert len(doc["results"]) == len(partial["results"])
    assert rep["wall_s"] - rep["signalled_at"] < 15  # each worker's target: the child's 3 s grace
    check_sound(second)
    assert second.report["exit"] == 0 and len(second.doc["results"]) == 9
    assert len({r["case"] for r in second.doc["results"]}) == 9  # every case once, from two workers
    gone(pids)
