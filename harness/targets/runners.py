"""Start, watch, restart and stop a target for a run.

Three ways to reach a server target: a local process started from ``target.yaml`` or from a user's
``--target-cmd`` (the harness picks a free port, waits until the target is ready, restarts it if a
case killed it), or an already running server given by ``--target-url`` (never restarted). Every
wait has a timeout; every process is started in its own session so that stopping it also stops
anything it spawned; ``atexit`` stops whatever is left if the harness itself is interrupted.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import ipaddress
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import psutil

from harness.sampling import ProcessTree

if TYPE_CHECKING:
    from harness.peer.server import ClientProcess

LOOPBACK_HOSTS = {"localhost"}
LOG_CAPTURE = 16 * 1024


class TargetUnavailable(RuntimeError):
    """The target could not be started or reached: the environment's fault, reported as ERROR."""


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (allocated, never hard-coded)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_loopback(host: str) -> None:
    """Refuse any address outside 127.0.0.0/8 and ::1: wsconform only ever talks to this machine."""
    if host in LOOPBACK_HOSTS:
        return
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return
    except ValueError:
        pass
    raise TargetUnavailable(
        f"{host} is not a loopback address; wsconform only connects to 127.0.0.0/8 or ::1"
    )


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Address:
    host: str
    port: int
    path: str = "/"


class Runner:
    """Interface: ``start``, ``alive``, ``address``, ``log_mark``/``log_since``, ``stop``.

    A runner of a client target (``launches_clients``) also has ``launch``: nothing runs between
    cases, and each case starts one client with the case's URL.
    """

    restartable = False
    launches_clients = False
    address: Address

    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> ClientProcess:
        raise TargetUnavailable(f"{type(self).__name__} does not start clients")

    def start(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        return True

    def exit_status(self) -> int | None:
        return None

    def log_mark(self) -> int:
        return 0

    def log_since(self, mark: int) -> str:
        return ""

    def memory_bytes(self) -> int | None:
        """Resident memory of the running target in bytes, or None where it cannot be measured.

        Sampled every few tens of milliseconds by ``harness.sampling`` during resource cases, so it
        must be cheap and must not raise: a process tree through psutil here, container stats in a
        Docker runner, nothing for a server somebody else runs (``--target-url``).
        """
        return None

    def stop(self) -> None:
        return None


class UrlRunner(Runner):
    """A server somebody else runs: only checked, never started or restarted."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "http"):
            raise TargetUnavailable(f"unsupported URL scheme in {url!r} (use ws://)")
        host = parts.hostname or ""
        ensure_loopback(host)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self.address = Address(host, parts.port or 80, path)

    def start(self) -> None:
        if not port_open(self.address.host, self.address.port, timeout=2.0):
            raise TargetUnavailable(f"nothing accepts TCP at {self.address.host}:{self.address.port}")


_live: weakref.WeakSet[ProcessRunner] = weakref.WeakSet()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the target gets SIGTERM when the harness dies, even by SIGKILL, so nothing is left behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


@atexit.register
def _stop_all() -> None:
    for runner in list(_live):
        runner.stop()


class ProcessRunner(Runner):
    """A local command with ``{port}``-style placeholders, started on a fresh free port."""

    restartable = True

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
    ) -> None:
        self.argv_template = argv
        self.placeholders_for = placeholders_for
        self.cwd = cwd
        self.log_path = log_path
        self.ready = ready
        self.startup_timeout = startup_timeout
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.address = Address("127.0.0.1", 0)
        self.starts = 0
        self._tree: ProcessTree | None = None

    @classmethod
    def from_command(cls, command: str, log_path: Path) -> ProcessRunner:
        """``--target-cmd "python my_server.py --port {port}"``."""
        argv = shlex.split(command)
        if not any("{port}" in a or "{url}" in a for a in argv):
            raise TargetUnavailable(
                "--target-cmd must contain {port} (or {url}) so the harness can pick the port"
            )

        def fill(port: int) -> dict[str, str]:
            return {"port": str(port), "host": "127.0.0.1", "url": f"ws://127.0.0.1:{port}/"}

        return cls(argv, fill, cwd=None, log_path=log_path)

    def start(self) -> None:
        self.stop()
        port = free_port()
        values = self.placeholders_for(port)
        try:
            argv = [a.format(**values) for a in self.argv_template]
        except (KeyError, IndexError) as exc:
            raise TargetUnavailable(f"unknown placeholder {exc} in {self.argv_template}") from exc
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"\n--- start #{self.starts + 1}: {shlex.join(argv)}\n".encode())
        log.flush()
        try:
            self.proc = subprocess.Popen(
                argv,
                cwd=self.cwd,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as exc:
            raise TargetUnavailable(f"cannot start {argv[0]!r}: {exc}") from exc
        finally:
            log.close()
        _live.add(self)
        self.starts += 1
        self.address = Address("127.0.0.1", port)
        self._wait_ready(port)

    def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        mark = self.log_mark()
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = self.proc.returncode if self.proc else None
                tail = self.log_since(max(0, mark - 2000))[-2000:]
                raise TargetUnavailable(f"target exited with code {code} before it was ready:\n{tail}")
            line_ok = self.ready != "stdout-line" or b"ready" in self.log_path.read_bytes()[mark - 200 :]
            if line_ok and port_open("127.0.0.1", port):
                return
            time.sleep(0.02)
        self.stop()
        raise TargetUnavailable(f"target not ready on 127.0.0.1:{port} after {self.startup_timeout:g} s")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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

    def exit_status(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def log_mark(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, mark: int) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(mark)
                data = f.read(LOG_CAPTURE + 1)
        except OSError:
            return ""
        text = data[:LOG_CAPTURE].decode("utf-8", "replace")
        return text + ("\n[… log truncated]" if len(data) > LOG_CAPTURE else "")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=3)


class ClientLauncher(ProcessRunner):
    """A client target: nothing runs between cases; each case starts the client with its own URL.

    The client's stdout carries its API events (JSON lines), so it is piped to the harness; stderr
    goes to the target's log like a server's output does.
    """

    launches_clients = True

    def __init__(
        self, argv: list[str], *, cwd: Path | None, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(argv, lambda port: {}, cwd=cwd, log_path=log_path, env=env)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)

    def alive(self) -> bool:
        return True

    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> asyncio.subprocess.Process:
        values = {"python": sys.executable, "url": url, "protocols": ",".join(protocols), "host": "127.0.0.1"}
        try:
            argv = [a.format(**values) for a in self.argv_template]
        except (KeyError, IndexError) as exc:
            raise TargetUnavailable(f"unknown placeholder {exc} in {self.argv_template}") from exc
        with self.log_path.open("ab") as log:
            log.write(f"\n--- client: {shlex.join(argv)}\n".encode())
            log.flush()
            try:
                return await asyncio.create_subprocess_exec(
                    *argv,
                    cwd=self.cwd,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env={**os.environ, **self.env, **(scenario or {}), "PYTHONUNBUFFERED": "1"},
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            except OSError as exc:
                raise TargetUnavailable(f"cannot start {argv[0]!r}: {exc}") from exc
