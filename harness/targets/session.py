"""A target for the length of a run: which runner reaches it, what it is, what it is expected to do.

Both front ends (``wsconform run`` and the pytest plugin) create sessions through
``selection.open_sessions``, so ``--target NAME``, ``--target-file``, ``--target-url``,
``--target-cmd`` and ``--client-cmd`` mean the same thing in both; every session is made from a
``TargetSpec`` (a target folder's, or the one an ad-hoc declaration gives) by ``session_for``.

**Giving up.** A target that fails to start (exits at once, or is not ready within its startup
timeout) is retried by the next case, since a port clash or a slow machine can be transient; after
``GIVE_UP_AFTER`` consecutive failures every remaining case is ERROR at once with the same cause, so a
969-case run against a command that never becomes ready ends after three startup timeouts instead
of 969. Parallel replicas of a target share the count.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.targets import availability
from harness.targets.adhoc import AdhocTarget, to_spec
from harness.targets.errors import TargetUnavailable
from harness.targets.runners.base import Runner, server_values
from harness.targets.runners.browser import BrowserLauncher
from harness.targets.runners.persistent import PersistentClientLauncher
from harness.targets.runners.process import ProcessClientLauncher, ProcessRunner
from harness.targets.runners.url import UrlRunner
from harness.targets.setup import run_setup
from harness.targets.spec import ExpectedDeviation, Policies, Role, RunnerKind, TargetSpec, load_targets

DEFAULT_TARGET = "websockets"
GIVE_UP_AFTER = 3


@dataclass
class StartHistory:
    """Consecutive start failures of one target, shared by its replicas; the cause once given up."""

    failures: int = 0
    gave_up: str | None = None
    setup_error: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def failed(self, name: str, exc: TargetUnavailable) -> None:
        with self.lock:
            self.failures += 1
            if self.failures >= GIVE_UP_AFTER and self.gave_up is None:
                self.gave_up = (
                    f"gave up on {name} after {self.failures} consecutive failed starts; the last: {exc}"
                )

    def succeeded(self) -> None:
        with self.lock:
            self.failures = 0


@dataclass
class TargetSession:
    name: str
    runner: Runner
    spec: TargetSpec | None = None
    role: Role = "server"
    started: bool = False
    restarts: int = 0
    history: StartHistory = field(default_factory=StartHistory)
    _version: str | None = field(default=None, repr=False)
    _setup_done: bool = field(default=False, repr=False)
    # Client launchers are shared by every worker (one session, many threads): starting, setting up
    # and giving up must happen once, not interleaved.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def runner_kind(self) -> str:
        """How the target runs: process, docker, url, browser (external: a client that comes itself)."""
        return str(self.runner.kind)

    @property
    def policies(self) -> Policies:
        return self.spec.policies if self.spec else Policies()

    @property
    def expected(self) -> dict[str, ExpectedDeviation]:
        return self.spec.expected if self.spec else {}

    def info(self) -> dict[str, Any]:
        if self._version is None:
            self._version = availability.resolved_version(self.spec) if self.spec else "unknown"
        return {
            "name": self.name,
            "implementation": self.spec.implementation if self.spec else self.name,
            "language": self.spec.language if self.spec else "unknown",
            "version": self._version,
            "role": self.role,
            "runner": self.runner_kind,
        }

    def replica(self, index: int) -> TargetSession | None:
        """A session for parallel worker ``index``: its own runner copy (own process or container,
        own port), this session when the runner is shared (client launchers), None when the target
        cannot be duplicated (a URL). Start failures are counted together."""
        clone = self.runner.replica(index)
        if clone is None:
            return None
        if clone is self.runner:
            return self
        twin = TargetSession(self.name, clone, self.spec, role=self.role, history=self.history)
        twin._setup_done = self._setup_done
        return twin

    def prepare(self) -> None:
        """Run the target's one-time set-up now (before worker processes fork); a failure is kept in
        the history, so every case reports it as ERROR (``_ensure_setup``)."""
        with self._lock, contextlib.suppress(TargetUnavailable):
            self._ensure_setup()

    def ensure_running(self) -> str | None:
        """Start the target, or restart it if it died; returns a note when it had to restart.

        Raises ``TargetUnavailable`` when it cannot start (the case is ERROR); after
        ``GIVE_UP_AFTER`` consecutive failures it raises at once, without another attempt.
        """
        with self._lock:
            return self._ensure_running()

    def _ensure_running(self) -> str | None:
        if self.history.gave_up is not None:
            raise TargetUnavailable(self.history.gave_up)
        if self.started and self.runner.alive():
            return None
        self._ensure_setup()
        note = None
        if self.started:
            if not self.runner.restartable:
                raise TargetUnavailable(
                    f"{self.name} is not reachable and cannot be restarted by the harness"
                )
            note = f"target had exited (status {self.runner.exit_status()}); restarted"
            self.restarts += 1
        try:
            self.runner.start()
        except TargetUnavailable as exc:
            self.history.failed(self.name, exc)
            raise
        self.history.succeeded()
        self.started = True
        return note

    def _ensure_setup(self) -> None:
        """Run the target's ``setup:`` (``npm ci``...) before its first local start.

        Only local processes need it (an image does its own set-up in its Dockerfile). A failure is
        remembered: every case of the run reports the same ERROR without running the command again.
        """
        if self.history.setup_error is not None:
            raise TargetUnavailable(self.history.setup_error)
        runner = self.runner
        if (
            self._setup_done
            or self.spec is None
            or not isinstance(runner, ProcessRunner | ProcessClientLauncher | PersistentClientLauncher)
        ):
            return
        try:
            run_setup(self.spec, runner.log_path)
        except TargetUnavailable as exc:
            self.history.setup_error = str(exc)
            raise
        self._setup_done = True

    def stop(self) -> None:
        self.runner.stop()
        self.started = False


def persistent_clients() -> bool:
    """Whether a client target that declares a persistent mode runs in it (docs/adapter-protocol.md
    §1): yes, unless ``WSCONFORM_CLIENT_MODE=per-case`` asks for one process per case (what the test
    that compares both modes, and a user chasing a difference between them, set)."""
    return os.environ.get("WSCONFORM_CLIENT_MODE", "persistent") != "per-case"


def session_for(
    spec: TargetSpec, role: Role, *, log_dir: Path, runner: RunnerKind | None = None
) -> TargetSession:
    """The session for one role of a declared target, with the runner ``availability.choose`` picks.

    Server sessions are named like the target, client sessions ``NAME@client``; logs go to
    ``log_dir/NAME.ROLE.log``. Raises ``TargetUnavailable`` for a role or runner the spec lacks and
    for an argv with an unknown placeholder.
    """
    rs = spec.role(role)
    if rs is None:
        raise TargetUnavailable(f"target {spec.name!r} has no {role} role")
    kind = availability.choose(spec, role, runner)
    if kind is None:
        offer = f"no {runner} runner" if runner else "no runner"
        raise TargetUnavailable(f"target {spec.name!r} has {offer} for the {role} role")
    label = spec.name if role == "server" else f"{spec.name}@client"
    log_path = log_dir / f"{spec.name}.{role}.log"
    if kind == "url":
        assert rs.url is not None
        return TargetSession(label, UrlRunner(rs.url), spec, role=role)
    if kind == "browser":
        assert rs.browser is not None and spec.directory is not None
        return TargetSession(label, BrowserLauncher(spec.directory / rs.browser.script, log_path=log_path),
                             spec, role=role)  # fmt: skip
    if kind == "docker":
        return TargetSession(label, _docker_runner(spec, role, log_path), spec, role=role)
    process = rs.process
    assert process is not None
    if role == "client":
        launcher: Runner
        if rs.persistent and process.persistent_argv and persistent_clients():
            launcher = PersistentClientLauncher(
                process.persistent_argv, cwd=spec.directory, log_path=log_path, env=process.env
            )
        else:
            launcher = ProcessClientLauncher(
                process.argv, cwd=spec.directory, log_path=log_path, env=process.env
            )
        return TargetSession(label, launcher, spec, role=role)
    policies = spec.policies
    server = ProcessRunner(
        process.argv,
        lambda port: server_values(policies, port),
        cwd=spec.directory,
        log_path=log_path,
        ready=rs.ready,
        startup_timeout=rs.startup_timeout,
        env=process.env,
    )
    return TargetSession(label, server, spec, role=role)


def _docker_runner(spec: TargetSpec, role: Role, log_path: Path) -> Runner:
    """A container runner for the role (the image is built on first start, not here)."""
    from harness.targets.docker.containers import sweep_once
    from harness.targets.docker.daemon import daemon_problem
    from harness.targets.docker.persistent import DockerPersistentClientLauncher, docker_cli
    from harness.targets.docker.runners import DockerClientLauncher, DockerRunner

    problem = daemon_problem()
    if problem:
        raise TargetUnavailable(f"{spec.name}: docker: {problem}")
    sweep_once()
    rs = spec.roles[role]
    docker = rs.docker
    assert docker is not None
    if not docker.argv:
        raise TargetUnavailable(f"target {spec.name!r}: docker.argv is empty for the {role} role")
    if role == "client":
        if rs.persistent and docker.persistent_argv and persistent_clients() and docker_cli():
            return DockerPersistentClientLauncher(spec, docker.persistent_argv, dockerfile=docker.dockerfile,
                                                  log_path=log_path, env=docker.env)  # fmt: skip
        return DockerClientLauncher(spec, docker.argv, dockerfile=docker.dockerfile, log_path=log_path,
                                    env=docker.env)  # fmt: skip
    return DockerRunner(
        spec, docker.argv, dockerfile=docker.dockerfile, log_path=log_path, ready=rs.ready,
        startup_timeout=rs.startup_timeout, env=docker.env,
    )  # fmt: skip


def open_session(
    name: str | None = None,
    *,
    url: str | None = None,
    cmd: str | None = None,
    adhoc: AdhocTarget | None = None,
    targets_root: Path,
    log_dir: Path,
    specs: dict[str, TargetSpec] | None = None,
    role: Role = "server",
    runner: RunnerKind | None = None,
) -> TargetSession:
    """A session for a named target folder, or for an ad-hoc declaration (``adhoc``; ``url``/``cmd``
    are shorthands for a plain ``--target-url``/``--target-cmd``, named ``name`` if given).

    ``runner`` picks how a named target runs: "process", "docker", or None for a local process when
    the role has one and this machine has its runtime, else a container when Docker is usable.
    """
    if url is not None or cmd is not None:
        adhoc = AdhocTarget(
            "url" if url is not None else "cmd", str(url if url is not None else cmd), name=name
        )
    if adhoc is not None:
        return session_for(to_spec(adhoc), adhoc.role, log_dir=log_dir)
    specs = specs if specs is not None else load_targets(targets_root)
    if name not in specs:
        known = ", ".join(sorted(specs)) or "none"
        raise TargetUnavailable(f"unknown target {name!r}; known targets: {known}")
    return session_for(specs[name], role, log_dir=log_dir, runner=runner)
