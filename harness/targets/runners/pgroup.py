"""Process hygiene: every target in its own process group, killed as a group, never outliving a run.

Three layers, because each alone leaves something behind:

* **Process groups.** Every target and client starts in its own session (hence its own process
  group), and ``kill_group`` signals the group: SIGTERM, then, after a grace period, SIGKILL to the
  group whoever ignored what (a child that ignores SIGTERM dies too, even when its parent exited).
* **Die with the harness.** ``PR_SET_PDEATHSIG`` = SIGKILL (Linux): the kernel kills the target the
  moment the harness dies, even by SIGKILL. The signal fires when the *thread* that forked the child
  ends, so server targets are forked by one long-lived thread (``_Spawner``), not by the worker
  thread that happened to start them. It reaches the direct child only: its own children are
  orphaned instead.
* **A pid file per run** (``pids.jsonl`` beside results.jsonl, or in the log folder): one line per
  started process with its pid, process group and start time, and the harness's. The next run
  (``record_in``, or the first start in a folder) kills the groups of harnesses that are gone, checked
  with start times so that a reused pid is never killed. That catches the orphans of a ``kill -9``.

Zombies: on some machines pid 1 does not reap orphans, so a group can hold zombies forever; "alive"
here means a member that is not a zombie (read from /proc).
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import psutil

STOP_GRACE = 3.0  # SIGTERM -> SIGKILL
PID_FILE = "pids.jsonl"
_PR_SET_PDEATHSIG = 1
T = TypeVar("T")

try:
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def _die_with_parent(parent: int) -> Callable[[], None] | None:
    """A preexec_fn: SIGKILL when the forking thread of ``parent`` ends (and exit if it already has)."""
    if _prctl is None:
        return None
    prctl = _prctl

    def child() -> None:  # pragma: no cover - runs in the child between fork and exec
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the harness died before prctl took effect
            os._exit(137)

    return child


def popen_kwargs() -> dict[str, Any]:
    """What every target's Popen gets: its own session and process group, death with the harness."""
    return {"start_new_session": True, "preexec_fn": _die_with_parent(os.getpid())}


class _Spawner:
    """One daemon thread that forks every server target, so PDEATHSIG means "the harness died" and
    not "the scheduler's worker thread that started this target has finished"."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], T], timeout: float = 60.0) -> T:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="wsconform-spawner", daemon=True)
                self._thread.start()
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return future.result(timeout=timeout)

    def _loop(self) -> None:
        while True:
            fn, future = self._jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)


_spawner = _Spawner()
_spawned: list[int] = []  # the process groups this process started, in start order


def _reset_spawner_in_child() -> None:
    """A forked worker process (``harness.workers``) gets a spawner of its own: the parent's thread
    does not exist in the child, and its lock may have been held at the fork. Its list of started
    groups starts empty: the parent's targets are not the child's to kill."""
    global _spawner, _spawned
    _spawner = _Spawner()
    _spawned = []


os.register_at_fork(after_in_child=_reset_spawner_in_child)


def spawn(argv: Sequence[str], *, registry_dir: Path | None, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Popen in its own group, dying with the harness, recorded in the run's pid file."""

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(list(argv), **popen_kwargs(), **kwargs)
        _spawned.append(proc.pid)  # in the spawner thread: listed even if the caller is interrupted
        return proc

    proc: subprocess.Popen[bytes] = _spawner.run(start)
    register(proc.pid, argv, registry_dir)
    return proc


def kill_spawned(timeout: float = 2.0) -> list[int]:
    """SIGKILL every group this process started that still has members; returns their pids.

    The last step of a worker process stopped on SIGTERM: when the signal lands while its runner is
    starting a target, the runner never learns of that process, and a child of the target that
    ignores SIGTERM would outlive the run (PDEATHSIG takes only the target itself). A start still in
    the spawner's hands finishes first, so it is on the list.
    """
    with contextlib.suppress(Exception):
        _spawner.run(lambda: None, timeout=timeout)
    killed: list[int] = []
    for pgid in _spawned:
        members = group_members(pgid)
        if members:
            signal_group(pgid, signal.SIGKILL)
            killed += members
    return killed


# -- groups --------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, pgid) of a process from /proc, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2])


def group_members(pgid: int) -> list[int]:
    """Processes of the group that are not zombies (dead members pid 1 did not reap do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    if not os.path.isdir("/proc"):  # pragma: no cover - not Linux: killpg(0) is all we know
        return [pgid]
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                out.append(int(name))
    return out


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def signal_group(pgid: int, sig: int) -> None:
    """Signal a whole process group; a group that is gone (or not ours) is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def kill_group(pgid: int, *, leader: subprocess.Popen[bytes] | None = None, grace: float = STOP_GRACE) -> int:
    """SIGTERM the group, wait up to ``grace`` for every member to exit, then SIGKILL the group.

    Descendants that left the group (``setsid``) are found through the leader's process tree before
    the first signal and get the same treatment. Returns how many processes were still alive at
    SIGKILL (0: everyone honoured SIGTERM). The leader, if ours, is reaped.
    """
    escaped: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(pgid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if os.getpgid(child.pid) != pgid:
                    escaped.append(child)
    signal_group(pgid, signal.SIGTERM)
    for p in escaped:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    deadline = time.monotonic() + grace
    pause = 0.005
    while True:
        if leader is not None:
            leader.poll()
        left = group_members(pgid)
        stragglers = [p for p in escaped if _alive(p)]
        if not left and not stragglers:
            killed = 0
            break
        if time.monotonic() >= deadline:
            killed = len(left) + len(stragglers)
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    signal_group(pgid, signal.SIGKILL)  # also whatever was forked after the last look
    for p in escaped:
        with contextlib.suppress(psutil.Error):
            p.kill()
    if killed:  # SIGKILL is delivered asynchronously: return once they are really gone
        settle = time.monotonic() + 1.0
        while (group_members(pgid) or any(_alive(p) for p in escaped)) and time.monotonic() < settle:
            time.sleep(0.005)
    if leader is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            leader.wait(timeout=5)
    return killed


def kill_group_soon(pgid: int, *, grace: float = STOP_GRACE) -> threading.Thread | None:
    """``kill_group`` for the leftovers of a client that has exited, without blocking the case: only
    when the group still has members, in a thread (not a daemon: an exiting harness finishes it)."""
    if not group_members(pgid):
        return None
    thread = threading.Thread(target=kill_group, args=(pgid,), kwargs={"grace": grace}, name=f"kill-{pgid}")
    thread.start()
    return thread


# -- the pid file ------------------------------------------------------------------------------------

_configured: Path | None = None
_swept: set[Path] = set()
_registry_lock = threading.Lock()


def _start_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


_ME = os.getpid()
_MY_START = _start_time(_ME)


def record_in(directory: Path) -> list[int]:
    """Record this run's processes in ``directory/pids.jsonl`` (the front end calls it with the folder
    of results.jsonl); kills what dead runs left there first. Returns the pids it killed."""
    global _configured
    with _registry_lock:
        _configured = directory
    return _sweep_once(directory / PID_FILE)


def registry_path(default_dir: Path | None) -> Path | None:
    """Where starts are recorded: the folder ``record_in`` set, else the runner's log folder."""
    directory = _configured or default_dir
    return directory / PID_FILE if directory is not None else None


def register(pid: int, argv: Sequence[str], default_dir: Path | None) -> None:
    """Append one started process (its own group leader) to the run's pid file."""
    path = registry_path(default_dir)
    if path is None:
        return
    _sweep_once(path)
    line = {
        "harness": _ME, "harness_start": _MY_START, "pid": pid, "pgid": pid,
        "start": _start_time(pid), "argv": " ".join(argv)[:200],
    }  # fmt: skip
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # not between a sweep's read and its rewrite
            fh.write(json.dumps(line) + "\n")


def _sweep_once(path: Path) -> list[int]:
    key = path.absolute()
    with _registry_lock:
        if key in _swept:
            return []
        _swept.add(key)
    return sweep(path)


def _harness_alive(pid: int, started: float | None) -> bool:
    if pid == _ME:
        return True
    now = _start_time(pid)
    return now is not None and (started is None or abs(now - started) < 0.05)


def sweep(path: Path) -> list[int]:
    """Kill the process groups recorded by harnesses that are gone; keep the lines of live ones.

    A group is killed only when it can still be ours: its leader is alive with the recorded start
    time, or the leader is gone (then the group number cannot have been reused: Linux hands out no
    pid that is still some group's id). Returns the pids that were still alive and were killed.
    """
    if not path.is_file():
        return []
    killed: list[int] = []
    with path.open("r+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # xdist workers sweep the same file
        keep: list[str] = []
        for raw in fh.read().splitlines():
            try:
                rec = json.loads(raw)
                harness, pgid, start = int(rec["harness"]), int(rec["pgid"]), rec.get("start")
            except (ValueError, KeyError, TypeError):
                continue
            if _harness_alive(harness, rec.get("harness_start")):
                keep.append(raw)
                continue
            now = _start_time(pgid)
            if now is not None and start is not None and abs(now - float(start)) >= 0.05:
                continue  # the pid was reused by an unrelated process that leads its own group
            members = group_members(pgid)
            if members:
                signal_group(pgid, signal.SIGKILL)
                killed += members
        fh.seek(0)
        fh.truncate()
        fh.write("".join(line + "\n" for line in keep))
    return killed
