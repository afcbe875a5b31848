"""Interop scenarios as pytest items: ``cases/interop/echo.yaml::echo-1mib[websockets->aiohttp]``.

One item per (scenario, client target, server target) among the targets the pytest session runs
(``--target``, or every available one), played exactly as ``wsconform interop`` plays a pair
(``harness.interop.pairs.run_pair``: the server target behind the validating relay, the client
target launched in interop mode against it) and graded by ``interop-expected.yaml`` the same way:
an unexpected FAIL or ERROR fails the item, a listed one is xfail (strict: a listed pair that now
passes, or fails differently, fails the item), UNIMPLEMENTED skips with its reason.

Which scenarios: those marked ``ci: true`` by default (so the README's test command stays within its
time), every scenario with ``--interop-scenarios all``, none with ``--interop-scenarios none``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.interop import expected as known
from harness.interop.matrix import record_of
from harness.interop.pairs import PairRun, run_pair
from harness.model.interop import Scenario, ScenarioError, load_file
from harness.outcome import Outcome
from harness.targets.session import TargetSession
from harness.text import printable

CHOICES = ("ci", "all", "none")


def add_options(group: Any) -> None:
    group.addoption(
        "--interop-scenarios",
        choices=CHOICES,
        default="ci",
        help="interop scenarios collected from cases/interop: those marked ci (default), all, or none",
    )


def expected_for(targets_root: Path) -> dict[tuple[str, str, str], known.KnownFailure]:
    """The known pair failures of the target folders (as ``wsconform interop`` reads them)."""
    try:
        return known.load(known.default_path(targets_root))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc


class PairFailed(Exception):
    def __init__(self, run: PairRun, message: str) -> None:
        super().__init__(message)
        self.run = run
        self.message = message


class InteropFile(pytest.File):
    """A scenario file under an ``interop`` folder; its items need the session's targets."""

    def __init__(
        self, *, sessions: list[TargetSession], which: str,
        expected: dict[tuple[str, str, str], known.KnownFailure], **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.sessions = sessions
        self.which = which
        self.expected = expected

    def collect(self) -> Iterator[InteropItem]:
        try:
            scenarios = load_file(self.path)
        except ScenarioError as exc:
            raise self.CollectError(str(exc)) from exc
        if self.which == "none":
            return
        clients = [s for s in self.sessions if s.role == "client"]
        servers = [s for s in self.sessions if s.role == "server"]
        for scenario in scenarios:
            if self.which == "ci" and not scenario.ci:
                continue
            for client in clients:
                for server in servers:
                    cname = client.name.removesuffix("@client")
                    entry = self.expected.get((cname, server.name, scenario.id))
                    item = InteropItem.from_parent(
                        self, name=f"{scenario.id}[{cname}->{server.name}]", scenario=scenario,
                        client=client, server=server, entry=entry,
                    )  # fmt: skip
                    item.add_marker("interop")
                    yield item


class InteropItem(pytest.Item):
    def __init__(
        self, *, scenario: Scenario, client: TargetSession, server: TargetSession,
        entry: known.KnownFailure | None, **kwargs: Any,
    ) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.scenario = scenario
        self.client = client
        self.server = server
        self.entry = entry

    def runtest(self) -> None:
        run = asyncio.run(run_pair(self.scenario, self.client, self.server))
        record = record_of(run, self.entry)
        verdict = run.verdict
        where = f"{verdict.side} {verdict.rule or ''}".strip() if verdict.side else ""
        summary = f"{verdict.outcome}{f' [{where}]' if where else ''}: {verdict.reason}"
        if record["unexpected"]:
            note = f" ({record['note']})" if record["note"] else ""
            raise PairFailed(run, summary + note)
        if self.entry is not None:
            pytest.xfail(f"{summary} ({record['note']})")
        if verdict.outcome is Outcome.UNIMPLEMENTED:
            pytest.skip(f"UNIMPLEMENTED: {verdict.reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if not isinstance(excinfo.value, PairFailed):
            return str(super().repr_failure(excinfo))
        run = excinfo.value.run
        lines = [
            excinfo.value.message,
            f"scenario {self.scenario.id}: {self.scenario.title} ({self.scenario.spec})",
            f"client {run.client}, server {run.server}, client exit status {run.exit_code}, "
            f"{run.duration:.2f} s",
        ]
        if run.client_log.strip():
            lines += ["client log:", run.client_log.strip()[-1500:]]
        if run.server_log.strip():
            lines += ["server log:", run.server_log.strip()[-1500:]]
        lines.append("the full matrix with both sides' frames: wsconform interop --client ... --server ...")
        return printable("\n".join(lines))  # reasons and logs are the targets' text: no raw escapes

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.scenario.id} [{self.client.name} -> {self.server.name}]"
