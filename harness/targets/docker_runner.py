"""Targets in containers: build the target's image, run it on the host network, never leave it behind.

Why containers: a target in Go, Node or C needs a toolchain the harness machine need not have; its
Dockerfile brings it. The contract (docs/architecture.md, "Container targets") is short: the build
context is the target folder plus ``wsconform-ca.pem`` (the host's CA bundle, for package managers
behind a TLS-intercepting proxy), ``BASE_IMAGE`` is plain Debian bookworm, and ``argv`` in
``target.yaml`` is the full container command with the usual placeholders.

Three rules shape this module:

* **An unchanged target is never rebuilt.** The tag is a hash of what goes into the image (context
  files, Dockerfile, base image id, CA bundle), so "is it built?" is "does the tag exist?", and a file
  lock per tag makes pytest-xdist workers wait for one build instead of racing.
* **Only loopback.** Containers and builds use the host network (the daemon here runs with
  ``--bridge=none``), and adapters bind 127.0.0.1, exactly like local processes.
* **Nothing survives the harness.** Every container carries the labels ``wsconform=1`` and
  ``wsconform.pid=<harness pid>``; atexit and SIGTERM/SIGHUP remove the ones this process started,
  and each run first sweeps containers whose harness process is gone (killed with SIGKILL).

The Docker SDK is imported lazily: a run that uses no container pays nothing for it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from harness.sampling import ProcessTree
from harness.targets.runners import (
    LOG_CAPTURE,
    Address,
    Runner,
    TargetUnavailable,
    free_port,
    port_open,
)

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

    from harness.targets.spec import TargetSpec

DEFAULT_BASE_IMAGE = "wsconform/base:bookworm"
CA_FILE = "wsconform-ca.pem"
LABEL = "wsconform"
BUILD_TIMEOUT = 1800.0  # one read of the build stream (a slow compile prints nothing for minutes)
API_TIMEOUT = 60.0
BOOTSTRAP_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bootstrap-base-image"


# -- the daemon ---------------------------------------------------------------------------------------

_local = threading.local()


def client() -> DockerClient:
    """A Docker client for this thread (the SDK's HTTP session is not meant to be shared by threads)."""
    cli: DockerClient | None = getattr(_local, "client", None)
    if cli is None:
        try:
            import docker
        except ImportError as exc:  # pragma: no cover - docker is a dependency
            raise TargetUnavailable("docker: the Python package 'docker' is not installed") from exc
        try:
            cli = docker.from_env(timeout=int(API_TIMEOUT))
        except Exception as exc:
            raise TargetUnavailable(f"docker: daemon not reachable ({exc})") from exc
        _local.client = cli
    return cli


@functools.cache
def daemon_problem() -> str | None:
    """Why the Docker daemon cannot be used (None: it answers). Cached: asked once per process."""
    try:
        import docker
    except ImportError:
        return "the Python package 'docker' is not installed"
    try:
        probe = docker.from_env(timeout=5)
        try:
            probe.ping()
        finally:
            probe.close()
    except Exception:
        return f"daemon not reachable at {os.environ.get('DOCKER_HOST') or 'unix:///var/run/docker.sock'}"
    return None


def _image_id(name: str) -> str | None:
    import docker.errors

    try:
        return str(client().images.get(name).id)
    except docker.errors.ImageNotFound:
        return None


def base_image() -> str | None:
    """The BASE_IMAGE build argument: $WSCONFORM_BASE_IMAGE, else the local bootstrap image if it
    exists, else None (the Dockerfile's own default, ``debian:bookworm-slim``, pulled if possible)."""
    override = os.environ.get("WSCONFORM_BASE_IMAGE")
    if override:
        return override
    return DEFAULT_BASE_IMAGE if _image_id(DEFAULT_BASE_IMAGE) else None


def base_buildable() -> bool:
    """The local base image can be made here (debootstrap + our script), see ``ensure_base``."""
    return BOOTSTRAP_SCRIPT.is_file() and shutil.which("debootstrap") is not None


@functools.cache
def docker_problem() -> str | None:
    """Why container targets cannot run here, for automatic target selection (None: they can).

    Usable means the daemon answers and a base image is there or can be made; a machine that can pull
    ``debian:bookworm-slim`` from a registry still runs an explicit ``--runner docker``.
    """
    problem = daemon_problem()
    if problem:
        return problem
    if os.environ.get("WSCONFORM_BASE_IMAGE"):
        return None
    try:
        if base_image() or _image_id("debian:bookworm-slim") or base_buildable():
            return None
    except Exception as exc:
        return f"daemon not usable ({exc})"
    return f"base image {DEFAULT_BASE_IMAGE} missing and not buildable (install debootstrap)"


def ensure_base(log: Callable[[str], None]) -> str | None:
    """The base image to build from, bootstrapping the local one first when it is missing."""
    base = base_image()
    if base is not None or not base_buildable() or _image_id("debian:bookworm-slim"):
        return base
    with _file_lock("base"):
        if _image_id(DEFAULT_BASE_IMAGE) is None:
            log(f"--- bootstrapping {DEFAULT_BASE_IMAGE} with {BOOTSTRAP_SCRIPT}\n")
            out = subprocess.run(
                [str(BOOTSTRAP_SCRIPT), DEFAULT_BASE_IMAGE], capture_output=True, text=True, timeout=1200
            )
            log(out.stdout + out.stderr)
            if out.returncode != 0:
                raise TargetUnavailable(f"docker: cannot bootstrap the base image:\n{out.stderr[-2000:]}")
    return base_image()


# -- images -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    cached: bool


_build_failures: dict[str, str] = {}


def ca_bundle() -> bytes:
    """The host's CA bundle for package managers inside builds ($PIP_CERT, $SSL_CERT_FILE, Debian's)."""
    for candidate in (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                      "/etc/ssl/certs/ca-certificates.crt"):  # fmt: skip
        if candidate and os.path.isfile(candidate):
            with contextlib.suppress(OSError):
                return Path(candidate).read_bytes()
    return b""


def _context_files(folder: Path) -> list[Path]:
    skip = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "node_modules", CA_FILE}
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part in skip for part in rel.parts) or path.suffix == ".pyc" or not path.is_file():
            continue
        out.append(rel)
    return out


def image_name(target: str) -> str:
    return "wsconform/" + (re.sub(r"[^a-z0-9._-]+", "-", target.lower()).strip("-._") or "target")


def image_tag(target: str, folder: Path, dockerfile: str, base_id: str, ca: bytes) -> str:
    """``wsconform/<target>:<12 hex>`` over everything that goes into the image."""
    h = hashlib.sha256()
    for rel in _context_files(folder):
        data = (folder / rel).read_bytes()
        h.update(b"file\0" + rel.as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    h.update(b"dockerfile\0" + dockerfile.encode() + b"\0")
    h.update(b"base\0" + base_id.encode() + b"\0")
    h.update(b"ca\0" + ca)
    return f"{image_name(target)}:{h.hexdigest()[:12]}"


def _tag_for(name: str, folder: Path, dockerfile: str, base: str | None, ca: bytes) -> str:
    return image_tag(name, folder, dockerfile, (base and _image_id(base)) or base or "default", ca)


def built_image(spec: TargetSpec, dockerfile: str) -> str | None:
    """The tag of the target's current image if it is built (nothing is built or pulled here)."""
    if spec.directory is None or not (spec.directory / dockerfile).is_file():
        return None
    tag = _tag_for(spec.name, spec.directory, dockerfile, base_image(), ca_bundle())
    return tag if _image_id(tag) else None


@contextlib.contextmanager
def _file_lock(key: str, timeout: float = BUILD_TIMEOUT) -> Iterator[None]:
    """Across processes (xdist workers) and threads: flock is per open file description. Bounded:
    a build that holds the lock longer than ``timeout`` is taken to be stuck."""
    path = Path(tempfile.gettempdir()) / f"wsconform-build-{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.lock"
    deadline = time.monotonic() + timeout
    with path.open("a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TargetUnavailable(f"docker: {path} still locked after {timeout:g} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_image(spec: TargetSpec, dockerfile: str, log_path: Path) -> Built:
    """Build the target's image unless its tag already exists; a failure raises TargetUnavailable
    with the end of the build output (and is remembered, so a run does not rebuild per case)."""
    folder = spec.directory
    if folder is None or not (folder / dockerfile).is_file():
        raise TargetUnavailable(f"docker: {spec.name} has no {dockerfile} in {folder}")
    problem = daemon_problem()
    if problem:
        raise TargetUnavailable(f"docker: {problem}")
    log_path.parent.mkdir(parents=True, exist_ok=True)

    def log(text: str) -> None:
        with log_path.open("a", encoding="utf-8", errors="replace") as fh:
            fh.write(text)

    base = ensure_base(log)
    ca = ca_bundle()
    tag = _tag_for(spec.name, folder, dockerfile, base, ca)
    if tag in _build_failures:
        raise TargetUnavailable(_build_failures[tag])
    if _image_id(tag):
        return Built(tag, 0.0, True)
    with _file_lock(tag):
        if _image_id(tag):  # another worker built it while we waited
            return Built(tag, 0.0, True)
        started = time.monotonic()
        log(f"\n--- docker build {tag} (BASE_IMAGE={base or 'Dockerfile default'})\n")
        try:
            _build(folder, dockerfile, tag, base, ca, spec.name, log)
        except TargetUnavailable as exc:
            _build_failures[tag] = str(exc)
            raise
        _prune_older(tag)
        return Built(tag, time.monotonic() - started, False)


def _prune_older(tag: str) -> None:
    """Drop this target's images of older contents (hash tags only; a hand-made ``:dev`` stays).
    An image a container still uses is kept: the daemon refuses, and that is fine."""
    repo, _, keep = tag.rpartition(":")
    for image in client().images.list(name=repo):
        for old in image.tags:
            name, _, ref = old.rpartition(":")
            if name == repo and ref != keep and re.fullmatch(r"[0-9a-f]{12}", ref):
                with contextlib.suppress(Exception):
                    client().images.remove(old)


def _build(
    folder: Path, dockerfile: str, tag: str, base: str | None, ca: bytes, name: str,
    log: Callable[[str], None],
) -> None:  # fmt: skip
    tail: list[str] = []
    error: str | None = None
    with tempfile.TemporaryDirectory(prefix="wsconform-ctx-") as tmp:
        ctx = Path(tmp) / "context"
        shutil.copytree(folder, ctx, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "node_modules"))
        (ctx / CA_FILE).write_bytes(ca)
        try:
            stream = client().api.build(
                path=str(ctx), tag=tag, dockerfile=dockerfile, buildargs={"BASE_IMAGE": base} if base else {},
                network_mode="host", rm=True, forcerm=True, decode=True, timeout=int(BUILD_TIMEOUT),
                labels={LABEL: "1", f"{LABEL}.target": name},
            )  # fmt: skip
            for chunk in stream:
                text = str(chunk.get("stream") or chunk.get("status") or "")
                if "error" in chunk:
                    error = str(chunk.get("error"))
                    text += error + "\n"
                if text:
                    log(text)
                    tail = (tail + text.splitlines())[-20:]
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log(error + "\n")
    if error is not None:
        lines = "\n".join(tail[-20:])
        raise TargetUnavailable(f"docker: build of {tag} failed: {error.strip()}\n{lines}")


# -- containers this process started ------------------------------------------------------------------

_ours: dict[str, str] = {}  # container id -> name
_ours_lock = threading.Lock()
_names = itertools.count(1)
_handlers_installed = False


def _labels(target: str) -> dict[str, str]:
    return {LABEL: "1", f"{LABEL}.pid": str(os.getpid()), f"{LABEL}.target": target,
            f"{LABEL}.pidstart": _pid_start(os.getpid())}  # fmt: skip


def _pid_start(pid: int) -> str:
    """When the process started (guards against a reused pid when sweeping)."""
    try:
        import psutil

        return f"{psutil.Process(pid).create_time():.2f}"
    except Exception:
        return ""


def _run_container(image: str, argv: list[str], env: dict[str, str], target: str) -> Container:
    name = f"wsconform-{image_name(target).split('/', 1)[1]}-{os.getpid()}-{next(_names)}"
    _install_handlers()
    container = client().containers.run(
        image, argv, detach=True, network_mode="host", labels=_labels(target), environment=env,
        name=name, stdin_open=False, tty=False,
    )  # fmt: skip
    with _ours_lock:
        _ours[str(container.id)] = name
    return container


def _remove(container: Container) -> None:
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


def _install_handlers() -> None:
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
    return not started or _pid_start(pid) in ("", started)


def sweep_leftovers() -> list[str]:
    """Remove containers labelled wsconform whose harness process is gone; returns their names."""
    removed = []
    for container in client().containers.list(all=True, filters={"label": LABEL}):
        labels = container.labels or {}
        try:
            pid = int(labels.get(f"{LABEL}.pid", ""))
        except ValueError:
            continue
        if pid == os.getpid() or _pid_alive(pid, labels.get(f"{LABEL}.pidstart", "")):
            continue
        with contextlib.suppress(Exception):
            _remove(container)
            removed.append(str(container.name))
    return removed


_swept = False


def sweep_once() -> None:
    """The start of a run in this process: sweep once, quietly (a daemon problem surfaces later)."""
    global _swept
    if _swept:
        return
    _swept = True
    _install_handlers()
    with contextlib.suppress(Exception):
        sweep_leftovers()


# -- server role --------------------------------------------------------------------------------------


class DockerRunner(Runner):
    """A server target in a container on the host network, on a fresh free port per start.

    The container's output is streamed into the target's log file by a thread, so that ``log_mark``
    and ``log_since`` read a local file instead of asking the daemon for the whole output every case.
    """

    restartable = True

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
        self.ready = ready
        self.startup_timeout = startup_timeout
        self.env = env or {}
        self.address = Address("127.0.0.1", 0)
        self.container: Container | None = None
        self._tree: ProcessTree | None = None
        self.image: str | None = None
        self.starts = 0
        self._pump: threading.Thread | None = None
        self._last_status = "removed"

    def replica(self, index: int) -> DockerRunner:
        """Another runner for the same target (own container, own port) for a parallel worker."""
        log = self.log_path.with_name(f"{self.log_path.stem}.{index}{self.log_path.suffix}")
        return DockerRunner(
            self.spec, self.argv_template, dockerfile=self.dockerfile, log_path=log, ready=self.ready,
            startup_timeout=self.startup_timeout, env=self.env,
        )  # fmt: skip

    def _command(self, port: int) -> list[str]:
        values = {k: v for k, v in self.spec.placeholders(port).items() if k != "python"}
        try:
            return [a.format(**values) for a in self.argv_template]
        except (KeyError, IndexError) as exc:
            raise TargetUnavailable(f"unknown placeholder {exc} in docker argv {self.argv_template}") from exc

    def start(self) -> None:
        self.stop()
        if self.image is None:
            self.image = ensure_image(self.spec, self.dockerfile, self.log_path).tag
        port = free_port()
        argv = self._command(port)
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(f"\n--- start #{self.starts + 1}: docker run {self.image} {' '.join(argv)}\n")
        try:
            container = _run_container(self.image, argv, self.env, self.spec.name)
        except Exception as exc:
            raise TargetUnavailable(f"docker: cannot start a container of {self.image}: {exc}") from exc
        self.container = container
        self._tree = None
        self._pump = threading.Thread(target=self._copy_output, args=(container,), daemon=True,
                                      name=f"docker-log-{container.name}")  # fmt: skip
        self._pump.start()
        self.starts += 1
        self.address = Address("127.0.0.1", port)
        self._wait_ready(port)

    def _copy_output(self, container: Container) -> None:
        """The container's stdout and stderr, as they come, appended to the target's log."""
        with contextlib.suppress(Exception), self.log_path.open("ab") as fh:
            for chunk in container.logs(stdout=True, stderr=True, stream=True, follow=True):
                fh.write(bytes(chunk))
                fh.flush()

    def _drain(self) -> None:
        """Let the copy thread finish (the container stopped): the log is then complete."""
        if self._pump is not None:
            self._pump.join(timeout=3.0)

    def _wait_ready(self, port: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        mark = self.log_mark()
        while time.monotonic() < deadline:
            if self._status() not in ("created", "running"):
                code = self.exit_status()
                self._drain()
                logs = self.log_since(mark)[-2000:]
                self.stop()
                raise TargetUnavailable(f"container exited with code {code} before it was ready:\n{logs}")
            line_ok = self.ready != "stdout-line" or "ready" in self.log_since(mark)
            if line_ok and port_open("127.0.0.1", port):
                return
            time.sleep(0.03)
        logs = self.log_since(mark)[-2000:]
        self.stop()
        raise TargetUnavailable(
            f"container not ready on 127.0.0.1:{port} after {self.startup_timeout:g} s; its output:\n{logs}"
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

    def log_mark(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, mark: int) -> str:
        if self._last_status != "running":
            self._drain()  # the container stopped: its last words are still on their way to the log
        try:
            with self.log_path.open("rb") as f:
                f.seek(mark)
                data = f.read(LOG_CAPTURE + 1)
        except OSError:
            return ""
        text = data[:LOG_CAPTURE].decode("utf-8", "replace")
        return text + ("\n[… log truncated]" if len(data) > LOG_CAPTURE else "")

    def stop(self) -> None:
        """Remove the container (force): never one left behind. Its output is already in the log."""
        container, self.container = self.container, None
        if container is None:
            return
        with contextlib.suppress(Exception):
            _remove(container)
        self._drain()
        self._pump = None


# -- client role --------------------------------------------------------------------------------------


class DockerClientProcess:
    """One client container seen as a ``ClientProcess``: stdout lines stream into a StreamReader,
    ``wait`` gives the exit code, and the container removes itself from the daemon once it exits."""

    def __init__(self, container: Container, loop: asyncio.AbstractEventLoop, log_path: Path) -> None:
        self.container = container
        self.loop = loop
        self.log_path = log_path
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
            with contextlib.suppress(OSError), self.log_path.open("ab") as fh:
                fh.write(stderr + f"--- client container exited with {code}\n".encode())
        except Exception as exc:
            with contextlib.suppress(OSError), self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(f"--- client container: {type(exc).__name__}: {exc}\n")
        finally:
            with contextlib.suppress(Exception):
                _remove(self.container)
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


class DockerClientLauncher(Runner):
    """A client target in containers: one container per case, removed after it in every path."""

    launches_clients = True

    def __init__(
        self, spec: TargetSpec, argv: list[str], *, dockerfile: str, log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.spec = spec
        self.argv_template = argv
        self.dockerfile = dockerfile
        self.log_path = log_path
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
        values = {"url": url, "protocols": ",".join(protocols), "host": "127.0.0.1"}
        try:
            argv = [a.format(**values) for a in self.argv_template]
        except (KeyError, IndexError) as exc:
            raise TargetUnavailable(f"unknown placeholder {exc} in docker argv {self.argv_template}") from exc
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(f"\n--- client: docker run {self.image} {' '.join(argv)}\n")
        env = {**self.env, **(scenario or {})}
        image = self.image
        try:
            container = await asyncio.to_thread(_run_container, image, argv, env, self.spec.name)
        except Exception as exc:
            raise TargetUnavailable(f"docker: cannot start a container of {image}: {exc}") from exc
        return DockerClientProcess(container, asyncio.get_running_loop(), self.log_path)
