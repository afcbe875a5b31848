"""Can this target run here, and why not: the one module that probes the machine.

Three callers ask the same questions and must get the same answers: ``wsconform targets list`` (what
works here, with the reason), the default selection (every target with a role runnable here) and the
session (which runner a role uses when ``--runner`` does not say). A local process needs its
``requires`` (python modules, commands) and the tool its ``setup:`` runs; a container needs a usable
Docker daemon and a base image; a browser page needs Chromium and Playwright; a URL needs nothing
until it is contacted. The version shown in reports is resolved here too (it may run a command).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import subprocess

from harness.targets.docker.daemon import docker_problem
from harness.targets.runners.browser import chromium_path
from harness.targets.spec import Role, RunnerKind, TargetSpec

__all__ = ["browser_problem", "docker_problem", "missing", "offered", "resolved_version", "runnable",
           "runner_problem"]  # fmt: skip


def missing(spec: TargetSpec) -> list[str]:
    """What this machine lacks to run the target as a local process (empty: available)."""
    out = [f"python module {m}" for m in spec.requires.python if importlib.util.find_spec(m) is None]
    out += [f"command {c}" for c in spec.requires.commands if shutil.which(c) is None]
    if spec.setup is not None and spec.setup.argv:
        tool = spec.setup.argv[0]
        if tool != "{python}" and tool not in spec.requires.commands and shutil.which(tool) is None:
            out.append(f"set-up command {tool}")
    return out


def browser_problem() -> str | None:
    """Why browser targets cannot run here (None: Chromium and Playwright are both there)."""
    lacking = []
    if chromium_path() is None:
        lacking.append("chromium (apt-get install chromium, or set WSCONFORM_CHROMIUM)")
    if importlib.util.find_spec("playwright") is None:
        lacking.append("python module playwright")
    return f"missing {', '.join(lacking)}" if lacking else None


def offered(spec: TargetSpec, role: Role, runner: RunnerKind | None = None) -> list[RunnerKind]:
    """The ways target.yaml offers to run ``role`` that ``runner`` allows (None allows all)."""
    rs = spec.role(role)
    kinds = rs.runners() if rs is not None else []
    return [k for k in kinds if runner is None or k == runner]


def runner_problem(spec: TargetSpec, runner: RunnerKind, *, role: Role | None = None) -> str | None:
    """Why this machine cannot run the target (or its ``role``) with ``runner``; None when it can."""
    roles: list[Role] = [role] if role else list(spec.roles)
    if not any(runner in offered(spec, r) for r in roles):
        return f"no {runner} runner in target.yaml"
    if runner == "docker":
        return docker_problem()
    if runner == "url":
        return None  # checked when contacted: nothing to probe ahead
    if runner == "browser":
        lacking = missing(spec)
        return browser_problem() or (f"missing {', '.join(lacking)}" if lacking else None)
    lacking = missing(spec)
    return f"missing {', '.join(lacking)}" if lacking else None


def runnable(spec: TargetSpec, role: Role, runner: RunnerKind | None = None) -> bool:
    """Some way target.yaml offers for ``role`` (restricted to ``runner``) works here."""
    return any(runner_problem(spec, kind, role=role) is None for kind in offered(spec, role, runner))


def choose(spec: TargetSpec, role: Role, runner: RunnerKind | None) -> RunnerKind | None:
    """Which runner ``role`` uses: the one asked for, or a process when it can run here, else docker
    when the daemon is usable, else the first one declared (whose start then reports what is missing).
    None when target.yaml declares no runner for the role (or not the one asked for)."""
    kinds = offered(spec, role)
    if runner is not None:
        return runner if runner in kinds else None
    for kind in kinds:
        if runner_problem(spec, kind, role=role) is None:
            return kind
    return kinds[0] if kinds else None


def resolved_version(spec: TargetSpec) -> str:
    """The implementation's version for the report: a fixed value, an installed package's version, or
    the first line a command prints (run in the target folder); "unknown" when nothing says, ""
    for an ad-hoc target that declared none."""
    v = spec.version
    if v.value:
        return v.value
    if v.python_package:
        try:
            return importlib.metadata.version(v.python_package)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"
    if v.command:
        try:
            out = subprocess.run(
                v.command, capture_output=True, text=True, timeout=10, check=False, cwd=spec.directory
            )
            return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
    return "" if spec.adhoc else "unknown"
