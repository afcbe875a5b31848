"""Every in-repo adapter speaks the extended contract of docs/adapter-protocol.md.

* **Close trigger** (§2.3), every server target: ``wsconform:close 4001 bye`` (a text message) makes
  the server close with 4001 "bye" through its API instead of echoing; the same bytes as a binary
  message, and any other text, are echoed as always.
* **Interop mode** (§2.1-2.2), every client target, per-case (``WSCONFORM_INTEROP``/``WSCONFORM_PLAN``):
  plans played against a reference echo server (tests/reference_echo_server.py) that records what the
  client offered, pinged and closed with; the adapter's events must show every echo in order, and a
  plan that needs what target.yaml declares unsupported (``interop.unsupported``) exits 127 without
  connecting.
* **Persistent mode** (§1), every client target that declares it: several cases (a conformance case
  line per case, judged by the harness's own peer and verdict, and an interop line) in one process,
  each answered by ``done``; outcomes equal to per-case mode; EOF ends the process with 0.

Targets that cannot run here are skipped with the reason (process runtimes, Docker, Chromium). Cost
in CI (2 cores, images cached): about 75 s of test time, half of it the container targets' starts
(0.5-1 s per container); ``-n auto`` spreads it over both cores.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from harness.engine import play
from harness.model.loader import Case
from harness.outcome import Outcome
from harness.peer.server import ClientProcess
from harness.targets import availability
from harness.targets.docker.containers import labels
from harness.targets.docker.images import ensure_image
from harness.targets.errors import TargetUnavailable
from harness.targets.runners.base import client_values, render_argv
from harness.targets.session import TargetSession, session_for
from harness.targets.spec import Role, RunnerKind, TargetSpec, load_targets
from tests.conftest import CASES, ROOT
from tests.persistent_driver import PersistentAdapter
from tests.reference_echo_server import ReferenceEchoServer, Seen

SPECS = load_targets(ROOT / "targets")
SERVERS = sorted(n for n, s in SPECS.items() if "server" in s.roles)
CLIENTS = sorted(n for n, s in SPECS.items() if "client" in s.roles)
BROWSERS = sorted(n for n in CLIENTS if SPECS[n].roles["client"].browser is not None)
CASE_TIMEOUT = 10.0
EVENT_TIMEOUT = 40.0

# The interop scenario a capability is named by in target.yaml's interop.unsupported (what the plan
# implies: a plan with `ping` needs an API that can send a ping, one with `permessage_deflate` an
# API that can offer it).
CAPABILITY_SCENARIOS = {"ping": "ping-from-client", "permessage-deflate": "permessage-deflate"}
# Chromium offers permessage-deflate on every connection and no API can stop it (target.yaml notes).
OFFERS_DEFLATE_UNASKED = set(BROWSERS)


def _unit_payload(size: int, unit: bytes) -> bytes:
    return (unit * (size // len(unit) + 1))[:size] if size else b""


def _message(kind: str, size: int, *, unit: str | None = None, unit_hex: str | None = None) -> dict[str, Any]:
    raw = bytes.fromhex(unit_hex) if unit_hex is not None else (unit or "").encode()
    spec: dict[str, Any] = {
        "type": kind,
        "size": size,
        "sha256": hashlib.sha256(_unit_payload(size, raw)).hexdigest(),
    }
    spec.update({"unit_hex": unit_hex} if unit_hex is not None else {"unit": unit})
    return spec


PLANS: dict[str, dict[str, Any]] = {
    # A burst of mixed messages (4-byte characters cut exactly at their boundary), a ping, the server's
    # close through the trigger.
    "burst-ping-server-close": {
        "protocols": ["chat", "superchat"],
        "messages": [
            _message("text", 20, unit="aé€😀"),
            _message("binary", 70000, unit_hex="00ff10"),
            _message("text", 0, unit="x"),
        ],
        "repeat": 3,
        "pace": "burst",
        "ping": {"payload": "wsconform-ping"},
        "close": {"by": "server", "code": 4001, "reason": "bye"},
    },
    # Echo pacing, a slow reader, the client's own close with a code and a reason.
    "echo-slow-client-close": {
        "messages": [_message("binary", 125, unit_hex="0102"), _message("text", 126, unit="ab")],
        "repeat": 4,
        "pace": "echo",
        "read_delay_ms": 20,
        "close": {"by": "client", "code": 4000, "reason": "client bye"},
    },
    # Compression asked for: the offer (or the library's default one) goes out, the echo comes back.
    "deflate": {
        "permessage_deflate": {"offer": "permessage-deflate; client_max_window_bits"},
        "messages": [_message("text", 3000, unit="compressible ")],
        "close": {"by": "server", "code": 4002, "reason": ""},
    },
}


def _needs(plan: dict[str, Any]) -> set[str]:
    return ({"ping"} if "ping" in plan else set()) | (
        {"permessage-deflate"} if "permessage_deflate" in plan else set()
    )


def _cannot(name: str) -> set[str]:
    declared = set(SPECS[name].interop.unsupported)
    return {cap for cap, scenario in CAPABILITY_SCENARIOS.items() if scenario in declared}


# -- sessions ----------------------------------------------------------------------------------------


def _runner_kind(name: str, role: Role, runner: RunnerKind | None = None) -> RunnerKind:
    """The runner the harness would pick for the role here (or ``runner``), or a skip saying why it
    cannot run."""
    spec = SPECS[name]
    kind = availability.choose(spec, role, runner)
    assert kind is not None, f"{name} declares no {runner or ''} runner for {role}"
    problem = availability.runner_problem(spec, kind, role=role)
    if problem is not None:
        pytest.skip(f"{name} {role} ({kind}) cannot run here: {problem}")
    return kind


@pytest.fixture
def session_of(tmp_path: Path) -> Iterator[Any]:
    opened: list[TargetSession] = []

    def open_one(name: str, role: Role, runner: RunnerKind | None = None) -> TargetSession:
        kind = _runner_kind(name, role, runner)
        session = session_for(SPECS[name], role, log_dir=tmp_path / "logs", runner=kind)
        opened.append(session)
        try:
            session.ensure_running()
        except TargetUnavailable as exc:
            pytest.fail(f"{name} {role} did not start: {exc}")
        return session

    yield open_one
    for session in opened:
        session.stop()


# -- 1. the server close trigger -----------------------------------------------------------------------


async def _close_with_trigger(url: str, trigger: str) -> tuple[int | None, str | None, bool]:
    """Echo checks, then the trigger: (close code, reason, clean) as the client saw them."""
    async with connect(url, compression=None, open_timeout=CASE_TIMEOUT, close_timeout=CASE_TIMEOUT) as ws:
        for message in ("hello", b"wsconform:close 4001 bye", "wsconform:close", "wsconform:close x y"):
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), CASE_TIMEOUT) == message, f"{message!r} not echoed"
        await ws.send(trigger)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), CASE_TIMEOUT)
        await asyncio.wait_for(ws.wait_closed(), CASE_TIMEOUT)
    rcvd = ws.protocol.close_rcvd
    clean = rcvd is not None and ws.protocol.close_sent is not None
    return (rcvd.code, rcvd.reason, clean) if rcvd is not None else (None, None, clean)


@pytest.mark.parametrize("name", SERVERS)
def test_server_close_trigger(name: str, session_of: Any) -> None:
    session = session_of(name, "server")
    address = session.runner.address
    url = f"ws://{address.host}:{address.port}/trigger"
    for trigger, code, reason in [
        ("wsconform:close 4001 bye", 4001, "bye"),
        ("wsconform:close 4002", 4002, ""),
        ("wsconform:close 3000 good bye, é", 3000, "good bye, é"),
    ]:
        got = asyncio.run(_close_with_trigger(url, trigger))
        assert got == (code, reason, True), f"{name}: {trigger!r} -> close {got}, expected {code} {reason!r}"


# Targets whose adapters also run in a container (their Dockerfiles copy the same adapter files): the
# preferred runner above is the local process, so the image gets its own, shorter check.
BOTH_RUNNERS = {
    role: sorted(
        n for n, s in SPECS.items() if role in s.roles and set(s.runners(role)) == {"process", "docker"}
    )
    for role in ("server", "client")
}


@pytest.mark.parametrize("name", BOTH_RUNNERS["server"])
def test_server_close_trigger_in_container(name: str, session_of: Any) -> None:
    session = session_of(name, "server", "docker")
    address = session.runner.address
    got = asyncio.run(_close_with_trigger(f"ws://{address.host}:{address.port}/", "wsconform:close 4001 bye"))
    assert got == (4001, "bye", True), f"{name} (docker): {got}"


# -- 2. interop mode, per case -----------------------------------------------------------------------


async def _events_of(proc: ClientProcess) -> tuple[list[dict[str, Any]], int]:
    assert proc.stdout is not None
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(EVENT_TIMEOUT):
            while line := await proc.stdout.readline():
                if line.strip():
                    events.append(json.loads(line))
            code = await proc.wait()
    except TimeoutError:
        proc.kill()
        raise AssertionError(f"no end of the client's events within {EVENT_TIMEOUT:g} s: {events}") from None
    return events, code


def _env(scenario: str, plan: dict[str, Any]) -> dict[str, str]:
    return {"WSCONFORM_INTEROP": scenario, "WSCONFORM_PLAN": json.dumps(plan)}


async def _play_interop(
    session: TargetSession, scenario: str, plan: dict[str, Any]
) -> tuple[list[dict[str, Any]], int, list[Seen]]:
    async with ReferenceEchoServer() as server:
        url = server.url(f"interop-{scenario}")
        proc = await session.runner.launch(url, list(plan.get("protocols", [])), _env(scenario, plan))
        events, code = await _events_of(proc)
    return events, code, server.seen


def _planned(plan: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (m["type"], m["size"], m["sha256"]) for _ in range(plan.get("repeat", 1)) for m in plan["messages"]
    ]


def check_interop(
    name: str, plan: dict[str, Any], events: list[dict[str, Any]], code: int, seen: list[Seen]
) -> None:
    """What an interop run must show: the plan's echoes in order, its close, and on the server's side
    the offers, the ping and the client's Close frame the plan asked for."""
    if _needs(plan) & _cannot(name):
        assert code == 127, f"{name} declares {_needs(plan) & _cannot(name)} unsupported but exited {code}"
        assert seen == [], f"{name} exited 127 but connected first"
        return
    assert code == 0, (code, events)
    kinds = [e["event"] for e in events]
    assert kinds and kinds[0] == "open" and kinds[-1] == "close" and "error" not in kinds, events
    got = [(e["type"], e["size"], e["sha256"]) for e in events if e["event"] == "message"]
    assert got == _planned(plan), f"{name}: echoes {got} != plan"
    assert len(seen) == 1, f"{name} made {len(seen)} connections"
    server = seen[0]
    assert server.messages == len(got) + (plan.get("close", {}).get("by") == "server"), server
    assert server.offered_protocols == plan.get("protocols", []), server
    assert events[0]["protocol"] == (server.selected_protocol or ""), events[0]
    if "permessage_deflate" in plan:
        assert any(e.startswith("permessage-deflate") for e in server.offered_extensions), server
        assert events[0]["extensions"].startswith("permessage-deflate"), events[0]
    elif name not in OFFERS_DEFLATE_UNASKED:
        assert server.offered_extensions == [], f"{name} offered {server.offered_extensions} unasked"
    if "ping" in plan:
        assert server.pings == [plan["ping"]["payload"].encode()], server
    close = plan.get("close", {"by": "client", "code": 1000, "reason": ""})
    final = events[-1]
    if close["by"] == "server":  # the close event reports the server's code and reason (§2.1)
        got_close = (final["code"], final["reason"], final["wasClean"])
        assert got_close == (close["code"], close["reason"], True), final
        assert server.trigger == (close["code"], close["reason"]), server
    else:  # the server echoed the client's code; not every API keeps the reason of that answer (aiohttp)
        assert (final["code"], final["wasClean"]) == (close["code"], True), final
        assert server.trigger is None and server.closed_by_client_first, server
        assert server.client_close == (close["code"], close["reason"]), server


@pytest.mark.parametrize("plan_id", sorted(PLANS))
@pytest.mark.parametrize("name", CLIENTS)
def test_interop_plan(name: str, plan_id: str, session_of: Any) -> None:
    session = session_of(name, "client")
    plan = PLANS[plan_id]
    events, code, seen = asyncio.run(_play_interop(session, plan_id, plan))
    check_interop(name, plan, events, code, seen)


@pytest.mark.parametrize("name", BOTH_RUNNERS["client"])
def test_interop_plan_in_container(name: str, session_of: Any) -> None:
    session = session_of(name, "client", "docker")
    plan = PLANS["burst-ping-server-close"]
    events, code, seen = asyncio.run(_play_interop(session, "burst-ping-server-close", plan))
    check_interop(name, plan, events, code, seen)


@pytest.mark.parametrize("name", CLIENTS)
def test_unsupported_declarations_match_the_adapter(name: str, session_of: Any) -> None:
    """Every capability declared unsupported exits 127 for a plan that needs only it; an unknown
    scenario name alone never makes an adapter refuse (it plays what the plan says)."""
    declared = set(SPECS[name].interop.unsupported)
    assert declared <= set(CAPABILITY_SCENARIOS.values()), f"{name}: unknown names in interop.unsupported"
    session = session_of(name, "client")
    for capability in _cannot(name):
        plan: dict[str, Any] = {"messages": [_message("text", 5, unit="hello")]}
        if capability == "ping":
            plan["ping"] = {"payload": "p"}
        else:
            plan["permessage_deflate"] = {}
        events, code, seen = asyncio.run(_play_interop(session, CAPABILITY_SCENARIOS[capability], plan))
        assert (code, events, seen) == (127, [], []), f"{name}: {capability}"
    plan = {"messages": [_message("binary", 1, unit_hex="ff")]}
    events, code, seen = asyncio.run(_play_interop(session, "a-scenario-nobody-wrote", plan))
    check_interop(name, plan, events, code, seen)


@pytest.mark.parametrize("name", CLIENTS)
def test_a_plan_the_builder_disagrees_with_is_refused(name: str, session_of: Any) -> None:
    """Each adapter checks the payload it built against the plan's sha256 (adapter-protocol §2.1): a
    digest that does not match, or a text cut inside a character, ends the case before it connects
    (exit 2: the plan, not the target, is wrong)."""
    session = session_of(name, "client")
    wrong = {**_message("text", 5, unit="hello"), "sha256": "00" * 32}
    cut = _message("text", 3, unit="é€")  # 2 + 3 bytes: 3 bytes end inside the €
    for broken in (wrong, cut):
        events, code, seen = asyncio.run(_play_interop(session, "broken-plan", {"messages": [broken]}))
        assert (code, seen) == (2, []), (name, broken, code, events)
        assert all(e["event"] == "error" for e in events), events


# -- 3. persistent mode ------------------------------------------------------------------------------

PERSISTENT = sorted(n for n in CLIENTS if SPECS[n].roles["client"].persistent)
# One case of each kind of ending: an echo then the server's close, a close code reported, a response
# the client must reject, and a scenario most adapters exit 127 for.
PERSISTENT_CASES = [
    "client-echo-binary-65536",
    "client-reports-server-close-4999",
    "client-rejects-wrong-accept",
    "api-close-999-throws",
]


def test_every_non_browser_client_is_persistent() -> None:
    """Persistent mode saves an interpreter or container start per case: every client adapter has it,
    except the browsers, which already run one browser for the whole run (a page per case)."""
    assert set(PERSISTENT) == set(CLIENTS) - set(BROWSERS)
    for name in PERSISTENT:
        role = SPECS[name].roles["client"]
        declared = [spec.persistent_argv for spec in (role.process, role.docker) if spec is not None]
        assert declared and all(argv and "{url}" not in " ".join(argv) for argv in declared), name


def persistent_adapter(spec: TargetSpec, kind: RunnerKind, log: Any) -> PersistentAdapter:
    """The adapter process as the harness would start it: target.yaml's persistent argv, in the target
    folder (process) or in the target's image on the host network (docker)."""
    role = spec.roles["client"]
    if kind == "process":
        assert role.process is not None and role.process.persistent_argv is not None
        argv = render_argv(role.process.persistent_argv, client_values("", []), what="persistent argv")
        return PersistentAdapter(argv, cwd=spec.directory, env=role.process.env, stderr=log)
    assert role.docker is not None and role.docker.persistent_argv is not None
    image = ensure_image(spec, role.docker.dockerfile, Path(log.name)).tag
    argv = render_argv(
        role.docker.persistent_argv, client_values("", [], python=False), what="persistent argv"
    )
    marks = [f"--label={k}={v}" for k, v in labels(spec.name).items()]
    env = [f"--env={k}={v}" for k, v in {**role.docker.env, "WSCONFORM_PERSISTENT": "1"}.items()]
    docker = ["docker", "run", "--rm", "-i", "--network=host", *marks, *env, image, *argv]
    return PersistentAdapter(docker, stderr=log)


async def _persistent_run(adapter: PersistentAdapter, cases: list[Case], name: str) -> list[Any]:
    whatwg = SPECS[name].policies.whatwg_api
    await adapter.start()
    try:
        played = []
        pids = set()
        for case in cases:
            played.append(
                await play(
                    case, adapter.launch, data_dir=CASES / "data", timeout=CASE_TIMEOUT, whatwg_api=whatwg
                )
            )
            pids.add(adapter.pid)
            assert adapter.running(), f"{name} exited after {case.id}"
        interop = PLANS["burst-ping-server-close"]
        async with ReferenceEchoServer() as server:
            proc = await adapter.launch(
                server.url("interop"), interop["protocols"], _env("persistent-interop", interop)
            )
            events, code = await _events_of(proc)
        check_interop(name, interop, events, code, server.seen)
        assert len(pids) == 1 and adapter.running()
        return played
    finally:
        status = await adapter.close()
        assert status == 0, f"{name}: EOF on stdin must end the adapter with 0, got {status}"


PERSISTENT_RUNS = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name in PERSISTENT
    for kind in SPECS[name].runners("client")
]


@pytest.mark.parametrize(("name", "runner"), PERSISTENT_RUNS)
def test_persistent_cases_in_one_process(
    name: str, runner: RunnerKind, repo_cases: dict[str, Case], session_of: Any, tmp_path: Path
) -> None:
    """The same cases through one persistent process and through per-case processes (the same runner):
    the same outcomes and exit statuses, a `done` per case, one process throughout."""
    kind = _runner_kind(name, "client", runner)
    cases = [repo_cases[i] for i in PERSISTENT_CASES]
    per_case = session_of(name, "client", kind)
    whatwg = SPECS[name].policies.whatwg_api

    def one(case: Case) -> Any:
        return asyncio.run(play(case, per_case.runner.launch, data_dir=CASES / "data", timeout=CASE_TIMEOUT,
                                whatwg_api=whatwg))  # fmt: skip

    expected = [one(c) for c in cases]
    with (tmp_path / "persistent.log").open("wb") as log:
        adapter = persistent_adapter(SPECS[name], kind, log)
        played = asyncio.run(_persistent_run(adapter, cases, name))
    for case, alone, together in zip(cases, expected, played, strict=True):
        assert (alone.verdict.outcome, alone.client.exit_code) == (
            together.verdict.outcome,
            together.client.exit_code,
        ), (
            f"{name} {case.id}: per case {alone.verdict.outcome} ({alone.verdict.reason}), "
            f"persistent {together.verdict.outcome} ({together.verdict.reason})"
        )
    assert [d.done and d.done["case"] for d in adapter.cases[: len(cases)]] == [c.id for c in cases]
    assert played[0].verdict.outcome is Outcome.PASS, played[0].verdict.reason


@pytest.mark.parametrize("name", [n for n in PERSISTENT if SPECS[n].roles["client"].process is not None])
def test_persistent_line_errors(name: str, tmp_path: Path) -> None:
    """A scenario the adapter does not know: `done` with 127 and no event; a line that is not a case:
    the adapter exits 2 (the harness restarts it)."""
    _runner_kind(name, "client")
    role = SPECS[name].roles["client"]
    assert role.process is not None and role.process.persistent_argv is not None
    argv = render_argv(role.process.persistent_argv, client_values("", []))
    line = {"case": "x", "url": "ws://127.0.0.1:9/x", "protocols": [], "scenario": "no-such-scenario",
            "delay_ms": 0, "interop": None}  # fmt: skip
    env = {**os.environ, **role.process.env, "WSCONFORM_PERSISTENT": "1"}
    done = subprocess.run(argv, cwd=SPECS[name].directory, input=(json.dumps(line) + "\nnot json\n").encode(),
                          capture_output=True, timeout=30, env=env)  # fmt: skip
    out = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert out == [{"event": "done", "case": "x", "exit": 127}], (out, done.stderr[-500:])
    assert done.returncode == 2, done.stderr[-500:]


# -- 4. the checks above can fail ----------------------------------------------------------------------


def test_trigger_check_fails_for_a_server_without_the_trigger(correct_server: TargetSession) -> None:
    """tests/broken_server.py is a correct RFC 6455 server without the trigger: it echoes it."""
    correct_server.ensure_running()
    address = correct_server.runner.address
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        asyncio.run(_close_with_trigger(f"ws://{address.host}:{address.port}/", "wsconform:close 4001 bye"))


def _correct_run(plan: dict[str, Any]) -> tuple[list[dict[str, Any]], Seen]:
    """The events and the server's record of a client that plays ``plan`` exactly."""
    close = plan.get("close", {"by": "client", "code": 1000, "reason": ""})
    events: list[dict[str, Any]] = [{"event": "open", "protocol": "chat", "extensions": ""}]
    events += [{"event": "message", "type": t, "size": n, "sha256": h} for t, n, h in _planned(plan)]
    events.append({"event": "close", "code": close["code"], "reason": close["reason"], "wasClean": True})
    by_server = close["by"] == "server"
    seen = Seen(offered_protocols=list(plan.get("protocols", [])), selected_protocol="chat",
                messages=len(_planned(plan)) + by_server,
                pings=[plan["ping"]["payload"].encode()] if "ping" in plan else [],
                trigger=(close["code"], close["reason"]) if by_server else None,
                client_close=None if by_server else (close["code"], close["reason"]),
                closed_by_client_first=not by_server)  # fmt: skip
    return events, seen


def _drop_echo(e: list[dict[str, Any]], s: Seen) -> None:
    del e[2]


def _reorder(e: list[dict[str, Any]], s: Seen) -> None:
    e[1], e[2] = e[2], e[1]


def _wrong_code(e: list[dict[str, Any]], s: Seen) -> None:
    e[-1]["code"] = 1000


def _unclean(e: list[dict[str, Any]], s: Seen) -> None:
    e[-1]["wasClean"] = False


def _error_event(e: list[dict[str, Any]], s: Seen) -> None:
    e.insert(-1, {"event": "error", "message": "x"})


def _no_ping(e: list[dict[str, Any]], s: Seen) -> None:
    s.pings = []


def _unasked_deflate(e: list[dict[str, Any]], s: Seen) -> None:
    s.offered_extensions = ["permessage-deflate; client_max_window_bits"]


def _no_trigger(e: list[dict[str, Any]], s: Seen) -> None:
    s.trigger = None


def _wrong_protocols(e: list[dict[str, Any]], s: Seen) -> None:
    s.offered_protocols = ["chat"]


@pytest.mark.parametrize(
    "defect",
    [
        _drop_echo,
        _reorder,
        _wrong_code,
        _unclean,
        _error_event,
        _no_ping,
        _unasked_deflate,
        _no_trigger,
        _wrong_protocols,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
def test_interop_check_catches(defect: Any) -> None:
    """``check_interop`` passes a client that plays the plan exactly, and fails each single defect."""
    plan = PLANS["burst-ping-server-close"]
    events, seen = _correct_run(plan)
    check_interop("websockets", plan, events, 0, [seen])
    defect(events, seen)
    with pytest.raises(AssertionError):
        check_interop("websockets", plan, events, 0, [seen])


def test_interop_check_catches_a_refusal_not_declared() -> None:
    """Exit 127 is accepted only for what target.yaml declares unsupported."""
    plan = PLANS["burst-ping-server-close"]
    with pytest.raises(AssertionError, match="127"):
        check_interop("websockets", plan, [], 127, [])
    check_interop("nhooyr", plan, [], 127, [])  # declares ping-from-client


FAKE_PERSISTENT = """\
import json, sys
for n, line in enumerate(sys.stdin):
    case = json.loads(line)["case"]
    if n == 1 and {defect!r} == "exit-after-one":
        sys.exit(0)
    print(json.dumps({{"event": "done", "case": case, "exit": 0}}), flush=True)
"""


@pytest.mark.parametrize("defect", ["exit-after-one", "no-events"])
def test_persistent_check_catches(defect: str, repo_cases: dict[str, Case], tmp_path: Path) -> None:
    """A persistent adapter that ends early, or answers ``done`` without having played the case, fails."""
    script = tmp_path / "fake.py"
    script.write_text(FAKE_PERSISTENT.format(defect=defect))
    adapter = PersistentAdapter([sys.executable, str(script)])
    cases = [repo_cases[i] for i in PERSISTENT_CASES]
    with pytest.raises(AssertionError):
        played = asyncio.run(_persistent_run(adapter, cases, "websockets"))
        assert played[0].verdict.outcome is Outcome.PASS, played[0].verdict.reason
