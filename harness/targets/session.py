"""A target for the length of a run: which runner reaches it, what it is, what it is expected to do.

Both front ends (``wsconform run`` and the pytest plugin) create sessions through ``open_session``,
so ``--target NAME``, ``--target-url`` and ``--target-cmd`` mean the same thing in both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.targets.browser import BrowserLauncher
from harness.targets.runners import ClientLauncher, ProcessRunner, Runner, TargetUnavailable, UrlRunner
from harness.targets.setup import run_setup
from harness.targets.spec import ExpectedDeviation, Policies, TargetSpec, load_targets

DEFAULT_TARGET = "websockets"


@dataclass
class TargetSession:
    name: str
    runner: Runner
    spec: TargetSpec | None = None
    role: str = "server"
    started: bool = False
    start_error: str | None = None
    restarts: int = 0
    runner_kind: str = "process"  # how the target runs: process, docker, url, browser
    _version: str | None = field(default=None, repr=False)
    _setup_done: bool = field(default=False, repr=False)
    _setup_error: str | None = field(default=None, repr=False)

    @property
    def policies(self) -> Policies:
        return self.spec.policies if self.spec else Policies()

    @property
    def expected(self) -> dict[str, ExpectedDeviation]:
        return self.spec.expected if self.spec else {}

    def info(self) -> dict[str, Any]:
        if self._version is None:
            self._version = self.spec.resolved_version() if self.spec else "unknown"
        return {
            "name": self.name,
            "implementation": self.spec.implementation if self.spec else self.name,
            "language": self.spec.language if self.spec else "unknown",
            "version": self._version,
            "role": self.role,
            "runner": self.runner_kind,
        }

    def ensure_running(self) -> str | None:
        """Start the target, or restart it if it died; returns a note when it had to restart.

        A start failure is remembered so that a target that cannot start costs one attempt per
        case at most, and every case reports the same cause as ERROR.
        """
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
        self.runner.start()
        self.started = True
        return note

    def _ensure_setup(self) -> None:
        """Run the target's ``setup:`` (``npm ci``...) before its first local start.

        Only local processes need it (an image does its own set-up in its Dockerfile). A failure is
        remembered: every case of the run reports the same ERROR without running the command again.
        """
        if self._setup_error is not None:
            raise TargetUnavailable(self._setup_error)
        runner = self.runner
        if self._setup_done or self.spec is None or self.runner_kind != "process":
            return
        if not isinstance(runner, ProcessRunner):
            return
        try:
            run_setup(self.spec, runner.log_path)
        except TargetUnavailable as exc:
            self._setup_error = str(exc)
            raise
        self._setup_done = True

    def stop(self) -> None:
        self.runner.stop()
        self.started = False


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-")[:40] or "target"


def open_session(
    name: str | None = None,
    *,
    url: str | None = None,
    cmd: str | None = None,
    targets_root: Path,
    log_dir: Path,
    specs: dict[str, TargetSpec] | None = None,
    role: str = "server",
    runner: str | None = None,
) -> TargetSession:
    """A session for a named target folder, an ad-hoc URL or an ad-hoc command.

    ``runner`` picks how a named target runs: "process", "docker", or None for a local process when
    the role has one and this machine has its runtime, else a container when Docker is usable.
    """
    if url is not None:
        label = name or f"url-{_slug(url.split('//')[-1])}"
        return TargetSession(label, UrlRunner(url), role=role, runner_kind="url")
    if cmd is not None:
        label = name or f"cmd-{_slug(cmd.split()[0].rsplit('/', 1)[-1])}"
        return TargetSession(label, ProcessRunner.from_command(cmd, log_dir / f"{label}.log"), role=role)
    specs = specs if specs is not None else load_targets(targets_root)
    if name not in specs:
        known = ", ".join(sorted(specs)) or "none"
        raise TargetUnavailable(f"unknown target {name!r}; known targets: {known}")
    spec = specs[name]
    role_spec = spec.roles.get(role)  # type: ignore[call-overload]
    if role == "client" and role_spec is not None and role_spec.browser is not None:
        assert spec.directory is not None
        browser = BrowserLauncher(
            spec.directory / role_spec.browser.script, log_path=log_dir / f"{name}.client.log"
        )
        return TargetSession(f"{name}@client", browser, spec, role="client", runner_kind="browser")
    if choose_runner(spec, role, runner) == "docker":
        return _docker_session(spec, role, log_dir)
    if role_spec is None or role_spec.process is None:
        raise TargetUnavailable(f"target {name!r} has no local process runner for the {role} role")
    if role == "client":
        launcher = ClientLauncher(
            role_spec.process.argv,
            cwd=spec.directory,
            log_path=log_dir / f"{name}.client.log",
            env=role_spec.process.env,
        )
        return TargetSession(f"{name}@client", launcher, spec, role="client")
    server = ProcessRunner(
        role_spec.process.argv,
        spec.placeholders,
        cwd=spec.directory,
        log_path=log_dir / f"{name}.{role}.log",
        ready=role_spec.ready,
        startup_timeout=role_spec.startup_timeout,
        env=role_spec.process.env,
    )
    return TargetSession(name, server, spec, role=role)


def choose_runner(spec: TargetSpec, role: str, runner: str | None) -> str:
    """Which runner a named target's role uses: the one asked for, or process when it can run here,
    else docker when the daemon is usable, else process (whose start then reports what is missing)."""
    offered = spec.runners(role)
    if runner is not None:
        if runner not in offered:
            raise TargetUnavailable(f"target {spec.name!r} has no {runner} runner for the {role} role")
        return runner
    if "process" in offered and spec.runner_problem("process") is None:
        return "process"
    if "docker" in offered and ("process" not in offered or spec.runner_problem("docker") is None):
        return "docker"
    return "process"


def _docker_session(spec: TargetSpec, role: str, log_dir: Path) -> TargetSession:
    """A container runner for the role (the image is built on first start, not here)."""
    from harness.targets.docker_runner import (
        DockerClientLauncher,
        DockerRunner,
        daemon_problem,
        sweep_once,
    )

    problem = daemon_problem()
    if problem:
        raise TargetUnavailable(f"{spec.name}: docker: {problem}")
    sweep_once()
    docker = spec.roles[role].docker  # type: ignore[index]
    assert docker is not None
    if not docker.argv:
        raise TargetUnavailable(f"target {spec.name!r}: docker.argv is empty for the {role} role")
    if role == "client":
        launcher = DockerClientLauncher(
            spec, docker.argv, dockerfile=docker.dockerfile, log_path=log_dir / f"{spec.name}.client.log",
            env=docker.env,
        )  # fmt: skip
        return TargetSession(f"{spec.name}@client", launcher, spec, role="client", runner_kind="docker")
    server = DockerRunner(
        spec, docker.argv, dockerfile=docker.dockerfile, log_path=log_dir / f"{spec.name}.{role}.log",
        ready=spec.roles[role].ready, startup_timeout=spec.roles[role].startup_timeout,  # type: ignore[index]
        env=docker.env,
    )  # fmt: skip
    return TargetSession(spec.name, server, spec, role=role, runner_kind="docker")
