"""Every client x server x scenario, in parallel: the sessions, the runs, one record per run.

Servers start once each (on first use, from a worker thread) and serve every pair they are in; client
launchers start one client per pair. ``jobs`` pairs run at a time. A target that cannot run here
(no Docker, no Chromium, no runtime) is left out with its reason, never guessed at. Records are
written as each run ends (``on_record``), so an interrupted matrix keeps what it had.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.interop import expected as known
from harness.interop.pairs import PairRun, run_pair
from harness.model.interop import Scenario
from harness.targets import availability
from harness.targets.errors import TargetUnavailable
from harness.targets.session import TargetSession, session_for
from harness.targets.spec import Role, TargetSpec

SCHEMA = "wsconform.interop/1"


@dataclass(slots=True)
class Matrix:
    """The run's selection and its results; ``to_json`` is the ``wsconform.interop/1`` document."""

    scenarios: list[Scenario]
    clients: list[str]
    servers: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # "name (role)" -> why it cannot run here
    records: list[dict[str, Any]] = field(default_factory=list)
    wall_time: float = 0.0
    complete: bool = False

    @property
    def unexpected(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["unexpected"]]

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "complete": self.complete,
            "wall_time": round(self.wall_time, 2),
            "clients": self.clients,
            "servers": self.servers,
            "skipped": self.skipped,
            "scenarios": [
                {
                    "id": s.id,
                    "letter": s.letter,
                    "title": s.title,
                    "description": s.description,
                    "spec": s.spec,
                }
                for s in self.scenarios
            ],
            "results": self.records,
        }


def record_of(run: PairRun, entry: known.KnownFailure | None) -> dict[str, Any]:
    unexpected, note = known.judge(run.verdict, entry)
    return {
        "client": run.client,
        "server": run.server,
        "scenario": run.scenario.id,
        "outcome": str(run.verdict.outcome),
        "side": run.verdict.side,
        "rule": run.verdict.rule,
        "reason": run.verdict.reason,
        "unexpected": unexpected,
        "note": note,
        "duration": round(run.duration, 3),
    }


def open_sessions(
    specs: Sequence[TargetSpec], role: Role, log_dir: Path, skipped: dict[str, str]
) -> dict[str, TargetSession]:
    out: dict[str, TargetSession] = {}
    for spec in specs:
        if role not in spec.roles:
            continue
        kind = availability.choose(spec, role, None)
        problem = "no runner" if kind is None else availability.runner_problem(spec, kind, role=role)
        if problem is not None:
            skipped[f"{spec.name} ({role})"] = problem
            continue
        try:
            out[spec.name] = session_for(spec, role, log_dir=log_dir, runner=kind)
        except TargetUnavailable as exc:
            skipped[f"{spec.name} ({role})"] = str(exc)
    return out


async def run_matrix(
    scenarios: Sequence[Scenario],
    clients: dict[str, TargetSession],
    servers: dict[str, TargetSession],
    *,
    jobs: int,
    expected: dict[tuple[str, str, str], known.KnownFailure],
    on_run: Callable[[PairRun, dict[str, Any]], None],
) -> list[dict[str, Any]]:
    """Run every (client, server, scenario); ``on_run`` gets each run and its record as it ends."""
    limit = asyncio.Semaphore(max(1, jobs))
    records: list[dict[str, Any]] = []

    async def one(scenario: Scenario, cname: str, sname: str) -> None:
        async with limit:
            run = await run_pair(scenario, clients[cname], servers[sname])
        record = record_of(run, expected.get((cname, sname, scenario.id)))
        records.append(record)
        on_run(run, record)

    # Server-major order: a server's pairs come together, so at most ``jobs`` servers start at once.
    work = [one(s, c, v) for v in servers for c in clients for s in scenarios]
    await asyncio.gather(*work)
    return records
