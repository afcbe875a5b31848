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

from harness import resources
from harness.model.loader import Case
from harness.observed import Observed
from harness.peer.client import Endpoint, run_client_case
from harness.peer.server import ClientProcess, run_server_case
from harness.resources import CaseContext
from harness.sampling import Sampler, memory_of
from harness.targets.policies import unmet_requirements
from harness.targets.runners import Runner, TargetUnavailable
from harness.targets.session import TargetSession
from harness.targets.spec import ExpectedDeviation
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
    figures: dict[str, Any] | None = None  # resource cases: peak_rss_growth, absorbed_bytes, drain_s ...
    samples: list[dict[str, Any]] | None = None  # resource cases: {t, rss, bytes_in_flight}, <= 200

    def record(self) -> dict[str, Any]:
        """The line written to results.jsonl (and the entry of results.json)."""
        m = self.case.model
        extra: dict[str, Any] = {}
        if self.figures is not None:
            extra["figures"] = self.figures
        if self.samples:
            extra["samples"] = self.samples
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
            **extra,
        }


def applies(case: Case, session: TargetSession) -> bool:
    """Does this case exercise the role this target session plays?"""
    return case.model.role in (session.role, "both")


def _case_context(case: Case, session: TargetSession, *, used: bool) -> CaseContext:
    """Policies for the peer; for resource cases a sampler of the target's memory, on a fresh target.

    The target is restarted before a resource case: memory a previous case left allocated (CPython
    rarely returns it) would otherwise hide this case's growth, and the figures would depend on
    which cases ran before.
    """
    ctx = CaseContext(policies=session.policies.model_dump())
    bounds = case.model.expect.resources
    if bounds is None:
        return ctx
    runner = session.runner
    if used and runner.restartable and session.started and not runner.launches_clients:
        session.stop()
        session.ensure_running()
    ctx.sampler = Sampler(None if runner.launches_clients else runner.memory_bytes, bounds.interval)
    return ctx


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
        used = session.started and session.runner.alive()  # it served earlier cases
        note = session.ensure_running()
    except TargetUnavailable as exc:
        reason = f"target unavailable: {exc}".splitlines()[0]
        spent = (time.monotonic() - started) * 1000  # the failed start's own time, not 0
        result = CaseResult(case, session.name, Outcome.ERROR, reason, spent, log=str(exc))
        return finish_result(result, session, trace_dir)
    missing = unmet_requirements(case, session.policies)
    if missing:
        result = CaseResult(case, session.name, Outcome.UNIMPLEMENTED, missing, 0.0)
        return finish_result(result, session, trace_dir)
    mark = session.runner.log_mark()
    timeout = case.model.timeout * timeout_scale
    ctx: CaseContext | None = None
    token = None
    try:
        ctx = _case_context(case, session, used=used)
        token = resources.CURRENT.set(ctx)
        if ctx.sampler is not None:
            ctx.sampler.start()
        addr = session.runner.address
        if session.runner.launches_clients:
            trace, verdict = asyncio.run(_client_target_case(case, session.runner, data_dir, timeout, ctx))
        else:
            obs, tr = asyncio.run(
                _with_deadline(case, Endpoint(addr.host, addr.port, addr.path), data_dir, timeout)
            )
            trace = tr.to_json()
            figures = _figures(ctx, obs, trace)
            verdict = judge(case.model.expect, obs, data_dir, figures)
    except TimeoutError:
        verdict = Verdict(
            Outcome.FAIL, f"case exceeded its hard deadline of {timeout + HARD_DEADLINE_SLACK:g} s"
        )
        session.stop()
    except TargetUnavailable as exc:  # the restart before a resource case failed
        verdict = Verdict(Outcome.ERROR, f"target unavailable: {exc}".splitlines()[0])
    except Exception as exc:  # the harness's own failure: never blame the target for it
        verdict = Verdict(Outcome.ERROR, f"harness error: {type(exc).__name__}: {exc}")
        log = traceback.format_exc()
    finally:
        if token is not None:
            resources.CURRENT.reset(token)
        if ctx is not None and ctx.sampler is not None:
            ctx.sampler.stop()
    if not session.runner.alive() and session.started and session.runner.restartable:
        status = session.runner.exit_status()
        if not verdict.outcome.failed:
            verdict = Verdict(Outcome.FAIL, f"target process exited (status {status}) during the case")
        session.started = True  # so ensure_running restarts it and says so
    verdict = apply_binding(case, session, verdict)
    if note:
        trace.setdefault("notes", []).append(note)
    log = session.runner.log_since(mark) + log
    duration = (time.monotonic() - started) * 1000
    result = CaseResult(case, session.name, verdict.outcome, verdict.reason, duration, trace, log)
    if ctx is not None and ctx.sampler is not None:
        result.figures = trace.get("figures")
        result.samples = ctx.samples()
    return finish_result(result, session, trace_dir)


def _figures(ctx: CaseContext, obs: Observed, trace: dict[str, Any]) -> dict[str, Any] | None:
    """A resource case's figures, also kept in the trace file beside the result."""
    if ctx.sampler is None:
        return None
    ctx.sampler.stop()
    figures = ctx.figures(obs)
    trace["figures"] = figures
    return figures


def apply_binding(case: Case, session: TargetSession, verdict: Verdict) -> Verdict:
    """A WHATWG API rule binds browser APIs only: elsewhere what the target did is recorded, not failed.

    Example: a client that offered subprotocols and got a response selecting none must fail the
    connection per the WHATWG WebSockets standard; RFC 6455 alone lets a library go on (§4.1 only
    forbids a subprotocol that was not offered).
    """
    if case.model.binding == "whatwg" and not session.policies.whatwg_api and verdict.outcome is Outcome.FAIL:
        why = f"WHATWG API rule, not binding on this target: {verdict.reason}"
        return Verdict(Outcome.INFORMATIONAL, why)
    return verdict


async def _client_target_case(
    case: Case, launcher: Runner, data_dir: Path, timeout: float, ctx: CaseContext
) -> tuple[dict[str, Any], Verdict]:
    """A client-role case: the peer is the server; the frames and the client's API events are judged."""
    sampler = ctx.sampler

    async def launch(url: str, protocols: list[str], scenario: dict[str, str] | None = None) -> ClientProcess:
        proc = await launcher.launch(url, protocols, scenario)
        if sampler is not None:
            sampler.memory = memory_of(proc)  # the client this case started is the target
        return proc

    obs, tr, client = await asyncio.wait_for(
        run_server_case(case, launch, data_dir=data_dir, timeout=timeout),
        timeout + HARD_DEADLINE_SLACK,
    )
    trace = tr.to_json()
    trace["api"] = client.events
    if client.exit_code is not None:
        trace.setdefault("notes", []).append(f"client exited with status {client.exit_code}")
    verdict = judge(case.model.expect, obs, data_dir, _figures(ctx, obs, trace))
    api = judge_api(case.model.expect, obs, client.events, client.exit_code, client.garbage)
    if api is not None and (api.outcome is Outcome.UNIMPLEMENTED or not verdict.outcome.failed):
        verdict = api
    return trace, verdict


async def _with_deadline(case: Case, endpoint: Endpoint, data_dir: Path, timeout: float) -> Any:
    return await asyncio.wait_for(
        run_client_case(case, endpoint, data_dir=data_dir, timeout=timeout), timeout + HARD_DEADLINE_SLACK
    )


def expected_deviation(case: Case, session: TargetSession) -> ExpectedDeviation | None:
    """The target's expected.yaml entry for this case in this role.

    ``case-id@client`` / ``case-id@server`` name one role; a bare ``case-id`` names the role the case
    has, and for a ``role: both`` case the server role (client-role deviations of symmetric cases are
    always written ``@client``, so one file serves a target that plays both roles).
    """
    qualified = session.expected.get(f"{case.id}@{session.role}")
    if qualified is not None:
        return qualified
    if case.model.role == "both" and session.role != "server":
        return None
    return session.expected.get(case.id)


def finish_result(result: CaseResult, session: TargetSession, trace_dir: Path | None) -> CaseResult:
    deviation = expected_deviation(result.case, session)
    if deviation is not None:
        result.expected = {"outcome": str(deviation.outcome), "reason": deviation.reason}
        if deviation.intermittent:
            result.expected["intermittent"] = "true"
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
