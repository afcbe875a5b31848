"""Worker processes for one target: each runs cases against its own replica of it.

Thread workers share one GIL, and the peer's work on the limits family (frames of 4 MiB messages,
SHA-256 of 16 MiB echoes) is CPU, so ``-j 4`` on threads ran barely faster than ``-j 1``. Here each
worker is a forked process with its own target replica (own process or container, own port), pulling
case indices from a shared queue and sending each ``CaseResult`` back; the parent calls ``on_start`` and
``on_result`` in completion order, so the one results file, the progress bar and the tally stay where
they were.

Fork, not spawn: the sessions hold closures that cannot be pickled, and the child needs nothing it
does not already have. Stopping: the children ignore SIGINT (Ctrl-C reaches the whole terminal
group; the parent decides), and on the parent's SIGTERM each child unwinds its case and stops its own
target (its runner's ``stop``); a child that does not exit within ``STOP_GRACE`` is killed, and its
targets die with it (``PR_SET_PDEATHSIG``, pid file: ``harness.targets.runners.pgroup``).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any, NoReturn

from harness.engine import CaseResult
from harness.model.loader import Case
from harness.targets.runners import pgroup
from harness.targets.session import TargetSession

STOP_GRACE = 10.0  # seconds a child has to stop its target after SIGTERM
POLL = 0.2


def can_fork(session: TargetSession) -> bool:
    """Process workers need a target each can own: a replica distinct from the session (servers)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    clone = session.replica(2)
    return clone is not None and clone is not session


def _exit_on_term(signum: int, frame: object) -> NoReturn:
    raise SystemExit(143)


def _child(
    index: int,
    session: TargetSession,
    cases: list[Case],
    todo: Queue[int | None],
    out: Queue[tuple[Any, ...]],
    run: Callable[[Case, TargetSession], CaseResult],
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)
    worker = session.replica(index)
    assert worker is not None
    try:
        while True:
            number = todo.get()
            if number is None:
                break
            out.put(("start", number))
            result = run(cases[number], worker)
            result.case = None  # type: ignore[assignment]  # the parent has it: no need to pickle it
            out.put(("result", number, result))
    except SystemExit:
        # Stopped mid-case: stop the target, then leave at once. A normal exit would tear down the
        # case's half-run event loop and print its complaints; the parent no longer reads anyway.
        worker.stop()
        pgroup.kill_spawned()  # a target whose start the signal interrupted: its runner never knew it
        os._exit(143)
    worker.stop()
    out.put(("done", index))


class ProcessPool:
    """One target session's worker processes: forked when created, then fed results by ``poll``.

    Forking is a separate step so that a run with several sessions forks every pool from one thread
    before anything else runs beside it: a child forked while another thread holds a lock (a session's,
    the pid file's) inherits that lock held forever, and hangs when it needs it (on SIGTERM, in
    ``stop``), until ``STOP_GRACE`` kills it.
    """

    def __init__(
        self,
        cases: list[Case],
        session: TargetSession,
        count: int,
        run: Callable[[Case, TargetSession], CaseResult],
    ) -> None:
        ctx = multiprocessing.get_context("fork")
        self.cases = cases
        self.session = session
        self.count = count
        self.todo: Queue[int | None] = ctx.Queue()
        self.out: Queue[tuple[Any, ...]] = ctx.Queue()
        for number in range(len(cases)):
            self.todo.put(number)
        for _ in range(count):
            self.todo.put(None)
        # A target's one-time set-up (npm ci...) runs here, once, not in every child at the same time.
        session.prepare()
        self.procs: list[BaseProcess] = [
            ctx.Process(
                target=_child,
                args=(i + 2, session, cases, self.todo, self.out, run),
                name=f"wsconform-worker-{i}",
            )
            for i in range(count)
        ]
        self.finished = 0
        try:
            for proc in self.procs:
                proc.start()
        except BaseException:
            self.close()
            raise

    @property
    def done(self) -> bool:
        return self.finished >= self.count

    def poll(
        self,
        timeout: float,
        on_start: Callable[[Case, TargetSession], None],
        on_result: Callable[[CaseResult, TargetSession], None],
    ) -> bool:
        """Handle one message from the children (waiting up to ``timeout``); False when there was none."""
        try:
            message = self.out.get(timeout=timeout) if timeout > 0 else self.out.get_nowait()
        except queue.Empty:
            if not any(proc.is_alive() for proc in self.procs):
                raise RuntimeError("every worker process exited before the run ended") from None
            return False
        kind = message[0]
        if kind == "start":
            on_start(self.cases[message[1]], self.session)
        elif kind == "result":
            result: CaseResult = message[2]
            result.case = self.cases[message[1]]
            on_result(result, self.session)
        else:
            self.finished += 1
        return True

    def close(self) -> None:
        _stop_children(self.procs)
        self.todo.cancel_join_thread()


def drive(
    pools: list[ProcessPool],
    *,
    on_start: Callable[[Case, TargetSession], None],
    on_result: Callable[[CaseResult, TargetSession], None],
    stop: threading.Event,
) -> None:
    """Hand every pool's messages to the callbacks, in arrival order per pool, until all are done.

    Every pool is closed on the way out (its children stopped with their targets), the normal end
    included; ``stop`` (or an exception, Ctrl-C) ends the loop at once.
    """
    try:
        while not stop.is_set():
            busy = [pool for pool in pools if not pool.done]
            if not busy:
                return
            handled = False
            for pool in busy:
                while not pool.done and pool.poll(0, on_start, on_result):
                    handled = True
            if not handled and not busy[0].done:
                busy[0].poll(POLL / 4 if len(busy) > 1 else POLL, on_start, on_result)
    except BaseException:
        stop.set()  # before the targets go away, so nothing more is recorded against them
        raise
    finally:
        for pool in pools:
            pool.close()


def _stop_children(procs: list[BaseProcess]) -> None:
    """SIGTERM every child still running (each stops its target), then wait; SIGKILL the late ones."""
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(STOP_GRACE)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
