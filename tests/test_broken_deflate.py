"""Every permessage-deflate rule can fail: a compression defect in tests/broken_server.py per row,
caught by the named case with the right reason, and the same case PASSes against the same server
without the defect (``--deflate``, the correct compressing server)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.engine import run_case
from harness.model.loader import Case
from harness.outcome import Outcome
from harness.targets.adhoc import AdhocTarget
from harness.targets.session import TargetSession, open_session
from tests.conftest import BROKEN, CASES, ROOT

# defect, case id, outcome, words the reason must contain
ROWS = [
    ("deflate-rsv1-continuation", "pmd-rsv1-on-continuation-whole", Outcome.FAIL, "stayed open"),
    ("deflate-rsv1-control", "pmd-rsv1-on-ping", Outcome.FAIL, "stayed open"),
    ("deflate-keep-context", "pmd-context-reset-server", Outcome.FAIL, "deflate-context-not-reset"),
    ("deflate-wide-window", "pmd-server-window-9", Outcome.FAIL, "deflate-window-exceeded"),
    ("deflate-control-breaks-message", "pmd-control-between-ping", Outcome.FAIL, "missing text of 4000"),
    ("deflate-inflate-unnegotiated", "pmd-rsv1-not-negotiated", Outcome.FAIL, "rsv-without-extension"),
    ("deflate-limit-on-compressed", "pmd-inflated-over-limit", Outcome.FAIL, "expected 0 message(s) back"),
]
MAX_MESSAGE = 64 * 1024 * 1024  # tests/broken_server.py's limit, declared as its policy


def deflate_session(tmp_path: Path, defect: str | None) -> TargetSession:
    cmd = f"{sys.executable} {BROKEN} --port {{port}} --deflate" + (f" --defect {defect}" if defect else "")
    adhoc = AdhocTarget(
        "cmd",
        cmd,
        name=f"broken-{defect or 'deflate'}",
        permessage_deflate=True,
        max_message_size=MAX_MESSAGE,
    )
    return open_session(adhoc=adhoc, targets_root=ROOT / "targets", log_dir=tmp_path / "logs")


def _run(case: Case, tmp_path: Path, defect: str | None):  # type: ignore[no-untyped-def]
    session = deflate_session(tmp_path, defect)
    try:
        return run_case(case, session, data_dir=CASES / "data", timeout_scale=0.3)
    finally:
        session.stop()


@pytest.mark.parametrize(("defect", "case_id", "outcome", "words"), ROWS, ids=[r[0] for r in ROWS])
def test_deflate_defect_is_caught(
    repo_cases: dict[str, Case], tmp_path: Path, defect: str, case_id: str, outcome: Outcome, words: str
) -> None:
    case = repo_cases[case_id]
    good = _run(case, tmp_path, None)
    assert good.outcome is Outcome.PASS, f"{case_id} against the correct server: {good.reason}"
    bad = _run(case, tmp_path, defect)
    assert bad.outcome is outcome, f"{case_id} with {defect}: {bad.outcome.name}: {bad.reason}"
    assert words in bad.reason, bad.reason
