"""Server and client targets in containers, seen by the session exactly as local processes are.

**Servers** (``DockerRunner``): each start takes a free port on 127.0.0.1, runs the container detached
on the host network and waits for TCP (and the ``ready`` line) within ``startup_timeout``, failing at
once with the output if the container exits. A pump copies the container's output into the target's
capped log, so ``log_mark``/``log_since`` read a file; ``alive()`` asks the daemon (the output stream
ends ~100 ms after the container does: too late for the check that follows a case that killed it).

**Clients** (``DockerClientLauncher``): one container per case; its stdout is read by a thread and fed
into an ``asyncio.StreamReader`` with ``call_soon_threadsafe``, so the peer sees the same
``ClientProcess`` as with a local process; stderr goes to the log; the thread removes the container
when it exits, and ``kill()`` ends one that lingers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.sampling import ProcessTree
from harness.targets.docker.containers import remove, run_container
from harness.targets.docker.images import ensure_image
from harness.targets.errors import TargetUnavailable
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
    server_values,
)
from harness.targets.runners.output import OutputPump, TargetLog, start_failure

if TYPE_CHECKING:
    from docker.models.containers import Container

    from harness.targets.spec import TargetSpec

READY_POLL = 0.03
DRAIN = 3.0


class DockerRunner(ServerRunner):
    """A server target in a container on the host network, on a fresh free port per start."""

    kind = "docker"
    log: TargetLog

    def __init__(
        self,
        spec: TargetSpec,
        argv: list[str],
        *,
        dockerfile: str,
        log_path: Path,
        ready: str = "tcp",
        startup_timeout: float = 20.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.spec = spec
        self.argv_template = argv
        self.dockerfile = dockerfile
        self.log_path = log_path
        self.log = TargetLog.for_path(log_path)
        self.ready = ready
        self.startup_timeout = startup_timeout
        self.env = env or {}
        self.address = Address("127.0.0.1", 0)
        self.container: Container | None = None
        self._tree: ProcessTree | None = None
        self.image: str | None = None
        self.starts = 0
        self.pump: OutputPump | None = None
        self._last_status = "removed"
        self._command(0)  # an unknown placeholder fails when the session opens

    def replica(self, index: int) -> DockerRunner:
        """Another runner for the same target (own container, own port) for a parallel worker."""
        log = self.log_path.with_name(f"{self.log_path.stem}.{index}{self.log_path.suffix}")
        return DockerRunner(
            self.spec, self.argv_template, dockerfile=self.dockerfile, log_path=log, ready=self.ready,
            startup_timeout=self.startup_timeout, env=self.env,
        )  # fmt: skip

    def _command(self, port: int) -> list[str]:
        values = server_values(self.spec.policies, port, python=False)
        return render_argv(self.argv_template, values, what="docker argv")

    def start(self) -> None:
        self.stop()
        if self.image is None:
            self.image = ensure_image(self.spec, self.dockerfile, self.log_path).tag
        port = free_port()
        argv = self._command(port)
        self.log.note(f"--- start #{self.starts + 1}: docker run {self.image} {' '.join(argv)}")
        started = time.monotonic()
        try:
            container = run_container(self.image, argv, self.env, self.spec.name)
        except Exception as exc:
            raise TargetUnavailable(f"docker: cannot start a container of {self.image}: {exc}") from exc
        self.container = container
        self._tree = None
        stream = container.logs(stdout=True, stderr=True, stream=True, follow=True)
        self.pump = OutputPump(self.log, stream, name=f"docker-log-{container.name}")
        self.starts += 1
        self.address = Address("127.0.0.1", port)
        self._wait_ready(port, started)

    def _wait_ready(self, port: int, started: float) -> None:
        pump = self.pump
        assert pump is not None
        deadline = started + self.startup_timeout
        while True:
            if self._status() not in ("created", "running"):
                code = self.exit_status()
                pump.drain(DRAIN)
                tail = pump.tail()
                self.stop()
                raise TargetUnavailable(
                    start_failure(f"container exited with code {code} before it was ready", self.log, tail)
                )
            line_ok = self.ready != "stdout-line" or pump.ready.is_set()
            if line_ok and port_open("127.0.0.1", port):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(READY_POLL)
        tail = pump.tail()
        self.stop()
        raise TargetUnavailable(
            start_failure(
                f"container not ready on 127.0.0.1:{port} after {self.startup_timeout:g} s", self.log, tail
            )
        )

    def _status(self) -> str:
        self._last_status = "removed"
        if self.container is None:
            return "removed"
        with contextlib.suppress(Exception):
            self.container.reload()
            self._last_status = str(self.container.status)
        return self._last_status

    def memory_bytes(self) -> int | None:
        """RSS of the container's processes, read on the host (the same psutil path as a process).

        Containers share the host's PID namespace view from outside: the daemon reports the host PID
        of the container's init process, and its process tree is the container. Cheaper than the
        stats API (a one-shot stats call takes about a second), which matters at a 50 ms interval.
        """
        container = self.container
        if container is None:
            return None
        tree = self._tree
        if tree is None:
            try:
                pid = int(container.attrs.get("State", {}).get("Pid") or 0)
                if pid <= 0:
                    container.reload()
                    pid = int(container.attrs.get("State", {}).get("Pid") or 0)
                if pid <= 0:
                    return None
                tree = self._tree = ProcessTree(pid)
            except Exception:
                return None
        return tree.rss()

    def alive(self) -> bool:
        # Asked of the daemon (a few ms): the output stream ends ~100 ms after the container stops,
        # too late for the check that follows a case that killed it.
        return self._status() == "running"

    def exit_status(self) -> int | None:
        if self.container is None or self._status() in ("running", "created", "removed"):
            return None
        code = self.container.attrs.get("State", {}).get("ExitCode")
        return int(code) if code is not None else None

    def exited_within(self, seconds: float) -> int | None:
        deadline = time.monotonic() + max(0.0, seconds)
        while self.container is not None:
            if self._status() not in ("running", "created"):
                return self.exit_status()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        return None

    def log_since(self, mark: int) -> str:
        if self._last_status != "running" and self.pump is not None:
            self.pump.drain(DRAIN)  # the container stopped: its last words are still on their way
        return super().log_since(mark)

    def output_tail(self) -> str:
        return self.pump.tail() if self.pump is not None else ""

    def stop(self) -> None:
        """Remove the container (force): never one left behind. Its output is already in the log."""
        container, self.container = self.container, None
        if container is None:
            return
        with contextlib.suppress(Exception):
            remove(container)
        if self.pump is not None:
            self.pump.drain(DRAIN)


class DockerClientProcess:
    """One client container seen as a ``ClientProcess``: stdout lines stream into a StreamReader,
    ``wait`` gives the exit code, and the container removes itself from the daemon once it exits."""

    def __init__(self, container: Container, loop: asyncio.AbstractEventLoop, log: TargetLog) -> None:
        self.container = container
        self.loop = loop
        self.log = log
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader(limit=2**20)
        self._exit: asyncio.Future[int] = loop.create_future()
        self._thread = threading.Thread(target=self._pump, name=f"docker-{container.name}", daemon=True)
        self._thread.start()

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the case's loop is gone: nobody is listening
            self.loop.call_soon_threadsafe(fn, *args)

    def _pump(self) -> None:
        reader = self.stdout
        assert reader is not None
        code = -1
        try:
            for chunk in self.container.logs(stdout=True, stderr=False, stream=True, follow=True):
                self._soon(reader.feed_data, bytes(chunk))
            result = self.container.wait(timeout=30)
            code = int(result.get("StatusCode", -1))
            stderr = bytes(self.container.logs(stdout=False, stderr=True))
            self.log.write(stderr + f"--- client container exited with {code}\n".encode())
        except Exception as exc:
            self.log.note(f"--- client container: {type(exc).__name__}: {exc}")
        finally:
            with contextlib.suppress(Exception):
                remove(self.container)
            self._soon(reader.feed_eof)
            self._soon(self._set_exit, code)

    def _set_exit(self, code: int) -> None:
        if not self._exit.done():
            self._exit.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.container.kill()


class DockerClientLauncher(ClientLauncher):
    """A client target in containers: one container per case, removed after it in every path."""

    kind = "docker"
    log: TargetLog

    def __init__(
        self, spec: TargetSpec, argv: list[str], *, dockerfile: str, log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        check_template(argv, [p for p in CLIENT_PLACEHOLDERS if p != "python"], what="docker argv")
        self.spec = spec
        self.argv_template = argv
        self.dockerfile = dockerfile
        self.log_path = log_path
        self.log = TargetLog.for_path(log_path)
        self.env = env or {}
        self.image: str | None = None
        self.address = Address("127.0.0.1", 0)  # a client target has no address: the peer listens

    def start(self) -> None:
        """Before the first case (outside any case deadline): make sure the image exists."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.image is None:
            self.image = ensure_image(self.spec, self.dockerfile, self.log_path).tag

    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> DockerClientProcess:
        if self.image is None:
            raise TargetUnavailable(f"docker: the image of {self.spec.name} is not built")
        argv = render_argv(
            self.argv_template, client_values(url, protocols, python=False), what="docker argv"
        )
        self.log.note(f"--- client: docker run {self.image} {' '.join(argv)}")
        env = {**self.env, **(scenario or {})}
        image = self.image
        try:
            container = await asyncio.to_thread(run_container, image, argv, env, self.spec.name)
        except Exception as exc:
            raise TargetUnavailable(f"docker: cannot start a container of {image}: {exc}") from exc
        return DockerClientProcess(container, asyncio.get_running_loop(), self.log)
