"""Persistent client adapters: one local process runs many client-role cases (docs/adapter-protocol.md §1).

Why: a client-role case in per-case mode pays one interpreter start (about 0.3 s for Python, more for
Node), which is most of what a client case costs; Autobahn|Testsuite's client mode loops over
``/runCase`` for the same reason. Here the adapter is started once per launcher (one per worker) and
gets one JSON line per case on stdin; it prints that case's events and then ``{"event": "done",
"case": ..., "exit": N}``.

Each case still looks like a started client to the peer (``PersistentCase`` is a ``ClientProcess``):
its ``stdout`` carries the lines printed between the case line and ``done``, ``wait`` returns the
``exit`` of ``done``, ``kill`` kills the adapter. Every case runs in its own event loop (the engine
runs one ``asyncio.run`` per case), so the adapter's pipes are read by a thread that hands each line
to the loop of the case in flight.

Isolation rules (the same results as per-case mode, which a test compares):

* a case is handed to an adapter only when the previous one ended with ``done``; otherwise (killed on
  a timeout, or the case was cut off by its deadline) the adapter is killed and started again;
* an adapter that exits, crashes or closes stdout in the middle of a case ends that case with its exit
  status (as a per-case client that died would) and is restarted for the next one;
* output printed while no case is in flight is never given to a case: it goes to the log.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.targets.errors import TargetUnavailable
from harness.targets.runners import pgroup
from harness.targets.runners.base import ClientLauncher, check_template, render_argv
from harness.targets.runners.output import OutputPump, TargetLog

STDOUT_LIMIT = 2**16  # as asyncio's subprocess pipes: the peer reads event lines up to this size
READ_CHUNK = 64 * 1024
LONG_LINE = 2**20  # a partial line longer than this is handed on in pieces, not kept to look for done
EOF_EXIT = 1.0  # how long an adapter has to exit by itself at the end of the run (EOF on stdin)
PLACEHOLDERS = ("python", "host")  # no {url}/{protocols}: they arrive on stdin

_live: weakref.WeakSet[PersistentClientLauncher] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for launcher in list(_live):
        launcher.stop()


def case_line(url: str, protocols: list[str], scenario: dict[str, str] | None) -> bytes:
    """The stdin line of one case, from what per-case mode passes as argv and environment."""
    env = scenario or {}
    interop: dict[str, Any] | None = None
    if "WSCONFORM_INTEROP" in env or "WSCONFORM_PLAN" in env:
        plan = env.get("WSCONFORM_PLAN")
        interop = {"scenario": env.get("WSCONFORM_INTEROP"), "plan": json.loads(plan) if plan else None}
    line = {
        "case": url.rsplit("/", 1)[-1],
        "url": url,
        "protocols": protocols,
        "scenario": env.get("WSCONFORM_SCENARIO") or None,
        "delay_ms": int(env.get("WSCONFORM_DELAY_MS") or 0),
        "interop": interop,
    }
    return (json.dumps(line) + "\n").encode()


def done_status(line: bytes) -> int | None:
    """The ``exit`` of a ``done`` line; None for any other line (events, garbage)."""
    if b'"done"' not in line:
        return None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("event") != "done":
        return None
    code = obj.get("exit", 0)
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


class PersistentCase:
    """One case of a persistent adapter, as the peer sees a started client (``ClientProcess``)."""

    def __init__(self, owner: PersistentAdapter, loop: asyncio.AbstractEventLoop) -> None:
        self._owner = owner
        # What a resource case samples (harness.sampling.memory_of): the adapter's process tree, when
        # that tree is the client (not for a `docker run -i` whose client runs in the daemon's tree).
        self.pid: int | None = owner.proc.pid if owner.measurable else None
        self._loop = loop
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader(limit=STDOUT_LIMIT)
        self._exit: asyncio.Future[int] = loop.create_future()

    # -- called by the reader thread -----------------------------------------------------------------

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the case's loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(fn, *args)

    def feed(self, data: bytes) -> None:
        assert self.stdout is not None
        self._soon(self.stdout.feed_data, data)

    def end(self, code: int) -> None:
        assert self.stdout is not None
        self._soon(self.stdout.feed_eof)
        self._soon(self._set_exit, code)

    def loop_closed(self) -> bool:
        return self._loop.is_closed()

    def _set_exit(self, code: int) -> None:
        if not self._exit.done():
            self._exit.set_result(code)

    # -- the ClientProcess interface -------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        return self._exit.result() if self._exit.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def kill(self) -> None:
        """Kill the adapter (the next case starts a new one); this case ends with the kill's status."""
        self._owner.kill()


class PersistentAdapter:
    """One running adapter process, its reader thread and the case in flight."""

    def __init__(
        self, proc: subprocess.Popen[bytes], log: TargetLog, *, measurable: bool = True, container: str = ""
    ) -> None:
        self.proc = proc
        self.log = log
        self.measurable = measurable
        self.container = container  # the container this adapter runs in (docker run -i), if any
        self._lock = threading.Lock()
        self._case: PersistentCase | None = None
        self.idle = True  # no case in flight: the next one may be handed over
        self._thread = threading.Thread(target=self._read, name=f"persistent-{proc.pid}", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self.proc.poll() is None and self._thread.is_alive()

    def abandoned(self) -> bool:
        """A case is in flight but nobody waits for it any more: its event loop is closed (the case
        was cut off by its deadline before ``done``). Such an adapter is never reused."""
        case = self._case  # None between take and begin: reserved, not abandoned
        return not self.idle and case is not None and case.loop_closed()

    def take(self) -> bool:
        """Reserve this adapter for the next case if it is alive and free."""
        with self._lock:
            if not self.idle or not self.alive():
                return False
            self.idle = False
            return True

    def begin(self, case: PersistentCase, line: bytes) -> None:
        """Hand over one case (the adapter was ``take``n); raises OSError when its stdin is gone."""
        with self._lock:
            self._case = case
        assert self.proc.stdin is not None
        self.proc.stdin.write(line)
        self.proc.stdin.flush()

    def kill(self) -> None:
        pgroup.signal_group(self.proc.pid, signal.SIGKILL)

    def discard(self) -> None:
        """An adapter in the middle of a case that is over for the harness: killed, as a per-case
        client that outlived its case is."""
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)
        self._thread.join(1.0)

    def close(self, grace: float) -> None:
        """EOF on stdin (the adapter's way out: it exits by itself), then the group is stopped."""
        with contextlib.suppress(OSError, ValueError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=EOF_EXIT)
        pgroup.kill_group(self.proc.pid, leader=self.proc, grace=grace)
        self._thread.join(1.0)

    def _give(self, data: bytes) -> None:
        case = self._case
        if case is not None:
            case.feed(data)
        else:
            text = data.decode("utf-8", "replace").rstrip()[:500]
            self.log.note(f"--- persistent client printed between cases (not given to any case): {text}")

    def _finish(self, code: int) -> None:
        with self._lock:
            case, self._case = self._case, None
            self.idle = True
        if case is not None:
            case.end(code)
        else:
            self.log.note("--- persistent client printed a done line with no case in flight")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        pending = b""
        while True:
            try:
                chunk = os.read(fd, READ_CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                code = done_status(raw)
                if code is None:
                    self._give(raw + b"\n")
                else:
                    self._finish(code)
            if len(pending) > LONG_LINE:  # no done line is this long: hand it on as it is
                self._give(pending)
                pending = b""
        if pending:
            self._give(pending)
        try:
            code = self.proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # closed its stdout but lives on
            self.kill()
            code = self.proc.wait()
        self.log.note(f"--- persistent client exited with status {code}")
        with self._lock:
            self.idle = False  # never hand a case to an adapter that is gone
            case, self._case = self._case, None
        if case is not None:
            case.end(code)


class PersistentClientLauncher(ClientLauncher):
    """A client target whose adapter runs many cases in one process.

    An adapter plays one case at a time, so the launcher keeps a small pool: a case goes to a free
    adapter, or to a new one when every adapter is busy (``wsconform interop`` runs several pairs with
    one client at once; a conformance worker runs one case at a time and so uses one adapter).
    ``replica`` gives each parallel worker its own launcher and pool.
    """

    kind = "process"
    measurable = True  # the adapter's process tree is the client (resource cases sample it)
    log: TargetLog

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path | None,
        log_path: Path,
        env: dict[str, str] | None = None,
        stop_grace: float = pgroup.STOP_GRACE,
        placeholders: tuple[str, ...] = PLACEHOLDERS,
    ) -> None:
        check_template(argv, placeholders, what="persistent client argv")
        self.argv_template = argv
        self.cwd = cwd
        self.log_path = log_path
        self.log = TargetLog.for_path(log_path)
        self.env = env or {}
        self.stop_grace = stop_grace
        self.pool: list[PersistentAdapter] = []
        self.starts = 0
        self._lock = threading.Lock()
        _live.add(self)

    def replica(self, index: int) -> PersistentClientLauncher:
        log = self.log_path.with_name(f"{self.log_path.stem}.{index}{self.log_path.suffix}")
        return PersistentClientLauncher(
            self.argv_template, cwd=self.cwd, log_path=log, env=self.env, stop_grace=self.stop_grace
        )

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str], str]:
        """The argv, the extra environment and the container name (none here) of one adapter start
        (a container launcher wraps the adapter's argv in ``docker run -i --name=...``)."""
        argv = render_argv(
            self.argv_template, {"python": sys.executable, "host": "127.0.0.1"},
            what="persistent client argv",
        )  # fmt: skip
        return argv, {**self.env, "WSCONFORM_PERSISTENT": "1", "PYTHONUNBUFFERED": "1"}, ""

    def discarded(self, adapter: PersistentAdapter) -> None:
        """After an adapter was killed or stopped: what else must go (a container)."""
        return None

    def _spawn(self) -> PersistentAdapter:
        argv, env, container = self.command()
        self.starts += 1
        self.log.note(f"--- persistent client start #{self.starts}: {shlex.join(argv)}")
        read_end, write_end = os.pipe()
        try:
            proc = pgroup.spawn(
                argv,
                registry_dir=self.log_path.parent,
                cwd=self.cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=write_end,
                env={**os.environ, **env},
            )
        except OSError as exc:
            os.close(read_end)
            raise TargetUnavailable(f"cannot start {argv[0]!r}: {exc} (log: {self.log_path})") from exc
        finally:
            os.close(write_end)
        OutputPump(self.log, read_end, name=f"log-{proc.pid}")
        return PersistentAdapter(proc, self.log, measurable=self.measurable, container=container)

    def _drop(self, adapter: PersistentAdapter) -> None:
        adapter.discard()
        self.discarded(adapter)

    def _free_adapter(self) -> PersistentAdapter:
        """A free adapter, reserved for the caller: a running one whose last case ended with done,
        else a new one. Adapters that are gone or whose case was abandoned are dropped first."""
        with self._lock:
            gone = [a for a in self.pool if not a.alive() or a.abandoned()]
            self.pool = [a for a in self.pool if a not in gone]
            chosen = next((a for a in self.pool if a.take()), None)
            if chosen is None:
                chosen = self._spawn()
                chosen.take()
                self.pool.append(chosen)
        for adapter in gone:
            self._drop(adapter)
        return chosen

    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> PersistentCase:
        line = case_line(url, protocols, scenario)
        for attempt in (1, 2):
            adapter = await asyncio.to_thread(self._free_adapter)
            case = PersistentCase(adapter, asyncio.get_running_loop())
            self.log.note(f"--- client case: {line.decode().rstrip()[:300]}")
            try:
                adapter.begin(case, line)
                return case
            except OSError as exc:  # it died between two cases: one new start, then give up
                with self._lock:
                    self.pool = [a for a in self.pool if a is not adapter]
                self._drop(adapter)
                if attempt == 2:
                    raise TargetUnavailable(f"the persistent client does not read its stdin: {exc}") from exc
        raise AssertionError("unreachable")

    def renew(self) -> None:
        """The next case gets a new adapter (a resource case measures a fresh process)."""
        self.stop()

    def stop(self) -> None:
        with self._lock:
            pool, self.pool = self.pool, []
        for adapter in pool:
            adapter.close(self.stop_grace)
            self.discarded(adapter)
