"""Run many (case, target) pairs on several workers, each with its own target process.

Cases are independent, so a run parallelises well, but never by sharing one target process between
concurrent cases: a case that crashes the target would turn its neighbours into false FAILs. Each
worker gets its own replica of the target (own process, own free port), exactly as pytest-xdist
workers do, and takes cases from a shared queue. With thread workers targets run one after another,
so at most ``jobs`` target processes are alive at any time; ``wsconform run`` runs them side by side
and shares the workers out (``concurrent_shares``). An interrupt stops the workers between cases;
results that finish after it are dropped rather than recorded against a target being torn down.

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
from harness.workers import ProcessPool, can_fork, drive


def longest_first(cases: list[Case]) -> list[Case]:
    """Cases in the order a run finishes soonest: long ones first (longest processing time first).

    A run's wall time is its slowest worker's; a 10 s case taken last keeps one worker busy while the
    others idle. A case's declared budget (``timeout``) and its fail-fast pauses are what make it
    long, so those go first; the thousand millisecond cases fill the gaps. Stable otherwise: the
    order within equal costs stays the file order.
    """
    return sorted(cases, key=lambda c: (-c.model.timeout, not c.model.expect.fail_fast))


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

    ``processes``: replicable targets get worker processes instead of threads (``wsconform run``),
    and the sessions run side by side, sharing the ``jobs`` workers (``concurrent_shares``).
    """
    lock = threading.Lock()

    def started(case: Case, worker: TargetSession) -> None:
        with lock:
            on_start(case, worker)

    def finished(result: CaseResult, worker: TargetSession) -> None:
        with lock:
            on_result(result, worker)

    def run(case: Case, worker: TargetSession) -> CaseResult:
        return run_case(case, worker, data_dir=data_dir, trace_dir=trace_dir, timeout_scale=timeout_scale)

    todo = [(session, longest_first([c for c in cases if applies(c, session)])) for session in sessions]
    if not processes:
        for session, applicable in todo:
            _run_threads(session, applicable, jobs, run=run, on_start=started, on_result=finished, stop=stop)
            if stop.is_set():
                return
        return
    # Side by side only when every session can have two workers: ``-j 1`` means one worker, ever.
    side_by_side = len(todo) > 1 and jobs >= 2 * len(todo)
    for group in [todo] if side_by_side else [[item] for item in todo]:
        shares = concurrent_shares(jobs, [len(a) for _, a in group]) if side_by_side else [jobs]
        _run_group(group, shares, run=run, on_start=started, on_result=finished, stop=stop)
        if stop.is_set():
            return


def _run_group(
    group: list[tuple[TargetSession, list[Case]]],
    shares: list[int],
    *,
    run: Callable[[Case, TargetSession], CaseResult],
    on_start: Callable[[Case, TargetSession], None],
    on_result: Callable[[CaseResult, TargetSession], None],
    stop: threading.Event,
) -> None:
    """Sessions at the same time, each on its share of workers: processes where it replicates."""
    pools: list[ProcessPool] = []
    threaded: list[tuple[TargetSession, list[Case], int]] = []
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def guarded(session: TargetSession, applicable: list[Case], count: int) -> None:
        try:
            _run_threads(
                session, applicable, count, run=run, on_start=on_start, on_result=on_result, stop=stop
            )
        except BaseException as exc:  # re-raised in the caller's thread, after the others stopped
            errors.append(exc)
            stop.set()

    try:
        # Every pool forks from this thread before any session thread starts (ProcessPool: a child
        # forked beside a running thread can inherit a lock held forever).
        for (session, applicable), share in zip(group, shares, strict=True):
            count = min(share, max(1, len(applicable)))
            if count > 1 and can_fork(session):
                pools.append(ProcessPool(applicable, session, count, run))
            elif applicable:
                threaded.append((session, applicable, count))
        for session, applicable, count in threaded:
            t = threading.Thread(target=guarded, args=(session, applicable, count), daemon=True)
            threads.append(t)
            t.start()
        drive(pools, on_start=on_start, on_result=on_result, stop=stop)
        for t in threads:
            while t.is_alive() and not stop.is_set():
                t.join(0.2)
    except BaseException:
        stop.set()
        raise
    finally:
        for pool in pools:  # drive closed them; a failed fork did not get that far
            pool.close()
        for t in threads:  # each stops its own targets, at once once ``stop`` is set
            t.join()
    if errors:
        raise errors[0]


def concurrent_shares(jobs: int, sizes: list[int]) -> list[int]:
    """Workers per session when the sessions of a run go side by side, in proportion to their cases.

    A run of one target's server and client roles used to be two phases, and each phase ended on its
    slowest case with the other workers idle (the default run: 22 s of server cases, then 10 s on one
    client case whose library waits out its close timeout). Side by side (only when ``jobs`` is at
    least two per session), each session gets a share of ``jobs`` in proportion to its number of
    cases, and at least two; the shares add up to ``jobs``.
    """
    total = sum(sizes) or 1
    shares = [max(2, round(jobs * n / total)) for n in sizes]
    while sum(shares) > max(jobs, 2 * len(sizes)):  # rounding up: take back from the largest
        shares[shares.index(max(shares))] -= 1
    return shares


def _run_threads(
    session: TargetSession,
    applicable: list[Case],
    jobs: int,
    *,
    run: Callable[[Case, TargetSession], CaseResult],
    on_start: Callable[[Case, TargetSession], None],
    on_result: Callable[[CaseResult, TargetSession], None],
    stop: threading.Event,
) -> None:
    """One target role's cases on ``jobs`` thread workers (each with its own replica where possible)."""
    todo: queue.SimpleQueue[Case] = queue.SimpleQueue()
    for case in applicable:
        todo.put(case)
    workers = replicas(session, min(jobs, max(1, len(applicable))))

    def work(worker: TargetSession) -> None:
        while not stop.is_set():
            try:
                case = todo.get_nowait()
            except queue.Empty:
                return
            on_start(case, worker)
            result = run(case, worker)
            if stop.is_set():
                return
            on_result(result, worker)

    threads = [threading.Thread(target=work, args=(w,), daemon=True) for w in workers]
    try:
        for t in threads:
            t.start()
        for t in threads:
            # On a stop, do not wait for the cases in flight (their results are dropped): stopping
            # the targets below ends them, and a 10 s case no longer delays the end of the run.
            while t.is_alive() and not stop.is_set():
                t.join(0.2)
    except BaseException:
        stop.set()  # before the targets go away, so no worker records a result against them
        raise
    finally:
        for w in workers:
            w.stop()
