"""A prescribed pause is an upper bound: it ends when the target fails the connection.

Each case sends an invalid frame, then pauses (a ``sleep`` step, or a chopped write with a ``delay``
between chops). Against a target that fails the connection at once the pause must end with it (the
case costs well under the pause); against one that does not react the case waits the full pause and
is graded as before (FAIL: the connection stayed open). The same frames go out in both cases, up to the
target's reaction.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine import run_case
from harness.model.loader import Case, load_file
from harness.outcome import Outcome
from tests.conftest import CASES, broken_session

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


@pytest.fixture(scope="module")
def pause_cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    root = tmp_path_factory.mktemp("cases")
    (root / "speed").mkdir()
    path = root / "speed" / "pauses.yaml"
    path.write_text(CASES_YAML, encoding="utf-8")
    return {c.id: c for c in load_file(path, root)}


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
