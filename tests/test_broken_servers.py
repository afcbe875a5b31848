"""Every case family can fail: one deliberately broken server per defect, caught by the right case.

Each row also runs the same case against the same server without the defect, which must PASS: so a
FAIL is caused by the defect, not by the case or the harness.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine import run_case
from harness.model.loader import Case
from harness.outcome import Outcome
from tests.conftest import CASES, broken_session, by_autobahn
from tests.test_broken_deflate import ROWS as DEFLATE_ROWS

# defect, the case that must catch it (Autobahn id or case id), outcome, words the reason must contain
ROWS = [
    ("ignore-rsv", "3.1", Outcome.FAIL, "stayed open"),
    ("accept-reserved-opcode", "4.1.1", Outcome.FAIL, "stayed open"),
    ("accept-reserved-opcode", "4.2.3", Outcome.FAIL, "stayed open"),
    ("accept-long-ping", "2.5", Outcome.FAIL, "control-frame-too-long"),
    ("accept-fragmented-control", "5.1", Outcome.FAIL, "unexpected pong"),
    ("wrong-pong", "2.2", Outcome.FAIL, "answers no ping"),
    ("no-pong", "2.3", Outcome.FAIL, "pong"),
    ("accept-orphan-continuation", "5.9", Outcome.FAIL, "stayed open"),
    ("no-utf8-check", "6.3.1", Outcome.FAIL, "invalid-utf8"),
    ("late-utf8-check", "6.4.1", Outcome.NON_STRICT, "only later"),
    ("echo-bad-close-code", "7.9.1", Outcome.FAIL, "invalid-close-code"),
    ("no-close-reply", "7.1.1", Outcome.FAIL, "no close frame in reply"),
    ("keep-tcp-open", "1.1.1", Outcome.FAIL, "did not close TCP"),
    ("mask-frames", "1.2.1", Outcome.FAIL, "masked"),
    ("corrupt-large", "9.1.1", Outcome.FAIL, "message 1: expected text of 65536 bytes"),
    ("drop-after-100", "9.7.1", Outcome.FAIL, "expected 1000 message(s) back"),
    # the opening handshake: cases without an Autobahn equivalent are named by id
    ("wrong-accept", "handshake-header-names-lowercase", Outcome.FAIL, "Sec-WebSocket-Accept is"),
    ("duplicate-accept", "handshake-query-string", Outcome.FAIL, "2 Sec-WebSocket-Accept headers"),
    ("no-version-check", "handshake-version-11", Outcome.FAIL, "status 101"),
    ("version-400", "handshake-version-12", Outcome.FAIL, "Sec-WebSocket-Version is 'no such header'"),
    (
        "unoffered-subprotocol",
        "handshake-response-no-protocol-when-none-offered",
        Outcome.FAIL,
        "response-protocol-not-offered",
    ),
    ("unoffered-subprotocol", "subprotocol-none-offered", Outcome.FAIL, "response-protocol-not-offered"),
    ("echo-extensions", "ext-unknown-two-header-lines", Outcome.FAIL, "server accepted"),
    # under load: the peer stops reading, the server's send buffer backs up
    ("drop-under-load", "backpressure-slow-reader-64kib", Outcome.FAIL, "binary of 65536 bytes"),
    ("reorder-under-load", "backpressure-burst-then-drain", Outcome.FAIL, "sha256"),
    # a normal close where the target had to fail the connection: it did not detect the error
    ("close-normally-on-error", "7.9.1", Outcome.FAIL, "closed normally (1000)"),
    ("close-normally-on-error", "3.1", Outcome.FAIL, "closed normally (1000)"),
    # the 1009 before the reset is read and graded, not lost with the connection
    ("refuse-big-and-reset", "9.1.6", Outcome.INFORMATIONAL, "target refused with 1009"),
    # the process dies on the request: the case that killed it says so
    ("exit-on-handshake", "1.1.1", Outcome.FAIL, "target exited (status 3)"),
    # robustness: every case of the family has its row in tests/test_robustness.py
    ("object-registry", "robust-extension-name-proto", Outcome.FAIL, "server accepted '__proto__'"),
]


def lookup(cases: dict[str, Case], key: str) -> Case:
    """A row names its case by Autobahn id ("3.1") or, for our own families, by case id."""
    return by_autobahn(cases, key) if key[0].isdigit() else cases[key]


def _run(case: Case, tmp_path: Path, defect: str | None):  # type: ignore[no-untyped-def]
    session = broken_session(tmp_path, defect)
    try:
        return run_case(case, session, data_dir=CASES / "data", timeout_scale=0.3)
    finally:
        session.stop()


@pytest.mark.parametrize(("defect", "ab", "outcome", "words"), ROWS, ids=[f"{r[0]}-{r[1]}" for r in ROWS])
def test_defect_is_caught(
    repo_cases: dict[str, Case], tmp_path: Path, defect: str, ab: str, outcome: Outcome, words: str
) -> None:
    case = lookup(repo_cases, ab)
    good = _run(case, tmp_path, None)
    assert good.outcome is Outcome.PASS, f"correct server: {good.outcome} {good.reason}"
    bad = _run(case, tmp_path, defect)
    assert bad.outcome is outcome, f"{defect}: {bad.outcome} {bad.reason}"
    assert words in bad.reason


def test_every_family_is_proven_able_to_fail(repo_cases: dict[str, Case]) -> None:
    families = {c.family for c in repo_cases.values() if c.model.role in ("server", "both")}
    proven = {lookup(repo_cases, ab).family for _, ab, _, _ in ROWS}
    proven |= {repo_cases[case_id].family for _, case_id, _, _ in DEFLATE_ROWS}  # tests/test_broken_deflate
    assert proven == families, f"families without a broken-server test: {sorted(families - proven)}"
