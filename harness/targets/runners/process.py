"""Targets as local processes: a server started on a free port per start, or one client per case.

Both run in their own process group, die with the harness and are recorded in the run's pid file
(``pgroup``); their output goes through a pump into a capped log (``output``). A server is ready when
it accepts TCP on its port (and, with ``ready: stdout-line``, once this start printed a line with the
word ``ready``) within ``startup_timeout``; a command that exits before is reported at once, with the
tail of its output and the log's path.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shlex
import signal
import subprocess
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import psutil

from harness.sampling import ProcessTree
from harness.targets.errors import TargetUnavailable
from harness.targets.runners import pgroup
from harness.targets.runners.base import (
    CLIENT_PLACEHOLDERS,
    Address,
    ClientLauncher,
    ServerRunner,
    check_template,
    client_values,
    free_port,
    port_open,
    render_argv,
)
from harness.targets.runners.output import OutputPump, TargetLog, start_failure

READY_POLL = 0.02
DRAIN = 0.5  # after an exit, how long the pump may take to bring the last words to the log
EXIT_POLL = 0.05  # how often a client that exited but whose pipes stay open is looked at


_live: weakref.WeakSet[ProcessRunner | ProcessClientLauncher] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for runner in list(_live):
        runner.stop()


class ProcessRunner(ServerRunner):
    """A local command with ``{port}``-style placeholders, started on a fresh free port."""

    kind = "process"
    log: TargetLog

    def __init__(
        self,
        argv: list[str],
        placeholders_for: Callable[[int], dict[str, str]],
        *,
        cwd: Path | None,
        log_path: Path,
        ready: str = "tcp",
        startup_timeout: float = 20.0,
        env: dict[str, str] | None = None,
        stop_grace: float = pgroup.STOP_GRACE,
    ) -> None:
        self.argv_template = argv
        self.placeholders_for = placeholders_for
        self.cwd = cwd
        self.log_path = log_path
        self.log = TargetLog.for_path(log_path)
        self.ready = ready
        self.startup_timeout = startup_timeout
        self.env = env or {}
        self.stop_grace = stop_grace
        self.proc: subprocess.Popen[bytes] | None = None
        self.pump: OutputPump | None = None
        self.address = Address("127.0.0.1", 0)
        self.starts = 0
        self._tree: ProcessTree | None = None
        render_argv(argv, placeholders_for(0))  # an unknown placeholder fails when the session opens

    def replica(self, index: int) -> ProcessRunner:
        """Another runner for the same target (own process, own port, own log) for a parallel worker."""
        log = self.log_path.with_name(f"{self.log_path.stem}.{index}{self.log_path.suffix}")
        return ProcessRunner(
            self.argv_template, self.placeholders_for, cwd=self.cwd, log_path=log, ready=self.ready,
            startup_timeout=self.startup_timeout, env=self.env, stop_grace=self.stop_grace,
        )  # fmt: skip

    def start(self) -> None:
        self.stop()
        port = free_port()
        argv = render_argv(self.argv_template, self.placeholders_for(port))
        self.log.note(f"--- start #{self.starts + 1}: {shlex.join(argv)}")
        started = time.monotonic()
        read_end, write_end = os.pipe()
        try:
            self.proc = pgroup.spawn(
                argv,
                registry_dir=self.log_path.parent,
                cwd=self.cwd,
                stdout=write_end,
                stderr=write_end,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            )
        except OSError as exc:
            os.close(read_end)
            raise TargetUnavailable(f"cannot start {argv[0]!r}: {exc} (log: {self.log_path})") from exc
        finally:
            os.close(write_end)
        self.pump = OutputPump(self.log, read_end, name=f"log-{self.log_path.name}")
        _live.add(self)
        self.starts += 1
        self.address = Address("127.0.0.1", port)
        self._wait_ready(port, started)

    def _wait_ready(self, port: int, started: float) -> None:
        proc, pump = self.proc, self.pump
        assert proc is not None and pump is not None
        deadline = started + self.startup_timeout
        while True:
            code = proc.poll()
            if code is not None:
                pump.drain(DRAIN)
                tail = pump.tail()
                self.stop()
                took = time.monotonic() - started
                raise TargetUnavailable(
                    start_failure(f"target exited with status {code} after {took:.1f} s, before it was "
                                  "ready", self.log, tail)
                )  # fmt: skip
            line_ok = self.ready != "stdout-line" or pump.ready.is_set()
            if line_ok and port_open("127.0.0.1", port):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(READY_POLL)
        line_ok = self.ready != "stdout-line" or pump.ready.is_set()
        missing = [] if line_ok else ["no line with 'ready'"]
        if not port_open("127.0.0.1", port):
            missing.append("nothing accepts TCP")
        tail = pump.tail()
        self.stop()
        raise TargetUnavailable(
            start_failure(
                f"target not ready on 127.0.0.1:{port} after {self.startup_timeout:g} s "
                f"({', '.join(missing)})",
                self.log,
                tail,
            )
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_status(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def exited_within(self, seconds: float) -> int | None:
        proc = self.proc
        if proc is None:
            return None
        try:
            return proc.wait(timeout=max(0.0, seconds))
        except subprocess.TimeoutExpired:
            return None

    def memory_bytes(self) -> int | None:
        """RSS of the target's process tree (the adapter and anything it spawned), via psutil."""
        proc = self.proc
        if proc is None:
            return None
        tree = self._tree
        if tree is None or tree.root.pid != proc.pid:
            try:
                tree = self._tree = ProcessTree(proc.pid)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return None
        return tree.rss()

    def log_since(self, mark: int) -> str:
        pump = self.pump
        if pump is not None and self.proc is not None and self.proc.poll() is not None:
            pump.drain(DRAIN)  # it died: its last words may still be in the pipe
        return super().log_since(mark)

    def output_tail(self) -> str:
        """The end of the current (or last) start's output, whatever the log's cap dropped."""
        return self.pump.tail() if self.pump is not None else ""

    def stop(self) -> None:
        """SIGTERM the target's process group, SIGKILL it after ``stop_grace`` s, whoever is left."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        killed = pgroup.kill_group(proc.pid, leader=proc, grace=self.stop_grace)
        if killed:
            self.log.note(
                f"--- stop: {killed} process(es) still running {self.stop_grace:g} s after SIGTERM: SIGKILL"
            )
        if self.pump is not None:
            self.pump.drain(DRAIN)


class GroupedClient:
    """A started client process as the peer sees it (``harness.peer.server.ClientProcess``).

    ``wait`` returns when the client exits and then has the rest of its process group killed in the
    background (SIGTERM, SIGKILL after the grace period), so a client's children never outlive its
    case; ``kill`` SIGKILLs the whole group.
    """

    def __init__(
        self, proc: asyncio.subprocess.Process, pump: OutputPump, owner: ProcessClientLauncher
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.stdout = proc.stdout
        self.pump = pump
        self._owner = owner
        self._cleaned = False

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    async def wait(self) -> int:
        """The client's exit status, once it exited and its group is gone.

        asyncio's ``Process.wait`` also waits for the pipes to close, which a child that inherited
        stdout keeps open for as long as it lives; so the exit itself is watched too, and the group
        is killed as soon as the client is gone, which closes the pipes.
        """
        waiter = asyncio.ensure_future(self.proc.wait())
        try:
            while not waiter.done():
                if self.proc.returncode is not None:
                    self.cleanup()
                    break
                await asyncio.wait({waiter}, timeout=EXIT_POLL)
            code = await waiter
        finally:
            waiter.cancel()
        self.cleanup()
        return code

    def cleanup(self) -> None:
        """The client exited: what it left in its group is killed without holding up the case."""
        if self._cleaned:
            return
        self._cleaned = True
        pgroup.kill_group_soon(self.pid, grace=self._owner.stop_grace)
        self._owner.clients.discard(self)

    def kill(self) -> None:
        pgroup.signal_group(self.pid, signal.SIGKILL)


class ProcessClientLauncher(ClientLauncher):
    """A client target: nothing runs between cases; each case starts the client with its own URL.

    The client's stdout carries its API events (JSON lines), so it is piped to the peer; stderr goes
    through a pump into the target's log like a server's output does.
    """

    kind = "process"
    log: TargetLog

    def __init__(
        self,
        argv: list[str],
        *,
        cwd: Path | None,
        log_path: Path,
        env: dict[str, str] | None = None,
        stop_grace: float = pgroup.STOP_GRACE,
    ) -> None:
        check_template(argv, CLIENT_PLACEHOLDERS, what="client argv")
        self.argv_template = argv
        self.cwd = cwd
        self.log_path = log_path
        self.log = TargetLog.for_path(log_path)
        self.env = env or {}
        self.stop_grace = stop_grace
        self.clients: set[GroupedClient] = set()
        _live.add(self)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> GroupedClient:
        argv = render_argv(self.argv_template, client_values(url, protocols), what="client argv")
        self.log.note(f"--- client: {shlex.join(argv)}")
        read_end, write_end = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=self.cwd,
                stdout=subprocess.PIPE,
                stderr=write_end,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env, **(scenario or {}), "PYTHONUNBUFFERED": "1"},
                **pgroup.popen_kwargs(),
            )
        except OSError as exc:
            os.close(read_end)
            raise TargetUnavailable(f"cannot start {argv[0]!r}: {exc}") from exc
        finally:
            os.close(write_end)
        pgroup.register(proc.pid, argv, self.log_path.parent)
        client = GroupedClient(proc, OutputPump(self.log, read_end, name=f"log-{proc.pid}"), self)
        self.clients.add(client)
        return client

    def stop(self) -> None:
        """Kill every client still running (a case interrupted by a deadline or Ctrl-C)."""
        for client in list(self.clients):
            client.kill()
            self.clients.discard(client)
