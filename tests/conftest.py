"""Shared fixtures: the repository's cases, and sessions on the deliberately broken server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.model.loader import Case, load_all
from harness.targets.session import TargetSession, open_session

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "cases"
BROKEN = ROOT / "tests" / "broken_server.py"


@pytest.fixture(scope="session")
def repo_cases() -> dict[str, Case]:
    cases, errors = load_all(CASES)
    assert not errors, errors
    return {c.id: c for c in cases}


def by_autobahn(cases: dict[str, Case], ab: str) -> Case:
    found = [c for c in cases.values() if c.model.autobahn == ab]
    assert len(found) == 1, f"expected one case with autobahn id {ab}, found {[c.id for c in found]}"
    return found[0]


def broken_session(tmp_path: Path, defect: str | None) -> TargetSession:
    cmd = f"{sys.executable} {BROKEN} --port {{port}}" + (f" --defect {defect}" if defect else "")
    return open_session(
        cmd=cmd, name=f"broken-{defect or 'none'}", targets_root=ROOT / "targets", log_dir=tmp_path / "logs"
    )


@pytest.fixture
def correct_server(tmp_path: Path) -> Iterator[TargetSession]:
    session = broken_session(tmp_path, None)
    yield session
    session.stop()
