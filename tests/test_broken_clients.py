"""Client-role cases can fail: one deliberately broken client per defect, caught by the named case.

Every row also runs the case against the same client without the defect, which must PASS, so the FAIL
comes from the defect and not from the case or the harness.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.engine import CaseResult, run_case
from harness.model.loader import Case
from harness.outcome import Outcome
from harness.targets.runners.persistent import PersistentClientLauncher
from harness.targets.runners.process import ProcessClientLauncher
from harness.targets.session import TargetSession
from harness.targets.spec import Policies, RoleSpec, TargetSpec
from tests.conftest import CASES, ROOT

BROKEN_CLIENT = ROOT / "tests" / "broken_client.py"

ROWS = [
    ("accept-wrong-accept", "client-rejects-wrong-accept", "unexpected text"),
    ("accept-unoffered-protocol", "client-rejects-unoffered-subprotocol", "unexpected text"),
    ("no-mask", "client-echo-text-125", "unmasked"),
    ("accept-masked", "client-rejects-masked-frame", "stayed open"),
    ("report-1000-on-abnormal", "client-reports-abnormal-close", "reported close code 1000"),
    ("api-close-no-throw", "api-close-999-throws", "invalid-close-code: code 999"),
    ("drop-when-slow", "backpressure-client-slow-reader", "message 2: expected binary"),
    ("accept-invalid-utf8", "utf8-invalid-one-frame", "invalid-utf8"),
    ("accept-orphan-continuation", "orphan-continuation-fin-true-then-text-one-write", "1002"),
    ("empty-pong", "ping-text-payload", "pong"),
    ("echo-invalid-close-code", "close-code-999", "invalid-close-code: code 999"),
    ("no-mask", "binary-len-126", "unmasked"),
    ("close-normally-on-error", "client-rejects-masked-frame", "closed normally (1000)"),
    ("send-after-close", "client-echo-text-125", "frame-after-close"),
    ("constant-mask-key", "client-echo-text-125", "§5.3 mask-key-reused"),
    ("zero-mask-key", "client-echo-text-125", "§5.3 mask-key-zero"),
    ("sample-key", "client-echo-text-125", "request-key-not-random"),
    # robustness: the client's parser backtracks on a 7 KB value of the 101 (it never answers)
    *[
        ("backtracking-response-parser", f"robust-client-backtracking-{shape}", "no answer at all")
        for shape in (
            "protocol-blank-run",
            "extensions-blank-run",
            "extensions-param-blank-run",
            "extensions-unclosed-quote",
        )
    ],
    # permessage-deflate (RFC 7692): the reference client offers it; each defect breaks one rule
    ("deflate-rsv1-on-control", "pmd-client-rsv1-on-ping", "stayed open"),
    ("deflate-rsv1-on-continuation", "pmd-client-rsv1-on-continuation", "stayed open"),
    ("deflate-rsv1-unnegotiated", "pmd-client-rsv1-not-negotiated", "stayed open"),
    ("deflate-ignore-corrupt", "pmd-client-corrupt-invalid-block-type", "stayed open"),
    ("deflate-keep-context", "pmd-client-context-client-reset", "deflate-context-not-reset"),
    ("deflate-full-window", "pmd-client-role-window-9", "deflate-window-exceeded"),
]


def _session(
    tmp_path: Path, defect: str | None, *, whatwg: bool = True, persistent: bool = False
) -> TargetSession:
    """The reference client, one process per case, or (``persistent``) one for every case."""
    argv = [sys.executable, str(BROKEN_CLIENT)]
    argv += ["--persistent"] if persistent else ["--url", "{url}", "--protocols", "{protocols}"]
    if defect:
        argv += ["--defect", defect]
    spec = TargetSpec(  # it follows the WHATWG API rules, so `binding: whatwg` cases bind it
        name="broken-client", implementation="tests/broken_client.py", roles={"client": RoleSpec()},
        policies=Policies(whatwg_api=whatwg, permessage_deflate=True),
    )  # fmt: skip
    launcher = PersistentClientLauncher if persistent else ProcessClientLauncher
    return TargetSession(
        f"broken-client-{defect}-{tmp_path.name}",
        launcher(argv, cwd=None, log_path=tmp_path / "c.log"),
        spec,
        role="client",
    )


def _run(case: Case, tmp_path: Path, defect: str | None, *, whatwg: bool = True) -> CaseResult:
    session = _session(tmp_path, defect, whatwg=whatwg)
    return run_case(case, session, data_dir=CASES / "data", timeout_scale=0.3)


@pytest.mark.parametrize(("defect", "case_id", "words"), ROWS, ids=[r[0] for r in ROWS])
def test_client_defect_is_caught(
    repo_cases: dict[str, Case], tmp_path: Path, defect: str, case_id: str, words: str
) -> None:
    case = repo_cases[case_id]
    good = _run(case, tmp_path, None)
    assert good.outcome is Outcome.PASS, f"correct client: {good.outcome} {good.reason}"
    bad = _run(case, tmp_path, defect)
    assert bad.outcome is Outcome.FAIL, f"{defect}: {bad.outcome} {bad.reason}"
    assert words in bad.reason, bad.reason


# Client-role families the reference client cannot play yet (named here until they are proven; the
# test below fails once they are). Empty: every client family is proven.
NOT_YET_PROVEN: set[str] = set()


def test_every_client_case_passes_the_correct_client(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    """The reference client built on our codec passes every client-role case: no case asks too much."""
    session = _session(tmp_path, None, persistent=True)  # one process: 700 interpreter starts cost 2 min
    try:
        results = [
            run_case(c, session, data_dir=CASES / "data", timeout_scale=0.3)
            for c in repo_cases.values()
            if c.model.role in ("client", "both") and c.family not in NOT_YET_PROVEN
        ]
    finally:
        session.stop()
    # INFORMATIONAL: the case records behaviour no rule decides (e.g. how a close code 5000 is answered)
    bad = [
        (r.case.id, r.outcome, r.reason)
        for r in results
        if r.outcome not in (Outcome.PASS, Outcome.INFORMATIONAL)
    ]
    assert not bad, bad


def test_every_client_family_is_proven_able_to_fail(repo_cases: dict[str, Case]) -> None:
    families = {c.family for c in repo_cases.values() if c.model.role in ("client", "both")}
    proven = {repo_cases[case_id].family for _, case_id, _ in ROWS}
    missing = families - proven - NOT_YET_PROVEN
    assert families and not missing, f"client families without a broken-client test: {missing}"
    assert not NOT_YET_PROVEN & proven, "proven now: take it out of NOT_YET_PROVEN"


def test_frames_after_close_reply_are_seen_every_time(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    """The peer half-closes and reads until the client's FIN, so this does not depend on timing."""
    session = _session(tmp_path, "send-after-close")
    results = [run_case(repo_cases["close-code-1000"], session, data_dir=CASES / "data") for _ in range(5)]
    assert [r.outcome for r in results] == [Outcome.FAIL] * 5, [r.reason for r in results]
    assert all("frame-after-close" in r.reason for r in results)


def test_a_key_sent_twice_is_not_random(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    session = _session(tmp_path, "fixed-key")
    case = repo_cases["client-echo-text-125"]
    first, second = (run_case(case, session, data_dir=CASES / "data") for _ in range(2))
    assert first.outcome is Outcome.PASS, first.reason
    assert second.outcome is Outcome.FAIL and "request-key-not-random" in second.reason, second.reason
    assert "earlier connection" in second.reason


def test_whatwg_binding_softens_only_the_api_expectation(repo_cases: dict[str, Case], tmp_path: Path) -> None:
    """A library (no whatwg_api) that does not throw on close(999) is recorded, not failed; the same
    case with a wire violation (unmasked frames) is FAIL for it all the same; a browser API is bound."""
    case = repo_cases["api-close-999-throws"]
    library = _run(case, tmp_path, "api-no-throw-silent", whatwg=False)
    assert library.outcome is Outcome.INFORMATIONAL, library.reason
    assert "not binding on this target" in library.reason
    browser = _run(case, tmp_path, "api-no-throw-silent", whatwg=True)
    assert browser.outcome is Outcome.FAIL and "must throw InvalidAccessError" in browser.reason
    wire = _run(case, tmp_path, "no-mask", whatwg=False)
    assert wire.outcome is Outcome.FAIL and "unmasked-by-client" in wire.reason, wire.reason
