"""A target for the length of a run: which runner reaches it, what it is, what it is expected to do.

Both front ends (``wsconform run`` and the pytest plugin) create sessions through ``open_session``,
so ``--target NAME``, ``--target-url`` and ``--target-cmd`` mean the same thing in both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
        if self._setup_done or self.spec is None or not isinstance(self.runner, ProcessRunner):
            return
        try:
            run_setup(self.spec, self.runner.log_path)
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
) -> TargetSession:
    """A session for a named target folder, an ad-hoc URL or an ad-hoc command."""
    if url is not None:
        return TargetSession(name or f"url-{_slug(url.split('//')[-1])}", UrlRunner(url), role=role)
    if cmd is not None:
        label = name or f"cmd-{_slug(cmd.split()[0].rsplit('/', 1)[-1])}"
        return TargetSession(label, ProcessRunner.from_command(cmd, log_dir / f"{label}.log"), role=role)
    specs = specs if specs is not None else load_targets(targets_root)
    if name not in specs:
        known = ", ".join(sorted(specs)) or "none"
        raise TargetUnavailable(f"unknown target {name!r}; known targets: {known}")
    spec = specs[name]
    role_spec = spec.roles.get(role)  # type: ignore[call-overload]
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
    runner = ProcessRunner(
        role_spec.process.argv,
        spec.placeholders,
        cwd=spec.directory,
        log_path=log_dir / f"{name}.{role}.log",
        ready=role_spec.ready,
        startup_timeout=role_spec.startup_timeout,
        env=role_spec.process.env,
    )
    return TargetSession(name, runner, spec, role=role)
