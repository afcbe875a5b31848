"""The robustness family: its case language, its timing grade, and every case proven able to fail.

The table runs each robustness case against tests/broken_server.py with the one defect that case
exists to catch (a backtracking header parser, a crash above N header fields, an unbounded fragment
buffer, a plain-object name registry), which must give the named outcome and reason; one test runs
the whole family against the server without a defect, which must PASS every case. The server
declares (and enforces) a 1 MiB maximum message size, so the fragment cases' memory bound is
16 MiB + 1 MiB.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from harness.engine import CaseResult, run_case
from harness.model.loader import Case, CaseError, load_file
from harness.model.schema import Expect, HandshakeSpec, ResourcesExpect, resolve_bound
from harness.observed import Observed
from harness.outcome import Outcome
from harness.peer.client import Endpoint, build_handshake
from harness.peer.connection import PeerConnection
from harness.peer.opening import send_request
from harness.peer.trace import Trace
from harness.results import SCHEMA
from harness.targets.adhoc import AdhocTarget
from harness.targets.session import TargetSession, open_session
from harness.verdict.base import expectation
from harness.verdict.timing import judge_probe, judge_response_time
from harness.wire import handshake as hs
from tests.conftest import BROKEN, CASES, ROOT

MAX_SIZE = 1 << 20
FAMILY = "robustness"


def _session(tmp_path: Path, defect: str | None, *extra: str) -> TargetSession:
    cmd = f"{sys.executable} {BROKEN} --port {{port}} --max-size {MAX_SIZE}"
    if defect:
        cmd += f" --defect {defect}"
    cmd += "".join(f" {arg}" for arg in extra)
    name = f"broken-{defect or 'none'}"
    adhoc = AdhocTarget("cmd", cmd, name=name, subprotocols=["chat", "superchat"], max_message_size=MAX_SIZE)
    return open_session(adhoc=adhoc, targets_root=ROOT / "targets", log_dir=tmp_path / "logs")


@pytest.fixture(scope="module")
def family(repo_cases: dict[str, Case]) -> dict[str, Case]:
    return {k: c for k, c in repo_cases.items() if c.family == FAMILY and c.model.role == "server"}


# -- the case language ----------------------------------------------------------------------------


def _head(spec: dict[str, object]) -> hs.HttpHead:
    request, _ = build_handshake(HandshakeSpec.model_validate(spec), Endpoint("127.0.0.1", 9), CASES / "data")
    return hs.parse_head(request)


def test_generated_fields_go_before_or_after_the_websocket_headers() -> None:
    head = _head({"fields": [{"count": 3, "name": "X-F-{i}", "value_size": 4, "position": "before"},
                             {"count": 2, "name": "X-Same", "value": "v{i}"}]})  # fmt: skip
    names = [k for k, _ in head.headers]
    assert names[:3] == ["X-F-1", "X-F-2", "X-F-3"] and names[3] == "Host"
    assert head.headers[-2:] == [("X-Same", "v1"), ("X-Same", "v2")]
    assert head.get("X-F-2") == "vvvv"
    assert names.index("Sec-WebSocket-Version") < names.index("X-Same")


def test_a_generated_value_is_one_line_of_yaml() -> None:
    value = {"repeat": {"prefix": "a", "unit": " ", "count": 65536, "suffix": "b"}}
    head = _head({"add_headers": [["Sec-WebSocket-Protocol", value]]})
    raw = [line for line in head.raw.split(b"\r\n") if line.startswith(b"Sec-WebSocket-Protocol")]
    assert raw == [b"Sec-WebSocket-Protocol: a" + b" " * 65536 + b"b"]


def test_bounds_scale_with_the_declared_maximum() -> None:
    bounds = ResourcesExpect.model_validate({"max_growth": "16Mi + max_message_size / 4"})
    assert resolve_bound(bounds.max_growth, {"max_message_size": 64 << 20}) == 32 << 20
    assert resolve_bound("1Ki + max_message_size", {"max_message_size": 10}) == 1034
    assert resolve_bound("1Ki + max_message_size", {}) == 1024  # no declared maximum: the allowance alone


HS = "steps[0].handshake"


@pytest.mark.parametrize(
    ("body", "where", "words"),
    [
        ("{fields: [{count: 5, name: 'X:{j}'}]}", f"{HS}.fields[0].name", "token"),
        ("{fields: [{count: 0}]}", f"{HS}.fields[0].count", "greater than or equal"),
        ("{fields: [{count: 2, value: a, value_size: 3}]}", f"{HS}.fields[0]", "not both"),
        ("{fields: [{count: 2, position: middle}]}", f"{HS}.fields[0].position", "'before' or 'after'"),
        ("{probe: {after: 99}}", f"{HS}.probe.after", "less than or equal"),
    ],
)
def test_load_errors_name_file_line_and_field(tmp_path: Path, body: str, where: str, words: str) -> None:
    folder = tmp_path / "robustness"
    folder.mkdir()
    path = folder / "bad.yaml"
    text = f"cases:\n  - id: bad\n    title: t\n    spec: s\n    steps:\n      - handshake: {body}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CaseError) as caught:
        load_file(path, tmp_path)
    err = caught.value
    assert (err.file, err.line) == ("robustness/bad.yaml", 6), str(err)
    assert err.field.startswith(f"cases[0].{where}"), str(err)
    assert words in err.message, str(err)


# -- the timing grade -----------------------------------------------------------------------------


def _timed(head_sent: float | None, answer: float | None, *, unmet: str | None = None) -> Observed:
    obs = Observed(answer_started_t=0.0, head_sent_t=head_sent, answer_t=answer)
    if unmet:
        obs.unmet.append(unmet)
    return obs


WITHIN = Expect(respond_within=1.0)
ON_TIME = expectation(Outcome.PASS, "status 431, as expected")


@pytest.mark.parametrize(
    ("obs", "outcome", "words"),
    [
        (_timed(0.10, 0.11), Outcome.PASS, "answered in 10.0 ms (bound 1 s)"),
        (_timed(0.10, 2.60), Outcome.FAIL, "answered after 2500.0 ms, beyond the 1 s bound"),
        (_timed(0.10, None), Outcome.FAIL, "no answer at all"),
        (_timed(None, 0.05), Outcome.PASS, "answered in 0.0 ms"),  # refused before the request ended
    ],
)
def test_response_time_against_the_bound(obs: Observed, outcome: Outcome, words: str) -> None:
    verdict = judge_response_time(WITHIN, obs, ON_TIME)
    assert verdict.outcome is outcome and words in verdict.reason, verdict.reason


def test_no_bound_no_grade() -> None:
    assert judge_response_time(Expect(), _timed(0.0, 30.0), ON_TIME) is ON_TIME


def test_a_starved_probe_fails_a_refusal_on_time() -> None:
    obs = _timed(0.1, 0.2, unmet="a second connection opened meanwhile got no echo within 3 s")
    verdict = judge_probe(obs, ON_TIME)
    assert verdict.outcome is Outcome.FAIL and "got no echo" in verdict.reason and "431" in verdict.reason
    assert judge_probe(_timed(0.1, 0.2), ON_TIME) is ON_TIME


# -- every case against the correct server, and each defect caught ---------------------------------


def _run(case: Case, session: TargetSession) -> CaseResult:
    return run_case(case, session, data_dir=CASES / "data", timeout_scale=0.3)


@pytest.fixture
def correct(tmp_path: Path) -> Iterator[TargetSession]:
    session = _session(tmp_path, None)
    yield session
    session.stop()


def test_the_correct_server_passes_the_whole_family(family: dict[str, Case], correct: TargetSession) -> None:
    results = [_run(case, correct) for case in family.values()]
    bad = [(r.case.id, r.outcome, r.reason) for r in results if r.outcome is not Outcome.PASS]
    assert not bad, bad
    assert len(results) >= 33
    timed = [r for r in results if r.case.model.expect.respond_within is not None]
    assert all(isinstance((r.figures or {}).get("response_s"), float) for r in timed)
    sampled = [r for r in results if r.case.model.expect.resources is not None]
    assert sampled and all((r.figures or {})["bounds"]["max_growth"] == 17 << 20 for r in sampled)


CRASH = "crash-above-n-fields"
EXITED = "target exited (status 70)"
GROWN = "RSS growth over 17 MiB"
SELECTED = "response has Sec-WebSocket-Protocol: "
NAMES = ("constructor", "proto", "tostring", "hasownproperty", "valueof")
SHAPES = [
    ("protocol", "blank-run"), ("protocol", "empty-elements"), ("protocol", "unclosed-quote"),
    ("extensions", "blank-run"), ("extensions", "param-blank-run"),
    ("extensions", "empty-elements"), ("extensions", "unclosed-quote"),
]  # fmt: skip
Row = tuple[str, tuple[str, ...], str, Outcome, str]
# defect, its extra arguments, the case that must catch it, outcome, words the reason must contain
ROWS: list[Row] = [
    *[("backtracking-header-parser", (), f"robust-backtracking-{h}-{shape}", Outcome.FAIL, "no answer at all")
      for h, shape in SHAPES],
    *[(CRASH, ("--max-fields", str(n - 1)), f"robust-header-fields-{n}-{where}", Outcome.FAIL, EXITED)
      for n in (100, 1000, 2001, 10000) for where in ("before", "after")],
    *[(CRASH, ("--max-fields", "4999"), f"robust-repeated-{name}-5000", Outcome.FAIL, EXITED)
      for name in ("custom-field", "protocol", "extensions")],
    ("unbounded-fragments", (), "robust-one-byte-fragments-100k", Outcome.INFORMATIONAL, GROWN),
    ("unbounded-fragments", (), "robust-empty-frame-flood-200k", Outcome.INFORMATIONAL, GROWN),
    # lost or corrupted data stays FAIL whatever the memory: one byte of the 100 000 flipped
    ("corrupt-large", (), "robust-one-byte-fragments-100k", Outcome.FAIL, "message 1: expected text of 1000"),
    *[("object-registry", (), f"robust-extension-name-{n}", Outcome.FAIL, "server accepted") for n in NAMES],
    ("object-registry", (), "robust-extension-names-list", Outcome.FAIL, "accepted 'constructor, __proto__"),
    *[("object-registry", (), f"robust-protocol-name-{n}", Outcome.FAIL, SELECTED) for n in NAMES],
    ("object-registry", (), "robust-protocol-names-list", Outcome.FAIL, f"{SELECTED}'constructor'"),
    ("object-registry", (), "robust-protocol-names-then-chat", Outcome.FAIL, "server selected 'constructor'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("defect", "extra", "case_id", "outcome", "words"), ROWS, ids=[f"{r[0]}:{r[2]}" for r in ROWS]
)
def test_defect_is_caught(
    family: dict[str, Case],
    tmp_path: Path,
    defect: str,
    extra: tuple[str, ...],
    case_id: str,
    outcome: Outcome,
    words: str,
) -> None:
    session = _session(tmp_path, defect, *extra)
    try:
        result = _run(family[case_id], session)
    finally:
        session.stop()
    assert result.outcome is outcome and words in result.reason, f"{defect}: {result.outcome} {result.reason}"


def test_every_case_of_the_family_has_a_row(family: dict[str, Case]) -> None:
    assert {row[2] for row in ROWS} == set(family)


# -- the figures on the performance page ---------------------------------------------------------


def test_figures_reach_the_performance_page(tmp_path: Path) -> None:
    """Response times and RSS growth per case file and target, escaped like every target-made text."""

    def record(case: str, target: str, figures: dict[str, float]) -> dict[str, object]:
        file = f"{FAMILY}/{case.split('-')[1]}.yaml"
        return {"case": case, "family": FAMILY, "file": file, "title": case, "target": target,
                "outcome": "PASS", "reason": "ok", "duration_ms": 5.0, "spec": "§10.4", "tags": [FAMILY],
                "figures": figures}  # fmt: skip

    targets = [{"name": n, "implementation": n, "language": "x", "version": "1", "role": "server"}
               for n in ("alpha", "<b>beta</b>")]  # fmt: skip
    results = [
        record("robust-backtracking-a", "alpha", {"response_s": 0.0123}),
        record("robust-backtracking-a", "<b>beta</b>", {"response_s": 2.5}),
        record("robust-fragments-b", "alpha", {"peak_rss_growth": 3 * 2**20}),
    ]
    when = "2026-01-02T03:04:05+00:00"
    doc = {"schema": SCHEMA, "started": when, "finished": when, "harness_version": "0", "command": "x",
           "machine": {}, "targets": targets, "results": results}  # fmt: skip
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["report", str(path), "-o", str(tmp_path / "report")]) == 0
    perf = (tmp_path / "report" / "performance.html").read_text()
    assert "robustness/backtracking.yaml: response time" in perf
    assert "robustness/fragments.yaml: RSS growth" in perf
    assert "robust-backtracking-a · alpha: 12.3 ms" in perf and "robust-fragments-b · alpha: 3 MiB" in perf
    assert "&lt;b&gt;beta&lt;/b&gt;: 2500 ms" in perf and "<b>beta" not in perf


# -- the opening request: an answer before the end of it survives the reset -------------------------


async def _early_refusal() -> tuple[bytes, Observed]:
    """A server that reads 4 KiB of a 48 MB request (more than both kernels' buffers take), answers
    431 and closes with the rest unread (its kernel resets the connection): the answer must still be
    read, and timed at 0. Writing first and reading after (as the peer did before) loses it: asyncio
    raises the reset before it returns what it had buffered."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.transport.abort()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    obs = Observed()
    conn = PeerConnection(reader, writer, Trace(), obs, we_mask=True)
    request = hs.build_request(f"127.0.0.1:{port}", headers=[("X-Fill", "v" * 48_000_000)])
    try:
        head, _ = await send_request(conn, reader, request, chop=None, delay=0.0, timeout=5.0)
    finally:
        writer.close()
        server.close()
    return head, obs


def test_an_early_refusal_is_read_and_timed() -> None:
    head, obs = asyncio.run(_early_refusal())
    assert hs.parse_head(head).status == 431
    assert obs.head_sent_t is None and obs.response_s == 0.0  # answered before the request ended
