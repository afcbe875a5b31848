"""A prescribed pause is an upper bound: it ends when the target fails the connection.

Each case sends an invalid frame, then pauses (a ``sleep`` step, or a chopped write with a ``delay``
between chops). Against a target that fails the connection at once the pause must end with it (the
case costs well under the pause); against one that does not react the case waits the full pause and
is graded as before (FAIL: the connection stayed open). The same frames go out in both cases, up to the
target's reaction.

Waits end as soon as the case is settled, too: once a target that must fail has echoed what it had to
refuse (FAIL whatever follows), once the target's Close has come (no echo can follow it, §5.5.1), and
once the case turned out UNIMPLEMENTED (nothing to judge). Each is shown against a target whose
behaviour used to cost the whole budget.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine import run_case
from harness.model.loader import Case, load_file
from harness.outcome import Outcome
from harness.targets.session import TargetSession, open_session
from tests.conftest import CASES, ROOT, broken_session

PAUSE = 2.0  # seconds; a case against a fail-fast target must take far less than this

CASES_YAML = f"""
defaults:
  role: server
  spec: "RFC 6455 §5.2 (a reserved opcode: the receiving endpoint MUST _Fail the WebSocket Connection_)"
cases:
  - id: reserved-opcode-then-sleep
    title: A reserved opcode, then a sleep step the target's failure must cut short
    steps:
      - send: {{opcode: 3, payload: "x"}}
      - sleep: {PAUSE}
      - send: {{opcode: text, payload: "after the pause"}}
    expect: {{fail: [1002]}}
  - id: reserved-opcode-then-slow-chops
    title: A reserved opcode, then a frame written one byte at a time with a delay between bytes
    steps:
      - send: {{opcode: 3, payload: "x"}}
      - send: {{opcode: text, payload: "ab", chop: 1, delay: {PAUSE / 2}}}
    expect: {{fail: [1002]}}
"""


def _load(tmp_path_factory: pytest.TempPathFactory, name: str, text: str) -> dict[str, Case]:
    root = tmp_path_factory.mktemp(name)
    (root / "speed").mkdir()
    path = root / "speed" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return {c.id: c for c in load_file(path, root)}


@pytest.fixture(scope="module")
def pause_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return _load(tmp_path_factory, "pauses", CASES_YAML)


@pytest.mark.parametrize("case_id", ["reserved-opcode-then-sleep", "reserved-opcode-then-slow-chops"])
def test_pause_ends_when_a_fail_fast_target_fails(
    pause_cases: dict[str, Case], tmp_path: Path, case_id: str
) -> None:
    session = broken_session(tmp_path, None)
    try:
        result = run_case(pause_cases[case_id], session, data_dir=CASES / "data")
    finally:
        session.stop()
    assert result.outcome is Outcome.PASS, result.reason
    assert result.duration_ms < PAUSE * 1000 / 3, f"{result.duration_ms:.0f} ms: the pause was slept out"


@pytest.mark.parametrize("case_id", ["reserved-opcode-then-sleep", "reserved-opcode-then-slow-chops"])
def test_pause_is_waited_out_when_the_target_does_not_react(
    pause_cases: dict[str, Case], tmp_path: Path, case_id: str
) -> None:
    session = broken_session(tmp_path, "accept-reserved-opcode")
    try:
        result = run_case(pause_cases[case_id], session, data_dir=CASES / "data")
    finally:
        session.stop()
    assert result.outcome is Outcome.FAIL, result.reason
    assert "stayed open" in result.reason
    assert result.duration_ms >= PAUSE * 1000 * 0.95, f"{result.duration_ms:.0f} ms: the pause was cut short"


ANSWER_CASES_YAML = """
defaults:
  role: server
  spec: "RFC 6455 §5.1 (a server MUST close the connection upon receiving a frame that is not masked)"
  timeout: 20
cases:
  - id: unmasked-then-wait-for-close
    title: An unmasked text frame, then a wait for the target's close that an echo of it answers at once
    steps:
      - send: {opcode: text, payload: "unmasked", mask: false}
      - wait: {close: true}
    expect: {fail: [1002]}
  - id: close-before-the-echo
    title: 101 text messages and a Close; a target that drops the last echo answers the Close at once
    steps:
      - repeat:
          count: 101
          steps:
            - send: {opcode: text, payload: "echo me"}
      - close: {code: 1000}
    expect: {echo: all, close: [1000]}
"""


@pytest.mark.parametrize(
    ("target", "case_id", "outcome", "says"),
    [
        # websockets answers the peer's Close before echoing (INFORMATIONAL, §5.5.1 allows it): no
        # echo can follow a Close, so the peer (the server here) stops waiting for them.
        ("websockets", "close-after-256k-text-then-ping", Outcome.INFORMATIONAL, "target sent close (1000)"),
        # aiohttp's client offers no permessage-deflate: nothing to judge, so close at once instead
        # of waiting out the failure the case expects.
        ("aiohttp", "pmd-client-corrupt-invalid-block-type", Outcome.UNIMPLEMENTED, "no permessage-deflate"),
    ],
)
def test_a_settled_client_case_stops_waiting(
    repo_cases: dict[str, Case], tmp_path: Path, target: str, case_id: str, outcome: Outcome, says: str
) -> None:
    session = open_session(target, targets_root=ROOT / "targets", log_dir=tmp_path, role="client")
    _settled_at_once(repo_cases[case_id], session, outcome, says)


def _settled_at_once(case: Case, session: TargetSession, outcome: Outcome, says: str) -> None:
    """Run ``case``, stop the target, and check the grade and that the case did not wait its budget out."""
    try:
        result = run_case(case, session, data_dir=CASES / "data")
    finally:
        session.stop()
    assert result.outcome is outcome, result.reason
    assert says in result.reason
    assert result.duration_ms < 3000, f"{result.duration_ms:.0f} ms: the case waited out its budget"


@pytest.fixture(scope="module")
def answer_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return _load(tmp_path_factory, "answers", ANSWER_CASES_YAML)


@pytest.mark.parametrize(
    ("case_id", "defect", "outcome", "says"),
    [
        # The echo of a message it had to refuse decides FAIL: the wait for its close stops there.
        ("unmasked-then-wait-for-close", "accept-unmasked", Outcome.FAIL, "got 1"),
        ("unmasked-then-wait-for-close", None, Outcome.PASS, "close (1002)"),
        # A Close ends the wait for echoes: no data frame may follow it (§5.5.1).
        ("close-before-the-echo", "drop-after-100", Outcome.FAIL, "got 100"),
        ("close-before-the-echo", None, Outcome.PASS, "101 message(s)"),
    ],
)
def test_a_settled_case_stops_waiting(
    answer_cases: dict[str, Case],
    tmp_path: Path,
    case_id: str,
    defect: str | None,
    outcome: Outcome,
    says: str,
) -> None:
    _settled_at_once(answer_cases[case_id], broken_session(tmp_path, defect), outcome, says)
