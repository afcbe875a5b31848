"""One (client, server, scenario) run: the server target running, the relay in front of it, the client
target launched in interop mode against the relay, its events read, the pair judged.

Both targets are ordinary sessions (``harness.targets``): the server session runs once for every
pair it is in (servers accept many connections), the client launcher starts one client per pair with
``WSCONFORM_INTEROP`` / ``WSCONFORM_PLAN`` in its environment (docs/adapter-protocol.md §2.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from harness.interop.relay import Relay
from harness.model.interop import Scenario
from harness.observed_pair import PairSeen
from harness.outcome import Outcome
from harness.peer.server import ClientProcess
from harness.targets.errors import TargetUnavailable
from harness.targets.session import TargetSession
from harness.verdict.interop import PairVerdict, judge_pair, unsupported

MAX_EVENTS = 5000  # the largest scenario reports 1000 messages
MAX_LINE = 64 * 1024
LOG_EXCERPT = 20000
GRACE = 5.0  # after the client exits: how long the relay may still wait for the connection's end


@dataclass(slots=True)
class PairRun:
    """What one pair run produced: the verdict and everything a pair page shows."""

    client: str
    server: str
    scenario: Scenario
    verdict: PairVerdict
    duration: float = 0.0
    pair: PairSeen = field(default_factory=PairSeen)
    events: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    client_log: str = ""
    server_log: str = ""


def interop_env(scenario: Scenario) -> dict[str, str]:
    return {"WSCONFORM_INTEROP": scenario.id, "WSCONFORM_PLAN": json.dumps(scenario.plan())}


async def _read_events(
    proc: ClientProcess, timeout: float
) -> tuple[list[dict[str, Any]], list[str], int | None, bool]:
    """(events, garbage lines, exit status, ended in time): the client's JSON lines until it exits."""
    events: list[dict[str, Any]] = []
    garbage: list[str] = []
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    line = await proc.stdout.readline()
                except ValueError:  # a line beyond the stream's limit
                    garbage.append("(an over-long line)")
                    continue
                if not line:
                    break
                text = line.decode("utf-8", "replace").strip()
                if not text:
                    continue
                try:
                    event = json.loads(text[:MAX_LINE])
                except ValueError:
                    garbage.append(text[:200])
                    continue
                if isinstance(event, dict) and len(events) < MAX_EVENTS:
                    events.append(event)
            code = await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError, OSError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5.0)
        return events, garbage, None, False
    return events, garbage, code, True


async def run_pair(scenario: Scenario, client: TargetSession, server: TargetSession) -> PairRun:
    """Play ``scenario`` with ``client`` against ``server`` through a relay; never raises for the
    targets' behaviour (ERROR when a target cannot start)."""
    run = PairRun(
        client.name.removesuffix("@client"), server.name, scenario, PairVerdict(Outcome.ERROR, "not run")
    )
    cspec, sspec = client.spec, server.spec
    pre = unsupported(
        scenario,
        client_unsupported=list(cspec.interop.unsupported) if cspec else [],
        server_unsupported=list(sspec.interop.unsupported) if sspec else [],
        server_deflate=server.policies.permessage_deflate,
    )
    if pre is not None:
        run.verdict = pre
        return run
    started = time.monotonic()
    try:
        await asyncio.to_thread(server.ensure_running)
        await asyncio.to_thread(client.ensure_running)
    except TargetUnavailable as exc:
        run.verdict = PairVerdict(Outcome.ERROR, f"target unavailable: {exc}")
        return run
    address = server.runner.address
    server_mark, client_mark = server.runner.log_mark(), client.runner.log_mark()
    finished = False
    try:
        async with Relay(address.host, address.port) as relay:
            run.pair = relay.pair
            url = relay.url(f"interop/{scenario.id}")
            proc = await client.runner.launch(url, list(scenario.protocols), interop_env(scenario))
            run.events, garbage, run.exit_code, in_time = await _read_events(proc, scenario.timeout)
            connected = relay.pair.connections > 0
            finished = in_time and (await relay.wait_done(GRACE) if connected else True)
    except TargetUnavailable as exc:
        run.verdict = PairVerdict(Outcome.ERROR, f"target unavailable: {exc}")
        return run
    run.duration = time.monotonic() - started
    run.server_log = server.runner.log_since(server_mark)[-LOG_EXCERPT:]
    run.client_log = client.runner.log_since(client_mark)[-LOG_EXCERPT:]
    run.verdict = judge_pair(
        scenario,
        run.pair,
        run.events,
        run.exit_code,
        server_subprotocols=list(server.policies.subprotocols),
        finished=finished,
        garbage=garbage,
    )
    return run
