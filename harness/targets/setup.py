"""A target's one-time preparation (``setup:`` in target.yaml), e.g. ``npm ci`` for a Node target.

Some implementations need their dependencies installed into the target folder before the adapter can
start (``node_modules``). Doing it on first use keeps ``wsconform run --target node-ws`` a single
command, and the ``creates`` marker makes later runs free. Several harness processes can reach a
target's first start at the same moment (pytest-xdist workers, ``--jobs`` replicas), so the set-up
runs under an exclusive ``flock`` on the target folder and re-checks the marker once it holds the
lock: whoever comes second finds the work done. Every wait is bounded by the set-up's timeout, and a
failure names the command and the end of its output, because a bare "exit 1" from ``npm`` is useless.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from harness.targets.errors import TargetUnavailable
from harness.targets.runners import pgroup
from harness.targets.spec import SetupSpec, TargetSpec

TAIL_LINES = 15
LOCK_POLL = 0.05


def setup_argv(setup: SetupSpec) -> list[str]:
    """The command with ``{python}`` filled in (the only placeholder a set-up may use)."""
    return [a.replace("{python}", sys.executable) for a in setup.argv]


def is_set_up(spec: TargetSpec) -> bool:
    """True when the target needs no set-up or its ``creates`` marker exists."""
    if spec.setup is None or spec.directory is None:
        return True
    return (spec.directory / spec.setup.creates).exists()


@contextlib.contextmanager
def _folder_lock(folder: Path, timeout: float) -> Iterator[None]:
    """Exclusive ``flock`` on the target folder itself (no lock file left behind), bounded by ``timeout``.

    ``flock`` locks belong to an open file description, so two threads of one process exclude each
    other as well as two processes do.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TargetUnavailable(
                        f"set-up of {folder} is held by another process for more than {timeout:g} s"
                    ) from None
                time.sleep(LOCK_POLL)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _tail(log_path: Path, mark: int) -> str:
    try:
        with log_path.open("rb") as f:
            f.seek(mark)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-TAIL_LINES:])


def run_setup(spec: TargetSpec, log_path: Path) -> float | None:
    """Run the target's set-up unless its marker exists; seconds it took, or None when nothing ran.

    Raises ``TargetUnavailable`` (ERROR for the cases) when the command is missing, fails, times out
    or does not create its marker; the message starts with the command and ends with its last lines.
    """
    setup, folder = spec.setup, spec.directory
    if setup is None or folder is None or is_set_up(spec):
        return None
    argv = setup_argv(setup)
    command = shlex.join(argv)
    started = time.monotonic()
    with _folder_lock(folder, setup.timeout):
        if is_set_up(spec):
            return None  # another worker did it while we waited for the lock
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            mark = log.tell()
            log.write(f"\n--- set-up of {spec.name} in {folder}: {command}\n".encode())
            log.flush()
            remaining = max(1.0, setup.timeout - (time.monotonic() - started))
            try:
                proc = subprocess.Popen(
                    argv,
                    cwd=folder,
                    stdout=log,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    **pgroup.popen_kwargs(),
                )
            except OSError as exc:
                raise TargetUnavailable(f"set-up `{command}` of {spec.name} cannot start: {exc}") from exc
            try:
                code = proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                pgroup.kill_group(proc.pid, leader=proc, grace=0)  # npm's children too
                raise TargetUnavailable(
                    f"set-up `{command}` of {spec.name} timed out after {setup.timeout:g} s:\n"
                    f"{_tail(log_path, mark)}"
                ) from None
        if code != 0:
            raise TargetUnavailable(
                f"set-up `{command}` of {spec.name} failed with exit status {code}:\n{_tail(log_path, mark)}"
            )
        if not is_set_up(spec):
            raise TargetUnavailable(
                f"set-up `{command}` of {spec.name} succeeded but did not create {setup.creates}"
            )
    return time.monotonic() - started
