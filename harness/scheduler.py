"""Run many (case, target) pairs on several workers, each with its own target process.

Cases are independent, so a run parallelises well, but never by sharing one target process between
concurrent cases: a case that crashes the target would turn its neighbours into false FAILs. Each
worker gets its own replica of the target (own process, own free port), exactly as pytest-xdist
workers do, and takes cases from a shared queue. Targets run one after another, so at most ``jobs``
target processes are alive at any time. An interrupt stops the workers between cases; results that
finish after it are dropped rather than recorded against a target that is being torn down.

Workers are processes wherever the target can be replicated (servers: processes and containers), so
the peer's own CPU work (building, masking, parsing, hashing megabytes) uses every core instead of
sharing one GIL; the parent only records what they send back, in completion order, to the one results
file. Shared client launchers and URLs keep thread workers (``harness.workers``).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from pathlib import Path

from harness.engine import CaseResult, applies, run_case
from harness.model.loader import Case
from harness.targets.session import TargetSession
from harness.workers import can_fork, run_in_processes


def replicas(session: TargetSession, count: int) -> list[TargetSession]:
    """``count`` sessions for the same target: server processes and containers are duplicated; a
    client launcher (which starts a fresh client or container per case) is shared; a URL is not
    duplicated at all (``TargetSession.replica``)."""
    out = [session]
    for i in range(2, count + 1):
        clone = session.replica(i)
        if clone is None:
            break
        out.append(clone)
    return out


def run_all(
    cases: list[Case],
    sessions: list[TargetSession],
    *,
    jobs: int,
    data_dir: Path,
    trace_dir: Path | None,
    timeout_scale: float,
    on_start: Callable[[Case, TargetSession], None],
    on_result: Callable[[CaseResult, TargetSession], None],
    stop: threading.Event,
    processes: bool = False,
) -> None:
    """Run every applicable pair; ``on_result`` is called under a lock, in completion order.

    ``processes``: replicable targets get worker processes instead of threads (``wsconform run``).
    """
    lock = threading.Lock()
    for session in sessions:
        todo: queue.SimpleQueue[Case] = queue.SimpleQueue()
        applicable = [c for c in cases if applies(c, session)]
        for case in applicable:
            todo.put(case)
        count = min(jobs, max(1, len(applicable)))
        if processes and count > 1 and can_fork(session):
            run_in_processes(
                applicable,
                session,
                count,
                run=lambda case, worker: run_case(
                    case, worker, data_dir=data_dir, trace_dir=trace_dir, timeout_scale=timeout_scale
                ),
                on_start=on_start,
                on_result=on_result,
                stop=stop,
            )
            if stop.is_set():
                return
            continue
        workers = replicas(session, count)

        def work(worker: TargetSession, todo: queue.SimpleQueue[Case] = todo) -> None:
            while not stop.is_set():
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                with lock:
                    on_start(case, worker)
                result = run_case(
                    case, worker, data_dir=data_dir, trace_dir=trace_dir, timeout_scale=timeout_scale
                )
                if stop.is_set():
                    return
                with lock:
                    on_result(result, worker)

        threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in workers]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except BaseException:
            stop.set()  # before the targets go away, so no worker records a result against them
            raise
        finally:
            for w in workers:
                w.stop()
        if stop.is_set():
            return
