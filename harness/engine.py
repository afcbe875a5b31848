"""Play one case against one target: ``play`` (async, the core) and ``run_case`` (a session's case).

``play`` is what every front end shares: it plays a case over whatever the target is (a server's
endpoint, a client launcher, or a connection a client already opened, for ``wsconform serve``), owns
the hard deadline and the ERROR rules, and asks ``harness.verdict.decide`` for the outcome. It decides
nothing itself; it only guarantees that the harness's own failure is ERROR, never the target's FAIL,
and that a case never outlives its deadline.

``run_case`` adds what a target *session* needs around it: start or restart the target, UNIMPLEMENTED
when its declared policies cannot support the case, a fresh target and a sampler for resource cases,
crash attribution (a target that exited during a case fails *that* case, and is restarted for the
next), the expected.yaml entry and the trace file. It is ``asyncio.run(play(...))`` plus that.
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
from harness.model.schema import Expect, resolve_bound
from harness.observed import ClientReport, Observed
from harness.outcome import Outcome
from harness.peer import context as peer_context
from harness.peer.client import Endpoint, run_client_case
from harness.peer.context import CaseContext
from harness.peer.server import ClientProcess, Launch, run_server_case, serve_connection
from harness.peer.trace import Trace
from harness.sampling import Sampler, memory_of
from harness.targets.policies import unmet_requirements
from harness.targets.runners import Runner, TargetUnavailable
from harness.targets.session import TargetSession
from harness.targets.spec import ExpectedDeviation
from harness.verdict import Verdict, decide
from harness.verdict.expected import expected_key
from harness.wire.frames import DEFAULT_MAX_PAYLOAD

HARD_DEADLINE_SLACK = 15.0
EXIT_GRACE = 0.1  # after a drop: how long the runner gets to notice that the target process exited
MAX_FRAME_CAP = 1 << 30
MIB = 1024 * 1024


@dataclass
class Accepted:
    """A connection a client opened to the harness (``wsconform serve``), its request already read."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    request: bytes


Target = Endpoint | Launch | Accepted


@dataclass
class Played:
    """What ``play`` returns: the verdict and everything a result record and a trace file keep."""

    verdict: Verdict
    trace: dict[str, Any] = field(default_factory=dict)
    obs: Observed | None = None
    client: ClientReport | None = None
    figures: dict[str, Any] | None = None
    log: str = ""
    deadline_missed: bool = False


def frame_cap(policies: dict[str, Any]) -> int:
    """The largest frame the peer buffers: above every case's largest frame and the target's declared
    maximum message size, never the 2^63 a hostile length field asks for."""
    declared = policies.get("max_message_size")
    extra = declared + MIB if isinstance(declared, int) else 0
    return min(MAX_FRAME_CAP, max(DEFAULT_MAX_PAYLOAD, extra))


async def play(
    case: Case,
    target: Target,
    *,
    data_dir: Path,
    timeout: float,
    ctx: CaseContext | None = None,
    whatwg_api: bool = False,
    wire_only: bool = False,
) -> Played:
    """Play ``case`` against ``target`` and decide its verdict; never raises for the target's sake.

    The ERROR rules: an exception of the harness's own is ERROR with its traceback in the log; a
    target that cannot be reached or started (``TargetUnavailable``) is ERROR with the cause. The
    deadline: the case's own waits are bounded by ``timeout``; on top, the whole exchange has
    ``timeout + HARD_DEADLINE_SLACK``, and missing that is the target's FAIL (it hung the exchange).
    """
    ctx = ctx if ctx is not None else CaseContext()
    token = peer_context.CURRENT.set(ctx)
    try:
        async with asyncio.timeout(timeout + HARD_DEADLINE_SLACK):
            obs, trace, client = await _exchange(case, target, data_dir, timeout, ctx)
    except TimeoutError:
        limit = timeout + HARD_DEADLINE_SLACK
        missed = Verdict(Outcome.FAIL, f"case exceeded its hard deadline of {limit:g} s")
        return Played(missed, deadline_missed=True)
    except TargetUnavailable as exc:
        return Played(Verdict(Outcome.ERROR, f"target unavailable: {exc}".splitlines()[0]), log=str(exc))
    except Exception as exc:  # the harness's own failure: never blame the target for it
        return Played(
            Verdict(Outcome.ERROR, f"harness error: {type(exc).__name__}: {exc}"), log=traceback.format_exc()
        )
    finally:
        peer_context.CURRENT.reset(token)
    tr = trace.to_json()
    if obs.notes:  # what the peer did on its own that a reader of the trace must know
        tr.setdefault("notes", []).extend(obs.notes)
    figures = _figures(ctx, obs, tr, case.model.expect)
    if client is not None:
        tr["api"] = client.events
        if client.exit_code is not None:
            tr.setdefault("notes", []).append(f"client exited with status {client.exit_code}")
    verdict = decide(
        case.model, obs, data_dir, whatwg_api=whatwg_api, figures=figures, client=client, wire_only=wire_only
    )
    return Played(verdict, tr, obs, client, figures)


async def _exchange(
    case: Case, target: Target, data_dir: Path, timeout: float, ctx: CaseContext
) -> tuple[Observed, Trace, ClientReport | None]:
    if isinstance(target, Endpoint):
        obs, trace = await run_client_case(case, target, data_dir=data_dir, timeout=timeout)
        return obs, trace, None
    if isinstance(target, Accepted):
        obs, trace = await serve_connection(
            case, target.reader, target.writer, data_dir=data_dir, timeout=timeout, request=target.request
        )
        return obs, trace, None
    return await run_server_case(case, target, data_dir=data_dir, timeout=timeout)


def _figures(ctx: CaseContext, obs: Observed, trace: dict[str, Any], expect: Expect) -> dict[str, Any] | None:
    """A resource or timed case's figures, also kept in the trace file beside the result."""
    timed = expect.respond_within is not None
    if ctx.sampler is None and not timed:
        return None
    figures: dict[str, Any] = {}
    if ctx.sampler is not None:
        ctx.sampler.stop()
        figures = ctx.figures(obs)
        if expect.resources is not None:
            scaled = {
                name: resolve_bound(getattr(expect.resources, name), ctx.policies)
                for name in ("max_growth", "max_held", "max_absorbed")
                if isinstance(getattr(expect.resources, name), str)
            }
            if scaled:
                figures["bounds"] = scaled
    if timed:
        took = obs.response_s
        figures["response_s"] = None if took is None else round(took, 4)
        figures["respond_within_s"] = expect.respond_within
    trace["figures"] = figures
    return figures


# -- a case of a target session --------------------------------------------------------------------


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


_KEY_HISTORY: dict[str, set[str]] = {}  # per client target: the Sec-WebSocket-Keys it has sent


def _case_context(case: Case, session: TargetSession, *, used: bool) -> CaseContext:
    """Policies for the peer; for resource cases a sampler of the target's memory, on a fresh target.

    The target is restarted before a resource case: memory a previous case left allocated (CPython
    rarely returns it) would otherwise hide this case's growth, and the figures would depend on
    which cases ran before.
    """
    policies = session.policies.model_dump()
    ctx = CaseContext(policies=policies, frame_cap=frame_cap(policies))
    if session.runner.launches_clients:
        ctx.key_history = _KEY_HISTORY.setdefault(session.name, set())
    bounds = case.model.expect.resources
    if bounds is None:
        return ctx
    runner = session.runner
    if used and runner.restartable and session.started and not runner.launches_clients:
        session.stop()
        session.ensure_running()
    if runner.launches_clients:
        runner.renew()
    ctx.sampler = Sampler(None if runner.launches_clients else runner.memory_bytes, bounds.interval)
    return ctx


def _sampled_launch(runner: Runner, ctx: CaseContext) -> Launch:
    """The runner's launcher, pointing the sampler at the client process each case starts."""

    async def launch(url: str, protocols: list[str], scenario: dict[str, str] | None = None) -> ClientProcess:
        proc = await runner.launch(url, protocols, scenario)
        if ctx.sampler is not None:
            ctx.sampler.memory = memory_of(proc)  # the client this case started is the target
        return proc

    return launch


def _exit_status(runner: Runner, obs: Observed | None) -> int | None:
    """The target's exit status if it exited during the case, else None.

    A target that crashes as a connection closes can still look alive for a moment; after the target
    dropped the connection (or none was made) the runner gets a short, bounded moment to notice the
    exit, so that the crash is charged to the case that caused it and not to the next one, which
    would otherwise fail with "cannot connect". A case that ended cleanly costs one liveness check.
    """
    if not runner.restartable or runner.launches_clients:
        return None
    dropped = obs is None or obs.connect_failed or not obs.handshake_ok or (
        obs.tcp_closed_by == "target" and obs.close is None
    )
    return runner.exited_within(EXIT_GRACE if dropped else 0.0)


def run_case(
    case: Case,
    session: TargetSession,
    *,
    data_dir: Path,
    trace_dir: Path | None = None,
    timeout_scale: float = 1.0,
) -> CaseResult:
    started = time.monotonic()
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
    try:
        ctx = _case_context(case, session, used=used)
        if ctx.sampler is not None:
            ctx.sampler.start()
        runner = session.runner
        target: Target = (
            _sampled_launch(runner, ctx)
            if runner.launches_clients
            else Endpoint(runner.address.host, runner.address.port, runner.address.path)
        )
        whatwg = session.policies.whatwg_api
        game = play(case, target, data_dir=data_dir, timeout=timeout, ctx=ctx, whatwg_api=whatwg)
        played = asyncio.run(game)
    except TargetUnavailable as exc:  # the restart before a resource case failed
        played = Played(Verdict(Outcome.ERROR, f"target unavailable: {exc}".splitlines()[0]), log=str(exc))
    finally:
        if ctx is not None and ctx.sampler is not None:
            ctx.sampler.stop()
    verdict = played.verdict
    if played.deadline_missed:
        session.stop()  # a hung target is not reused
    crashed = session.started and _exit_status(session.runner, played.obs) is not None
    log = session.runner.log_since(mark)
    died = crashed or (session.started and not session.runner.alive() and session.runner.restartable)
    if died and verdict.outcome not in (Outcome.ERROR, Outcome.UNIMPLEMENTED):
        tail = log.strip()[-600:] or "(no output)"
        code = session.runner.exit_status()
        why = f"target exited (status {code}) during the case; its output ends: {tail}"
        verdict = Verdict(Outcome.FAIL, why)
    if case.model.expect.respond_within is not None and verdict.outcome is Outcome.FAIL and not died:
        # Nor one that answered a timed case late or not at all, or starved a probe: it may still be
        # busy with that input (a backtracking parse), which the next case would be blamed for.
        session.stop()
    trace = played.trace
    if note:
        trace.setdefault("notes", []).append(note)
    duration = (time.monotonic() - started) * 1000
    log += played.log
    result = CaseResult(case, session.name, verdict.outcome, verdict.reason, duration, trace, log)
    if played.figures is not None:
        result.figures = played.figures
    if ctx is not None and ctx.sampler is not None:
        result.samples = ctx.samples()
    return finish_result(result, session, trace_dir)


def expected_deviation(case: Case, session: TargetSession) -> ExpectedDeviation | None:
    """The target's expected.yaml entry for this case in this role (see verdict.expected)."""
    entry: ExpectedDeviation | None = expected_key(case.id, case.model.role, session.role, session.expected)
    return entry


def finish_result(
    result: CaseResult, session: TargetSession | None, trace_dir: Path | None, *, folder: str | None = None
) -> CaseResult:
    """Attach the expected.yaml entry and write the trace file (``trace_dir/<target>/<case>.json``)."""
    deviation = expected_deviation(result.case, session) if session is not None else None
    if deviation is not None:
        result.expected = {"outcome": str(deviation.outcome), "reason": deviation.reason}
        if deviation.intermittent:
            result.expected["intermittent"] = "true"
    if trace_dir is not None:
        where = trace_dir / (folder or result.target)
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"{result.case.id}.json"
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
