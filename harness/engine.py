"""Run one (case, target) pair and produce its result record: the one API both front ends call.

The engine owns the rules that keep a run honest: a harness exception is ERROR, never FAIL; a target
that cannot start is ERROR with the cause; a target that dies or hangs during a case is FAIL for that
case and is restarted before the next; every case has a hard deadline on top of its own waits.
"""

from __future__ import annotations

import asyncio
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.model.loader import Case
from harness.peer.client import Endpoint, run_client_case
from harness.peer.server import run_server_case
from harness.targets.runners import Runner, TargetUnavailable
from harness.targets.session import TargetSession
from harness.verdict import Outcome, Verdict, judge, judge_api

HARD_DEADLINE_SLACK = 15.0


@dataclass
class CaseResult:
    case: Case
    target: str
    outcome: Outcome
    reason: str
    duration_ms: float
    trace: dict[str, Any] = field(default_factory=dict)
    log: str = ""
    expected: dict[str, str] | None = None
    trace_file: str | None = None

    def record(self) -> dict[str, Any]:
        """The line written to results.jsonl (and the entry of results.json)."""
        m = self.case.model
        return {
            "case": self.case.id,
            "family": self.case.family,
            "file": self.case.file,
            "title": m.title,
            "target": self.target,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "duration_ms": round(self.duration_ms, 3),
            "autobahn": m.autobahn,
            "spec": m.spec,
            "tags": m.tags,
            "expected": self.expected,
            "trace_file": self.trace_file,
        }


def applies(case: Case, session: TargetSession) -> bool:
    """Does this case exercise the role this target session plays?"""
    return case.model.role in (session.role, "both")


def unmet_requirements(case: Case, session: TargetSession) -> str | None:
    """Why the target's declared policies cannot support this case (UNIMPLEMENTED), or None."""
    req, pol = case.model.requires, session.policies
    lacking = [p for p in req.subprotocols if p not in pol.subprotocols]
    if lacking:
        return f"target declares no support for subprotocol(s) {', '.join(lacking)} (policies.subprotocols)"
    if req.permessage_deflate and not pol.permessage_deflate:
        return "target does not enable permessage-deflate (policies.permessage_deflate)"
    return None


def run_case(
    case: Case,
    session: TargetSession,
    *,
    data_dir: Path,
    trace_dir: Path | None = None,
    timeout_scale: float = 1.0,
) -> CaseResult:
    started = time.monotonic()
    trace: dict[str, Any] = {}
    log = ""
    try:
        note = session.ensure_running()
    except TargetUnavailable as exc:
        result = CaseResult(
            case, session.name, Outcome.ERROR, f"target unavailable: {exc}".splitlines()[0], 0.0, log=str(exc)
        )
        return _finish(result, session, trace_dir)
    missing = unmet_requirements(case, session)
    if missing:
        result = CaseResult(case, session.name, Outcome.UNIMPLEMENTED, missing, 0.0)
        return _finish(result, session, trace_dir)
    mark = session.runner.log_mark()
    timeout = case.model.timeout * timeout_scale
    addr = session.runner.address
    try:
        if session.runner.launches_clients:
            trace, verdict = asyncio.run(_client_target_case(case, session.runner, data_dir, timeout))
        else:
            obs, tr = asyncio.run(
                _with_deadline(case, Endpoint(addr.host, addr.port, addr.path), data_dir, timeout)
            )
            trace = tr.to_json()
            verdict = judge(case.model.expect, obs, data_dir)
    except TimeoutError:
        verdict = Verdict(
            Outcome.FAIL, f"case exceeded its hard deadline of {timeout + HARD_DEADLINE_SLACK:g} s"
        )
        session.stop()
    except Exception as exc:  # the harness's own failure: never blame the target for it
        verdict = Verdict(Outcome.ERROR, f"harness error: {type(exc).__name__}: {exc}")
        log = traceback.format_exc()
    if not session.runner.alive() and session.started and session.runner.restartable:
        status = session.runner.exit_status()
        if not verdict.outcome.failed:
            verdict = Verdict(Outcome.FAIL, f"target process exited (status {status}) during the case")
        session.started = True  # so ensure_running restarts it and says so
    if note:
        trace.setdefault("notes", []).append(note)
    log = session.runner.log_since(mark) + log
    duration = (time.monotonic() - started) * 1000
    result = CaseResult(case, session.name, verdict.outcome, verdict.reason, duration, trace, log)
    return _finish(result, session, trace_dir)


async def _client_target_case(
    case: Case, launcher: Runner, data_dir: Path, timeout: float
) -> tuple[dict[str, Any], Verdict]:
    """A client-role case: the peer is the server; the frames and the client's API events are judged."""
    obs, tr, client = await asyncio.wait_for(
        run_server_case(case, launcher.launch, data_dir=data_dir, timeout=timeout),
        timeout + HARD_DEADLINE_SLACK,
    )
    trace = tr.to_json()
    trace["api"] = client.events
    if client.exit_code is not None:
        trace.setdefault("notes", []).append(f"client exited with status {client.exit_code}")
    verdict = judge(case.model.expect, obs, data_dir)
    api = judge_api(case.model.expect, obs, client.events, client.exit_code, client.garbage)
    if api is not None and (api.outcome is Outcome.UNIMPLEMENTED or not verdict.outcome.failed):
        verdict = api
    return trace, verdict


async def _with_deadline(case: Case, endpoint: Endpoint, data_dir: Path, timeout: float) -> Any:
    return await asyncio.wait_for(
        run_client_case(case, endpoint, data_dir=data_dir, timeout=timeout), timeout + HARD_DEADLINE_SLACK
    )


def _finish(result: CaseResult, session: TargetSession, trace_dir: Path | None) -> CaseResult:
    deviation = session.expected.get(result.case.id)
    if deviation is not None:
        result.expected = {"outcome": str(deviation.outcome), "reason": deviation.reason}
    if trace_dir is not None:
        folder = trace_dir / session.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{result.case.id}.json"
        result.trace_file = str(path)
        payload = {
            **result.record(),
            "expect": result.case.model.expect.model_dump(mode="json", exclude_defaults=True),
            "trace": result.trace,
            "log": result.log,
            "source": result.case.source,
        }
        path.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
    return result
