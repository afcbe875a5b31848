"""Containers this harness started: labelled, removed at exit, swept after a harness that was killed.

**Nothing survives the harness.** Every container carries the labels ``wsconform=1`` and
``wsconform.pid=<harness pid>`` (with the harness's start time, so a reused pid does not protect a
leftover); atexit and SIGTERM/SIGHUP remove the ones this process started, and each run first sweeps
containers whose harness process is gone (killed with SIGKILL: no handler runs).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING

from harness.targets.docker.daemon import LABEL, client
from harness.targets.docker.images import image_name

if TYPE_CHECKING:
    from docker.models.containers import Container

_ours: dict[str, str] = {}  # container id (or name) -> name
_ours_lock = threading.Lock()
_names = itertools.count(1)
_handlers_installed = False


def pid_start(pid: int) -> str:
    """When the process started (guards against a reused pid when sweeping)."""
    try:
        import psutil

        return f"{psutil.Process(pid).create_time():.2f}"
    except Exception:
        return ""


def labels(target: str) -> dict[str, str]:
    return {LABEL: "1", f"{LABEL}.pid": str(os.getpid()), f"{LABEL}.target": target,
            f"{LABEL}.pidstart": pid_start(os.getpid())}  # fmt: skip


def container_name(target: str) -> str:
    """A fresh name for a container of ``target``: unique in this harness process."""
    return f"wsconform-{image_name(target).split('/', 1)[1]}-{os.getpid()}-{next(_names)}"


def track(name: str) -> None:
    """Remember a container started by name elsewhere (the ``docker run -i`` of a persistent client),
    so that atexit and the signal handlers remove it like the ones started here."""
    install_handlers()
    with _ours_lock:
        _ours[name] = name


def remove_by_name(name: str) -> None:
    """Remove (force) a container known by its name; one that is already gone is fine."""
    with contextlib.suppress(Exception):
        client().api.remove_container(name, force=True)
    with _ours_lock:
        _ours.pop(name, None)


def run_container(image: str, argv: list[str], env: dict[str, str], target: str) -> Container:
    """Start a detached container on the host network, labelled as ours and remembered for removal."""
    name = container_name(target)
    install_handlers()
    container = client().containers.run(
        image, argv, detach=True, network_mode="host", labels=labels(target), environment=env,
        name=name, stdin_open=False, tty=False,
    )  # fmt: skip
    with _ours_lock:
        _ours[str(container.id)] = name
    return container


def remove(container: Container) -> None:
    """Remove (force) a container; one that is already gone or being removed is fine."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        try:
            container.remove(force=True)
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise
    with _ours_lock:
        _ours.pop(str(container.id), None)


def remove_ours() -> None:
    """Remove every container this process started and still has (atexit, signals)."""
    with _ours_lock:
        ids = list(_ours)
        _ours.clear()
    if not ids:
        return
    try:
        import docker

        cli = docker.from_env(timeout=30)
    except Exception:
        return
    for cid in ids:
        with contextlib.suppress(Exception):
            cli.api.remove_container(cid, force=True)


atexit.register(remove_ours)


def install_handlers() -> None:
    """SIGTERM/SIGHUP left at their default would kill the harness without atexit: remove our
    containers first, then die of the same signal. Handlers somebody else set (the CLI turns
    SIGTERM into KeyboardInterrupt, which runs atexit) are left alone."""
    global _handlers_installed
    if _handlers_installed or threading.current_thread() is not threading.main_thread():
        return
    _handlers_installed = True
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _on_signal)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    remove_ours()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _pid_alive(pid: int, started: str) -> bool:
    import psutil

    if not psutil.pid_exists(pid):
        return False
    return not started or pid_start(pid) in ("", started)


def sweep_leftovers() -> list[str]:
    """Remove containers labelled wsconform whose harness process is gone; returns their names."""
    removed = []
    for container in client().containers.list(all=True, filters={"label": LABEL}):
        found = container.labels or {}
        try:
            pid = int(found.get(f"{LABEL}.pid", ""))
        except ValueError:
            continue
        if pid == os.getpid() or _pid_alive(pid, found.get(f"{LABEL}.pidstart", "")):
            continue
        with contextlib.suppress(Exception):
            remove(container)
            removed.append(str(container.name))
    return removed


_swept = False


def sweep_once() -> None:
    """The start of a run in this process: sweep once, quietly (a daemon problem surfaces later)."""
    global _swept
    if _swept:
        return
    _swept = True
    install_handlers()
    with contextlib.suppress(Exception):
        sweep_leftovers()
