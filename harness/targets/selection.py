"""Which targets a run covers: named folders, extra target files, ad-hoc declarations, or the default.

``open_sessions`` is what both front ends call where a run's sessions are opened. Problems (an unknown
name, a target whose runtime is missing, a name used twice) are returned, not raised, so a front end
can report them all at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.targets import availability
from harness.targets.adhoc import AdhocTarget
from harness.targets.errors import TargetError, TargetUnavailable
from harness.targets.runners import pgroup
from harness.targets.session import DEFAULT_TARGET, TargetSession, open_session, session_for
from harness.targets.spec import Role, RunnerKind, TargetSpec, load_target, load_targets


@dataclass(frozen=True)
class Selection:
    """What the command line selected. ``url``/``cmd`` are a plain ``--target-url``/``--target-cmd``
    (kept for callers that predate ``adhoc``); ``files`` are target.yaml files (or their folders)
    loaded in addition to the targets folder, and run."""

    names: list[str] = field(default_factory=list)
    url: str | None = None
    cmd: str | None = None
    adhoc: list[AdhocTarget] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def declarations(self) -> list[AdhocTarget]:
        extra = [AdhocTarget("url", self.url)] if self.url is not None else []
        extra += [AdhocTarget("cmd", self.cmd)] if self.cmd is not None else []
        return [*self.adhoc, *extra]


def default_targets(specs: dict[str, TargetSpec], runner: RunnerKind | None = None) -> list[str]:
    """Every target with a role this machine can run: as a local process (or browser page) whose
    runtime is here, or in a container when Docker is usable (daemon reachable, base image there)."""
    return [
        name
        for name, spec in specs.items()
        if any(availability.runnable(spec, r, runner) for r in spec.roles)
    ]


def _roles(spec: TargetSpec, runner: RunnerKind | None, automatic: bool) -> list[Role]:
    """The roles a run opens: those offering ``runner``; when selected automatically, only those that
    can run here."""
    return [
        r
        for r in spec.roles
        if availability.offered(spec, r, runner) and (not automatic or availability.runnable(spec, r, runner))
    ]


def open_sessions(
    selection: Selection,
    *,
    targets_root: Path,
    log_dir: Path,
    all_available: bool,
    runner: RunnerKind | None = None,
    run_dir: Path | None = None,
) -> tuple[list[TargetSession], list[str]]:
    """Sessions for the selection, and the problems that kept some from opening.

    ``runner`` ("process" or "docker") opens only the roles that offer it; None picks per role (see
    ``availability.choose``). Automatically selected targets open only the roles runnable here.
    ``run_dir`` is where the run's pid file goes (beside results.jsonl; default: the log folder); the
    processes dead runs left there are killed first.
    """
    if run_dir is not None:
        pgroup.record_in(run_dir)
    problems: list[str] = []
    try:
        specs = load_targets(targets_root)
    except TargetError as exc:
        return [], [str(exc)]
    names = list(selection.names)
    for path in selection.files:
        try:
            spec = load_target(path)
        except TargetError as exc:
            problems.append(str(exc))
            continue
        if spec.name in specs:
            where = specs[spec.name].directory
            problems.append(f"--target-file {path}: the name {spec.name!r} is already the target in {where}")
            continue
        specs[spec.name] = spec
        if spec.name not in names:
            names.append(spec.name)
    adhoc = selection.declarations()
    automatic = not names and not adhoc and not selection.files
    if automatic:
        names = default_targets(specs, runner) if all_available else [DEFAULT_TARGET]
    sessions: list[TargetSession] = []
    for name in names:
        if name not in specs:
            known = ", ".join(sorted(specs)) or "none"
            problems.append(f"unknown target {name!r}; known targets: {known}")
            continue
        roles = _roles(specs[name], runner, automatic)
        if not roles:
            problems.append(f"target {name!r} has no role that runs with runner {runner}")
        for role in roles:
            try:
                sessions.append(session_for(specs[name], role, log_dir=log_dir, runner=runner))
            except TargetUnavailable as exc:
                problems.append(str(exc))
    taken = {(s.role, s.spec.name if s.spec else s.name) for s in sessions}
    for decl in adhoc:
        if (decl.role, decl.label) in taken:
            problems.append(
                f"{decl.option}: {decl.label!r} already names a {decl.role} target of this run; "
                "choose another --name"
            )
            continue
        try:
            sessions.append(open_session(adhoc=decl, targets_root=targets_root, log_dir=log_dir))
        except (TargetUnavailable, TargetError) as exc:
            problems.append(f"{decl.option}: {exc}")
        taken.add((decl.role, decl.label))
    return sessions, problems


__all__ = ["DEFAULT_TARGET", "Selection", "default_targets", "open_sessions"]
