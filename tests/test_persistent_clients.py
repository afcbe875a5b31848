"""The harness side of persistent client adapters (docs/adapter-protocol.md §1).

Two things are proven here. First, the launcher's isolation rules, one by one, with a scripted
adapter that does no WebSocket (tests/scripted_persistent_client.py): a crash in the middle of a case
ends that case with the exit status and the next case gets a new process; a case that never ends is
killed and the next one gets a new process; output after ``done`` goes to the log, never to the next
case; ``exit: 127`` reaches the peer as the per-case exit status would. Second, that the mode changes
nothing a verdict reads: the client family and the close family, once per case-process and once
through one persistent process, give the same outcomes, for a local adapter and for a container.
"""

from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.engine import CaseResult, applies
from harness.model.loader import Case
from harness.scheduler import run_all
from harness.targets.docker.daemon import daemon_problem
from harness.targets.runners.persistent import PersistentCase, PersistentClientLauncher
from harness.targets.session import open_session
from tests.conftest import CASES, ROOT

SCRIPTED = ROOT / "tests" / "scripted_persistent_client.py"
FAMILIES = {"client", "close"}


def _launcher(tmp_path: Path) -> PersistentClientLauncher:
    launcher = PersistentClientLauncher(["{python}", str(SCRIPTED)], cwd=None, log_path=tmp_path / "c.log")
    launcher.start()
    return launcher


def _play(launcher: PersistentClientLauncher, name: str, patience: float = 3.0) -> tuple[int, list[bytes]]:
    """One case in its own event loop, as the engine runs it: (exit status, the lines it received)."""

    async def go() -> tuple[int, list[bytes]]:
        proc = await launcher.launch(f"ws://127.0.0.1:9/{name}", [], None)
        assert isinstance(proc, PersistentCase) and proc.stdout is not None
        try:
            code = await asyncio.wait_for(proc.wait(), patience)
        except TimeoutError:
            proc.kill()
            code = await asyncio.wait_for(proc.wait(), 10)
        lines = []
        while line := await asyncio.wait_for(proc.stdout.readline(), 5):
            lines.append(line)
        return code, lines

    return asyncio.run(go())


def test_many_cases_one_process(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)
    try:
        results = [_play(launcher, "ok") for _ in range(5)]
        assert [code for code, _ in results] == [0] * 5
        assert all(len(lines) == 1 and b'"open"' in lines[0] for _, lines in results)
        pids = {re.findall(rb'"pid": (\d+)', lines[0])[0] for _, lines in results}
        assert len(pids) == 1 and launcher.starts == 1
    finally:
        launcher.stop()


def test_unsupported_and_garbage_reach_the_case(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)
    try:
        assert _play(launcher, "unsupported") == (127, [])
        assert _play(launcher, "garbage") == (0, [b"this is not JSON\n"])
        assert launcher.starts == 1
    finally:
        launcher.stop()


def test_a_crash_ends_its_case_and_the_next_case_gets_a_new_process(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)
    try:
        code, lines = _play(launcher, "crash")
        assert code == 3 and len(lines) == 1 and b'"open"' in lines[0]  # what it printed before dying
        assert _play(launcher, "ok")[0] == 0
        assert launcher.starts == 2
    finally:
        launcher.stop()


def test_a_case_that_never_ends_is_killed_and_not_reused(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)
    try:
        code, lines = _play(launcher, "hang", patience=0.5)
        assert code < 0 and lines == []  # killed by a signal
        assert _play(launcher, "ok")[0] == 0 and launcher.starts == 2
    finally:
        launcher.stop()


def test_a_case_cut_off_before_done_is_not_followed_on_the_same_process(tmp_path: Path) -> None:
    """A case whose loop ended without waiting for done (its deadline): the next case must not run
    on that process, whose late output would land in it."""
    launcher = _launcher(tmp_path)
    try:

        async def abandon() -> None:
            await launcher.launch("ws://127.0.0.1:9/hang", [], None)

        asyncio.run(abandon())
        assert _play(launcher, "ok")[0] == 0 and launcher.starts == 2
    finally:
        launcher.stop()


def test_cases_in_flight_at_once_get_their_own_processes(tmp_path: Path) -> None:
    """``wsconform interop`` runs several pairs with one client at once: a busy adapter is neither
    handed a second case nor killed for one."""
    launcher = _launcher(tmp_path)

    async def both() -> tuple[int, int]:
        busy = await launcher.launch("ws://127.0.0.1:9/hang", [], None)
        other = await launcher.launch("ws://127.0.0.1:9/ok", [], None)
        code = await asyncio.wait_for(other.wait(), 5)
        assert busy.returncode is None  # still playing its case
        busy.kill()
        return code, await asyncio.wait_for(busy.wait(), 5)

    try:
        ok, killed = asyncio.run(both())
        assert ok == 0 and killed < 0 and launcher.starts == 2
    finally:
        launcher.stop()


def test_output_after_done_goes_to_the_log_not_to_the_next_case(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path)
    try:
        assert _play(launcher, "chatty") == (0, [])
        threading.Event().wait(0.3)  # the leaked line arrives while no case is in flight
        code, lines = _play(launcher, "ok")
        assert code == 0 and all(b"leaked" not in line for line in lines)
        launcher.stop()
        log = (tmp_path / "c.log").read_text()
        assert "printed between cases" in log and "leaked-after-done" in log
    finally:
        launcher.stop()


# -- the same outcomes in both modes ----------------------------------------------------------------


def _outcomes(
    name: str, cases: list[Case], tmp_path: Path, runner: Any, monkeypatch: Any, mode: str
) -> dict[str, str]:
    monkeypatch.setenv("WSCONFORM_CLIENT_MODE", mode)
    log_dir = tmp_path / mode / "logs"
    session = open_session(name, targets_root=ROOT / "targets", log_dir=log_dir, role="client", runner=runner)
    assert isinstance(session.runner, PersistentClientLauncher) == (mode == "persistent")
    got: dict[str, str] = {}

    def record(result: CaseResult, worker: object) -> None:
        got[result.case.id] = str(result.outcome)

    try:
        run_all(
            [c for c in cases if applies(c, session)], [session], jobs=2, data_dir=CASES / "data",
            trace_dir=None, timeout_scale=1.0, on_start=lambda case, worker: None, on_result=record,
            stop=threading.Event(),
        )  # fmt: skip
    finally:
        session.stop()
    return got


@pytest.mark.parametrize(
    ("name", "runner"),
    [
        ("websockets", "process"),
        pytest.param(
            "gorilla", "docker",
            marks=pytest.mark.skipif(daemon_problem() is not None, reason=f"Docker: {daemon_problem()}"),
        ),
    ],
)  # fmt: skip
def test_both_modes_give_the_same_outcomes(
    name: str, runner: str, repo_cases: dict[str, Case], tmp_path: Path, monkeypatch: Any
) -> None:
    cases = [c for c in repo_cases.values() if c.family in FAMILIES and c.model.role != "server"]
    per_case = _outcomes(name, cases, tmp_path, runner, monkeypatch, "per-case")
    persistent = _outcomes(name, cases, tmp_path, runner, monkeypatch, "persistent")
    assert len(per_case) > 100 and set(per_case) == set(persistent)
    diffs = {k: (per_case[k], persistent[k]) for k in per_case if per_case[k] != persistent[k]}
    assert not diffs, diffs
