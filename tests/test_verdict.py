# ruff: noqa: E501  (a table: one row per line reads better than wrapped rows)
"""The verdict, table-driven: synthetic observations in, outcome and reason out.

Every row builds an ``Observed`` by hand (no socket, no target), so the whole table runs in well under
a second and documents, per rule family, which observation gives which outcome and why. Rows name the
case's expectation as the YAML would, so a row reads like the case it stands for.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.engine import play
from harness.model.loader import Case
from harness.model.schema import CaseModel
from harness.observed import ClientReport, CloseInfo, Message, Observed
from harness.outcome import Outcome
from harness.verdict import decide
from harness.verdict.binding import apply_binding, apply_grade
from harness.verdict.expected import judge_record
from harness.wire.handshake import parse_head
from harness.wire.rules import RULES, Violation

DATA = Path(__file__).resolve().parents[1] / "cases" / "data"
TEXT = b"Hello"
DIGEST = hashlib.sha256(TEXT).hexdigest()


def _case(expect: dict[str, Any] | None = None, **fields: Any) -> CaseModel:
    return CaseModel.model_validate(
        {"id": "row", "title": "row", "spec": "RFC 6455", **fields, "expect": expect or {}}
    )


def _sent(obs: Observed, n: int = 1) -> None:
    obs.sent_messages.extend([(1, len(TEXT), DIGEST)] * n)


def _echo(obs: Observed, n: int = 1, payload: bytes = TEXT) -> None:
    for _ in range(n):
        obs.messages.append(Message(1, len(payload), hashlib.sha256(payload).hexdigest(), payload, 0.005))


def _close(obs: Observed, code: int | None = 1000, *, first: str = "peer", reason: bytes = b"") -> None:
    """A closing handshake: ``first`` sent its close first; the target closes TCP (as a server must)."""
    peer = CloseInfo(1000, b"", 0.010, 2)
    target = CloseInfo(code, reason, 0.020 if first == "peer" else 0.005, 2 + len(reason) if code else 0)
    obs.close_sent, obs.close = peer, target
    if first == "target":
        obs.close_sent = CloseInfo(code, b"", 0.006, 2)
    obs.tcp_closed_by = "target"


def _drop(obs: Observed) -> None:
    obs.tcp_closed_by = "target"
    obs.tcp_closed_at = 0.004


def good(obs: Observed) -> None:
    _sent(obs)
    _echo(obs)
    _close(obs)


def with_violation(rule: str, detail: str = "text") -> Callable[[Observed], None]:
    def build(obs: Observed) -> None:
        good(obs)
        obs.violations.append(Violation(rule, detail, 0.005))

    return build


def response(raw: str, violation: Violation | None = None) -> Callable[[Observed], None]:
    def build(obs: Observed) -> None:
        obs.response = parse_head(raw.replace("\n", "\r\n").encode())
        obs.handshake_status = obs.response.status
        obs.handshake_ok = obs.response.status == 101 and violation is None
        obs.handshake_violation = violation
        obs.handshake_error = str(violation) if violation else None
        if obs.handshake_ok:
            good(obs)

    return build


OK_101 = "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n\n"


def failed_with(code: int | None, *, first: str = "target") -> Callable[[Observed], None]:
    def build(obs: Observed) -> None:
        _sent(obs)
        _close(obs, code, first=first)

    return build


def stayed_open(obs: Observed) -> None:
    _sent(obs)
    obs.waited_out = True


def dropped_without_close(obs: Observed) -> None:
    _sent(obs)
    _drop(obs)


def no_connection(obs: Observed) -> None:
    obs.connect_failed = True
    obs.handshake_error = "cannot connect to 127.0.0.1:1: ConnectionRefusedError()"


def pongs(sent: list[bytes], got: list[bytes]) -> Callable[[Observed], None]:
    def build(obs: Observed) -> None:
        obs.pings_sent.extend(sent)
        obs.pongs.extend(got)
        _close(obs)

    return build


def no_close_reply(obs: Observed) -> None:
    _sent(obs)
    _echo(obs)
    obs.close_sent = CloseInfo(1000, b"", 0.010, 2)
    obs.waited_out = True


def keeps_tcp(obs: Observed) -> None:
    good(obs)
    obs.tcp_closed_by = "peer"


def failed_late(obs: Observed) -> None:
    failed_with(1007)(obs)
    obs.failed_at_checkpoint = False


def oversized(obs: Observed) -> None:
    _sent(obs)
    obs.oversized_frame = 2**40
    obs.frame_cap = 64 * 2**20
    _drop(obs)


def refused_1009(obs: Observed) -> None:
    _sent(obs)
    _close(obs, 1009, first="target")


# (family, name, case fields, observation, outcome, words the reason must contain)
ROWS: list[tuple[str, str, dict[str, Any], Callable[[Observed], None], Outcome, str]] = [
    # -- the exchange itself --------------------------------------------------------------------
    ("exchange", "echo and clean close", {}, good, Outcome.PASS, "1 message(s), 0 pong(s), clean close"),
    ("exchange", "no connection", {}, no_connection, Outcome.FAIL, "no connection"),
    ("exchange", "no connection, informational case", {"expect": {"grade": "informational"}}, no_connection,
     Outcome.FAIL, "no connection"),
    ("exchange", "no connection, whatwg case", {"binding": "whatwg"}, no_connection, Outcome.FAIL,
     "no connection"),
    # -- the server's response (peer as client) --------------------------------------------------
    ("response", "101 with wrong accept", {}, response(OK_101, Violation("response-accept", "bad")),
     Outcome.FAIL, "§4.1 response-accept"),
    ("response", "unoffered protocol", {}, response(OK_101, Violation("response-protocol-not-offered", "x")),
     Outcome.FAIL, "response-protocol-not-offered"),
    ("response", "400 where 4xx expected", {"expect": {"handshake": {"status": ["4xx"]}}},
     response("HTTP/1.1 400 Bad Request\n\n"), Outcome.PASS, "status 400"),
    ("response", "400 where 426 recommended",
     {"expect": {"handshake": {"status": [426], "non_strict_status": ["4xx"]}}},
     response("HTTP/1.1 400 Bad Request\n\n"), Outcome.NON_STRICT, "426 recommended"),
    ("response", "101 where 4xx expected", {"expect": {"handshake": {"status": ["4xx"]}}}, response(OK_101),
     Outcome.FAIL, "status 101"),
    ("response", "informational handshake case", {"expect": {"handshake": {"status": ["4xx"]},
                                                              "grade": "informational"}}, response(OK_101),
     Outcome.INFORMATIONAL, "status 101"),
    # -- the client's request (peer as server) ---------------------------------------------------
    ("request", "request without Host", {"role": "client"},
     lambda o: (setattr(o, "peer_is_server", True), good(o),
                setattr(o, "handshake_violation", Violation("request-host", "no Host header"))),
     Outcome.FAIL, "§4.1 request-host"),
    ("request", "reused key, whatwg case", {"role": "client", "binding": "whatwg"},
     lambda o: (setattr(o, "peer_is_server", True), good(o),
                setattr(o, "handshake_violation", Violation("request-key-not-random", "reused"))),
     Outcome.FAIL, "request-key-not-random"),
    # -- frames ----------------------------------------------------------------------------------
    ("frame", "masked server frame", {}, with_violation("masked-by-server"), Outcome.FAIL, "§5.1 masked-by-server"),
    ("frame", "rsv bits", {}, with_violation("rsv-without-extension"), Outcome.FAIL, "§5.2 rsv-without-extension"),
    ("frame", "long control frame", {}, with_violation("control-frame-too-long", "ping"), Outcome.FAIL,
     "§5.5 control-frame-too-long"),
    ("frame", "violation in a whatwg case stays FAIL", {"binding": "whatwg"}, with_violation("unmasked-by-client"),
     Outcome.FAIL, "unmasked-by-client"),
    ("frame", "violation in an informational case is recorded", {"expect": {"grade": "informational"}},
     with_violation("non-minimal-length"), Outcome.INFORMATIONAL, "non-minimal-length"),
    ("frame", "oversized frame", {}, oversized, Outcome.FAIL, "beyond the 67108864 bytes"),
    # -- messages --------------------------------------------------------------------------------
    ("message", "invalid utf-8 echoed", {}, with_violation("invalid-utf8"), Outcome.FAIL, "§8.1 invalid-utf8"),
    ("message", "wrong echo", {}, lambda o: (_sent(o), _echo(o, payload=b"Hellx"), _close(o)), Outcome.FAIL,
     "message 1: expected text of 5 bytes"),
    ("message", "missing echo", {}, lambda o: (_sent(o, 2), _echo(o), _close(o)), Outcome.FAIL,
     "expected 2 message(s) back, got 1"),
    ("message", "utf-8 fail case: dropped", {"expect": {"fail": [1007]}}, dropped_without_close, Outcome.PASS,
     "dropped TCP"),
    ("message", "utf-8 fail case: 1002 instead of 1007", {"expect": {"fail": [1007]}}, failed_with(1002),
     Outcome.NON_STRICT, "closed with 1002"),
    ("message", "utf-8 fail case: stayed open", {"expect": {"fail": [1007]}}, stayed_open, Outcome.FAIL,
     "stayed open"),
    ("message", "fail-fast, failed late", {"expect": {"fail": [1007], "fail_fast": True}}, failed_late,
     Outcome.NON_STRICT, "only later"),
    ("message", "too big, refused with 1009", {"expect": {"too_big": "informational"}}, refused_1009,
     Outcome.INFORMATIONAL, "implementation limit"),
    # -- close -----------------------------------------------------------------------------------
    ("close", "invalid close code echoed", {}, with_violation("invalid-close-code", "code 999 (close)"),
     Outcome.FAIL, "§7.4 invalid-close-code: code 999"),
    ("close", "fail case answered with 1000", {"expect": {"fail": [1002]}}, failed_with(1000, first="peer"),
     Outcome.FAIL, "closed normally (1000)"),
    ("close", "fail case answered with 1001", {"expect": {"fail": [1002]}}, failed_with(1001, first="peer"),
     Outcome.FAIL, "closed normally (1001)"),
    ("close", "fail case answered with an empty close", {"expect": {"fail": [1002]}},
     failed_with(None, first="peer"), Outcome.FAIL, "closed normally (a close frame without a code)"),
    ("close", "fail case answered with 1007", {"expect": {"fail": [1002]}}, failed_with(1007, first="peer"),
     Outcome.NON_STRICT, "closed with 1007"),
    ("close", "fail case answered with 1002", {"expect": {"fail": [1002]}}, failed_with(1002, first="peer"),
     Outcome.PASS, "as expected"),
    ("close", "no close reply", {}, no_close_reply, Outcome.FAIL, "§5.5.1 close-no-reply"),
    ("close", "no close reply in a whatwg case", {"binding": "whatwg"}, no_close_reply, Outcome.FAIL,
     "close-no-reply"),
    ("close", "server keeps TCP open", {}, keeps_tcp, Outcome.FAIL, "server-keeps-tcp-open"),
    ("close", "other valid code in reply", {"expect": {"close": [3000]}}, good, Outcome.NON_STRICT,
     "typically echoes"),
    ("close", "informational close code", {"expect": {"close": [3000], "grade": "informational"}}, good,
     Outcome.INFORMATIONAL, "close reply carried 1000"),
    # -- ping/pong -------------------------------------------------------------------------------
    ("ping", "pong answers", {}, pongs([b"a"], [b"a"]), Outcome.PASS, "1 pong(s)"),
    ("ping", "wrong pong payload", {}, pongs([b"a"], [b"b"]), Outcome.FAIL, "answers no ping"),
    ("ping", "only the last of two pings", {}, pongs([b"a", b"b"], [b"b"]), Outcome.PASS, "allowed by §5.5.3"),
    # -- masking keys (client targets) -----------------------------------------------------------
    ("masking", "constant masking key", {"role": "client"}, with_violation("mask-key-reused"), Outcome.FAIL,
     "§5.3 mask-key-reused"),
    ("masking", "zero masking key", {"role": "client"}, with_violation("mask-key-zero"), Outcome.FAIL,
     "§5.3 mask-key-zero"),
    # -- permessage-deflate (rules the peer names once it inflates) -------------------------------
    ("deflate", "rsv1 on a continuation", {}, with_violation("rsv1-on-continuation"), Outcome.FAIL,
     "RFC 7692 §6.1 rsv1-on-continuation"),
    ("deflate", "window exceeded", {}, with_violation("deflate-window-exceeded"), Outcome.FAIL,
     "RFC 7692 §7.1.2 deflate-window-exceeded"),
    # -- WHATWG binding on the case's own question -----------------------------------------------
    ("binding", "whatwg expectation on a library", {"binding": "whatwg", "expect": {"fail": True}}, stayed_open,
     Outcome.INFORMATIONAL, "not binding on this target"),
]  # fmt: skip


@pytest.mark.parametrize(("family", "name", "fields", "build", "outcome", "words"), ROWS,
                         ids=[f"{r[0]}: {r[1]}" for r in ROWS])  # fmt: skip
def test_verdict_table(
    family: str,
    name: str,
    fields: dict[str, Any],
    build: Callable[[Observed], None],
    outcome: Outcome,
    words: str,
) -> None:
    fields = dict(fields)
    case = _case(fields.pop("expect", None), **fields)
    obs = Observed(handshake_ok=True)
    build(obs)
    verdict = decide(case, obs, DATA)
    assert verdict.outcome is outcome, verdict.reason
    assert words in verdict.reason


def test_whatwg_binds_browsers() -> None:
    case = _case({"fail": True}, binding="whatwg")
    obs = Observed(handshake_ok=True)
    stayed_open(obs)
    assert decide(case, obs, DATA, whatwg_api=True).outcome is Outcome.FAIL


# -- the API-event judge (client targets) ---------------------------------------------------------


def _client_obs(code: int | None = 1000) -> Observed:
    obs = Observed(handshake_ok=True, peer_is_server=True)
    obs.response = parse_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
    good(obs)
    if code != 1000:
        obs.close = CloseInfo(code, b"", 0.020, 2)
    return obs


def _events(*events: dict[str, Any], exit_code: int | None = 0) -> ClientReport:
    report = ClientReport(exit_code=exit_code)
    for e in events:
        report.add_event(e)
    return report


OPEN = {"event": "open", "protocol": "", "extensions": ""}
API_ROWS: list[tuple[str, dict[str, Any], Observed, ClientReport, Outcome, str]] = [
    ("clean close reported", {}, _client_obs(),
     _events(OPEN, {"event": "close", "code": 1000, "reason": "", "wasClean": True}), Outcome.PASS, "clean close"),
    ("clean close reported as 1006", {}, _client_obs(),
     _events(OPEN, {"event": "close", "code": 1006, "reason": "", "wasClean": False}), Outcome.FAIL,
     "clean close reported as code 1006"),
    ("no close event", {}, _client_obs(), _events(OPEN), Outcome.FAIL, "no close event"),
    ("exit 127", {}, _client_obs(), _events(exit_code=127), Outcome.UNIMPLEMENTED, "exit 127"),
    ("garbage on stdout", {}, _client_obs(), ClientReport(exit_code=0, garbage=["hello"]), Outcome.FAIL,
     "not an event"),
    ("must throw, did not (library)", {"binding": "whatwg", "expect": {"api": {"throws": "SyntaxError"}}},
     _client_obs(), _events(OPEN, {"event": "close", "code": 1000, "reason": "", "wasClean": True}),
     Outcome.INFORMATIONAL, "must throw SyntaxError"),
    ("refused a close code: error, 1006, no reason", {"role": "client"}, _client_obs(1002),
     _events(OPEN, {"event": "error"}, {"event": "close", "code": 1006, "reason": "", "wasClean": False}),
     Outcome.PASS, "clean close (1002)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "fields", "obs", "report", "outcome", "words"), API_ROWS,
                         ids=[r[0] for r in API_ROWS])  # fmt: skip
def test_api_table(
    name: str, fields: dict[str, Any], obs: Observed, report: ClientReport, outcome: Outcome, words: str
) -> None:
    fields = dict(fields)
    case = _case(fields.pop("expect", None), **fields)
    verdict = decide(case, obs, DATA, client=report)
    assert verdict.outcome is outcome, verdict.reason
    assert words in verdict.reason


# -- resources, grades, expected.yaml, ERROR -------------------------------------------------------


def test_resource_bounds() -> None:
    case = _case({"resources": {"max_held": "1Mi"}})
    obs = Observed(handshake_ok=True)
    good(obs)
    within = decide(case, obs, DATA, figures={"held_bytes": 1000, "peak_rss_growth": 2000})
    beyond = decide(case, obs, DATA, figures={"held_bytes": 5 * 2**20, "peak_rss_growth": 2000})
    assert within.outcome is Outcome.PASS and within.reason.startswith("bounded")
    assert beyond.outcome is Outcome.INFORMATIONAL and "held over 1 MiB" in beyond.reason


def test_grades_leave_error_and_unimplemented_alone() -> None:
    from harness.verdict.base import Verdict

    for outcome in (Outcome.ERROR, Outcome.UNIMPLEMENTED):
        v = Verdict(outcome, "x", basis="expectation")
        assert apply_grade(v, "informational") is v
        assert apply_binding(v, "whatwg", False) is v


@pytest.mark.parametrize(
    ("outcome", "expected", "failed", "xfail"),
    [
        ("FAIL", None, True, False),
        ("FAIL", {"outcome": "FAIL", "reason": "r"}, False, True),
        ("PASS", {"outcome": "FAIL", "reason": "r"}, True, False),
        ("PASS", {"outcome": "FAIL", "reason": "r", "intermittent": "true"}, False, False),
        ("NON-STRICT", {"outcome": "FAIL", "reason": "r", "intermittent": "true"}, False, False),
        ("NON-STRICT", {"outcome": "FAIL", "reason": "r"}, True, False),
        ("FAIL", {"outcome": "NON-STRICT", "reason": "r", "intermittent": "true"}, True, False),
        ("ERROR", {"outcome": "FAIL", "reason": "r", "intermittent": "true"}, True, False),
        ("NON-STRICT", None, False, False),
        ("ERROR", None, True, False),
    ],
)
def test_expected_yaml_grades(
    outcome: str, expected: dict[str, str] | None, failed: bool, xfail: bool
) -> None:
    grade = judge_record({"outcome": outcome, "reason": "why", "expected": expected})
    assert (grade.failed, grade.xfail) == (failed, xfail)


def test_harness_failure_is_error_not_fail() -> None:
    async def broken_launch(url: str, protocols: list[str], scenario: dict[str, str] | None = None) -> Any:
        raise RuntimeError("the harness broke")

    case = Case("client", "client/x.yaml", 1, _case(role="client"))
    played = asyncio.run(play(case, broken_launch, data_dir=DATA, timeout=1.0))
    assert played.verdict.outcome is Outcome.ERROR
    assert "RuntimeError: the harness broke" in played.verdict.reason


def test_every_rule_is_cited() -> None:
    for rule in RULES.values():
        assert rule.section.startswith("RFC "), rule.id
        assert "§" in rule.section and rule.sentence, rule.id
