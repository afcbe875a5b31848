"""The Docker daemon: one SDK client per thread, and whether container targets can run here."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.targets.errors import TargetUnavailable

if TYPE_CHECKING:
    from docker import DockerClient

DEFAULT_BASE_IMAGE = "wsconform/base:bookworm"
LABEL = "wsconform"
BUILD_TIMEOUT = 1800.0  # one read of the build stream (a slow compile prints nothing for minutes)
API_TIMEOUT = 60.0
BOOTSTRAP_SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bootstrap-base-image"

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


def image_id(name: str) -> str | None:
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
    return DEFAULT_BASE_IMAGE if image_id(DEFAULT_BASE_IMAGE) else None


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
        if base_image() or image_id("debian:bookworm-slim") or base_buildable():
            return None
    except Exception as exc:
        return f"daemon not usable ({exc})"
    return f"base image {DEFAULT_BASE_IMAGE} missing and not buildable (install debootstrap)"


@contextlib.contextmanager
def file_lock(key: str, timeout: float = BUILD_TIMEOUT) -> Iterator[None]:
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


def ensure_base(log: Callable[[str], None]) -> str | None:
    """The base image to build from, bootstrapping the local one first when it is missing."""
    base = base_image()
    if base is not None or not base_buildable() or image_id("debian:bookworm-slim"):
        return base
    with file_lock("base"):
        if image_id(DEFAULT_BASE_IMAGE) is None:
            log(f"--- bootstrapping {DEFAULT_BASE_IMAGE} with {BOOTSTRAP_SCRIPT}\n")
            out = subprocess.run(
                [str(BOOTSTRAP_SCRIPT), DEFAULT_BASE_IMAGE], capture_output=True, text=True, timeout=1200
            )
            log(out.stdout + out.stderr)
            if out.returncode != 0:
                raise TargetUnavailable(f"docker: cannot bootstrap the base image:\n{out.stderr[-2000:]}")
    return base_image()
