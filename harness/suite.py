"""What a run consists of: the targets it opens and the outcome rules both front ends share.

``wsconform run`` and the pytest plugin are thin: they ask this module which targets a run covers,
run each (case, target) pair through ``engine.run_case``, and grade a result against the target's
``expected.yaml`` with ``judge_expected`` (``verdict.expected``), so a deviation means the same in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.engine import CaseResult
from harness.targets.runners import TargetUnavailable
from harness.targets.session import DEFAULT_TARGET, TargetSession, open_session
from harness.targets.spec import TargetSpec, load_targets
from harness.verdict.expected import Grade, judge_record


@dataclass(frozen=True)
class Selection:
    names: list[str]
    url: str | None = None
    cmd: str | None = None


def default_targets(specs: dict[str, TargetSpec], runner: str | None = None) -> list[str]:
    """Every target with a role this machine can run: as a local process (or browser page) whose
    runtime is here, or in a container when Docker is usable (daemon reachable, base image there)."""
    return [name for name, spec in specs.items() if any(_runnable(spec, r, runner) for r in spec.roles)]


def _offered(spec: TargetSpec, role: str, runner: str | None) -> list[str]:
    """The ways target.yaml offers to run ``role`` that ``runner`` allows (None allows all)."""
    rs = spec.roles[role]  # type: ignore[index]
    kinds = spec.runners(role) + (["browser"] if rs.browser is not None else [])
    return [k for k in kinds if runner is None or k == runner]


def _runnable(spec: TargetSpec, role: str, runner: str | None) -> bool:
    for kind in _offered(spec, role, runner):
        if kind == "browser" and spec.available:
            return True
        if kind != "browser" and spec.runner_problem(kind, role=role) is None:
            return True
    return False


def open_sessions(
    selection: Selection,
    *,
    targets_root: Path,
    log_dir: Path,
    all_available: bool,
    runner: str | None = None,
) -> tuple[list[TargetSession], list[str]]:
    """Sessions for the selection; problems (unknown or unavailable targets) are returned, not raised.

    ``runner`` ("process" or "docker") opens only the roles that offer it; None picks per role (see
    ``session.choose_runner``). Automatically selected targets open only the roles runnable here.
    """
    specs = load_targets(targets_root)
    names = list(selection.names)
    automatic = not names and selection.url is None and selection.cmd is None
    if automatic:
        names = default_targets(specs, runner) if all_available else [DEFAULT_TARGET]
    sessions: list[TargetSession] = []
    problems: list[str] = []
    for name in names:
        roles = (
            [
                r
                for r in specs[name].roles
                if _offered(specs[name], r, runner) and (not automatic or _runnable(specs[name], r, runner))
            ]
            if name in specs
            else ["server"]
        )
        if name in specs and not roles:
            problems.append(f"target {name!r} has no role that runs with runner {runner}")
        for role in roles:
            try:
                sessions.append(
                    open_session(
                        name,
                        targets_root=targets_root,
                        log_dir=log_dir,
                        specs=specs,
                        role=role,
                        runner=runner,
                    )
                )
            except TargetUnavailable as exc:
                problems.append(str(exc))
    try:
        if selection.url is not None:
            sessions.append(open_session(url=selection.url, targets_root=targets_root, log_dir=log_dir))
        if selection.cmd is not None:
            sessions.append(open_session(cmd=selection.cmd, targets_root=targets_root, log_dir=log_dir))
    except TargetUnavailable as exc:
        problems.append(str(exc))
    return sessions, problems


def judge_expected(result: CaseResult, *, strict: bool = False) -> Grade:
    return judge_record(result.record(), strict=strict)
