"""Runners: argv placeholders, readiness, giving up, process groups, the pid file, capped logs.

Helper targets are small Python scripts written to tmp_path; each behaves as a server on the port it
is given (127.0.0.1 only) and is told by its arguments what to do wrong. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from harness.engine import run_case
from harness.model.loader import Case
from harness.outcome import Outcome
from harness.targets.errors import TargetUnavailable
from harness.targets.runners import pgroup
from harness.targets.runners.base import Address, Runner, render_argv
from harness.targets.runners.output import LOG_CAP
from harness.targets.runners.process import ProcessClientLauncher, ProcessRunner
from harness.targets.session import GIVE_UP_AFTER, TargetSession
from harness.targets.spec import Policies, RoleSpec, TargetSpec
from tests.conftest import CASES, ROOT

# A child that ignores SIGTERM, then writes its pid to the file it is given (so no race with SIGTERM).
IGNORING_CHILD = (
    "import os, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "f = open(sys.argv[1] + '.tmp', 'w'); f.write(str(os.getpid())); f.close(); "
    "os.replace(sys.argv[1] + '.tmp', sys.argv[1]); time.sleep(600)"
)

SERVER = f"""\
IGNORING_CHILD = {IGNORING_CHILD!r}
import os, signal, socket, subprocess, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
here = os.path.dirname(os.path.abspath(__file__))
starts = os.path.join(here, "starts.txt")
with open(starts, "a") as f:
    f.write("x")
nth = os.path.getsize(starts)
if "late" in mode:
    time.sleep(3)
if "child-ignores-term" in mode:  # the child says its pid once SIGTERM is ignored
    subprocess.Popen([sys.executable, "-c", IGNORING_CHILD, os.path.join(here, "child.pid")])
if "ignore-term" in mode.replace("child-ignores-term", ""):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen()
if "ready-once" not in mode or nth == 1:
    print("ready", flush=True)
if "banner" in mode:
    for i in range(40):
        print(f"banner line {{i}}: listening on 127.0.0.1:{{port}}, some words to fill the log", flush=True)
if "flood" in mode:
    block = b"x" * (1 << 20)
    for _ in range(256):
        sys.stdout.buffer.write(block)
    sys.stdout.buffer.write(b"\\nEND-OF-FLOOD\\n")
    sys.stdout.flush()
    open(os.path.join(here, "flooded"), "w").close()
while True:
    c, _ = s.accept()
    if "exit-on-connect" in mode:
        time.sleep(0.3)
        os._exit(5)
    c.close()
"""


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """Running and not a zombie (pid 1 here may never reap orphans)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@pytest.fixture
def server_script(tmp_path: Path) -> Path:
    path = tmp_path / "srv" / "server.py"
    path.parent.mkdir()
    path.write_text(SERVER)
    return path


def runner(script: Path, mode: str, tmp_path: Path, **kw: object) -> ProcessRunner:
    argv = [sys.executable, str(script), "{port}", mode]
    return ProcessRunner(argv, lambda port: {"port": str(port)}, cwd=None,
                         log_path=tmp_path / "logs" / "t.server.log", **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
def stopper() -> Iterator[list[Runner]]:
    started: list[Runner] = []
    yield started
    for r in started:
        r.stop()


# -- placeholders -------------------------------------------------------------------------------------


def test_render_argv_escapes_braces_and_names_unknown_placeholders() -> None:
    values = {"port": "80", "url": "ws://127.0.0.1:80/"}
    assert render_argv(["--port={port}", "{{json}}", "{{{port}}}"], values) == ["--port=80", "{json}", "{80}"]
    with pytest.raises(TargetUnavailable) as info:
        render_argv(["--max", "{max_size}"], values, what="--target-cmd")
    message = str(info.value)
    assert "unknown placeholder {max_size} in --target-cmd" in message
    assert "known placeholders: {port} {url}" in message
    with pytest.raises(TargetUnavailable, match="unmatched"):
        render_argv(["{port"], values)
    with pytest.raises(TargetUnavailable, match="unknown placeholder"):
        render_argv(["{port:>5}"], values)  # no format specs: the same argv means the same everywhere


def test_an_unknown_placeholder_fails_when_the_runner_is_made(tmp_path: Path) -> None:
    with pytest.raises(TargetUnavailable, match=r"unknown placeholder \{prot\}"):
        ProcessClientLauncher(["client", "{url}", "{prot}"], cwd=None, log_path=tmp_path / "c.log")


# -- readiness ----------------------------------------------------------------------------------------


def test_ready_line_followed_by_a_banner_on_a_fresh_log(
    server_script: Path, tmp_path: Path, stopper: list[Runner]
) -> None:
    """The ready line is searched in this start's output, by line: a banner after it does not hide it."""
    r = runner(server_script, "banner", tmp_path, ready="stdout-line", startup_timeout=5)
    stopper.append(r)
    started = time.monotonic()
    r.start()
    assert time.monotonic() - started < 3
    assert r.alive()


def test_an_earlier_starts_ready_line_does_not_count(
    server_script: Path, tmp_path: Path, stopper: list[Runner]
) -> None:
    """The second start of this server listens but prints no ready line: it must not be taken as ready
    because of the first start's line in the same log."""
    r = runner(server_script, "ready-once", tmp_path, ready="stdout-line", startup_timeout=1.5)
    stopper.append(r)
    r.start()
    r.stop()
    with pytest.raises(TargetUnavailable, match="no line with 'ready'"):
        r.start()


def test_a_server_ready_late_within_the_startup_timeout_works(
    server_script: Path, tmp_path: Path, stopper: list[Runner]
) -> None:
    r = runner(server_script, "late", tmp_path, ready="stdout-line", startup_timeout=10)
    stopper.append(r)
    started = time.monotonic()
    r.start()
    assert 2.8 < time.monotonic() - started < 8


def test_a_command_that_exits_at_once_fails_fast_with_its_output_and_log(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('boom: cannot bind'); sys.exit(3)", "{port}"]
    r = ProcessRunner(argv, lambda port: {"port": str(port)}, cwd=None, log_path=tmp_path / "x.log")
    started = time.monotonic()
    with pytest.raises(TargetUnavailable) as info:
        r.start()
    assert time.monotonic() - started < 3, "an exited target must not cost the startup timeout"
    first = str(info.value).splitlines()[0]
    assert "exited with status 3" in first and "'boom: cannot bind'" in first
    assert f"(log: {tmp_path / 'x.log'})" in first


def test_a_silent_never_ready_target_says_no_output(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "{port}"]
    r = ProcessRunner(argv, lambda port: {"port": str(port)}, cwd=None, log_path=tmp_path / "x.log",
                      startup_timeout=1)  # fmt: skip
    with pytest.raises(TargetUnavailable) as info:
        r.start()
    first = str(info.value).splitlines()[0]
    assert "not ready" in first and "after 1 s" in first and "(no output)" in first
    assert "before it was ready:" not in str(info.value)
    assert not r.alive()


# -- giving up ----------------------------------------------------------------------------------------

NEVER_READY = "import sys, time; print('starting on', sys.argv[1], flush=True); time.sleep(60)"


def _cli(args: list[str], timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    return proc, time.monotonic() - started


def test_a_target_that_never_becomes_ready_is_given_up_after_three_starts(tmp_path: Path) -> None:
    script = tmp_path / "never.py"
    script.write_text(NEVER_READY)
    out = tmp_path / "r" / "results.json"
    proc, took = _cli([
        "run", "--target-cmd", f"{sys.executable} {script} {{port}}", "--startup-timeout", "1",
        "--family", "framing", "-j", "1", "--results", str(out), "-q", "--no-report",
    ])  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    assert len(results) > 60 and {r["outcome"] for r in results} == {"ERROR"}
    log = out.parent / "logs" / "adhoc-server.server.log"
    assert log.read_text().count("--- start #") == GIVE_UP_AFTER
    assert took < GIVE_UP_AFTER * 1 + 20, f"{took:.1f} s for {len(results)} cases"
    ordered = sorted(results, key=lambda r: r["duration_ms"], reverse=True)
    assert all(r["duration_ms"] >= 900 for r in ordered[:GIVE_UP_AFTER]), "failed starts take time"
    assert all(r["duration_ms"] < 500 for r in ordered[GIVE_UP_AFTER:]), "given up: no more attempts"
    gave_up = [r for r in results if r["reason"].startswith("target unavailable: gave up")]
    assert len(gave_up) == len(results) - GIVE_UP_AFTER
    reason = gave_up[0]["reason"]
    assert "3 consecutive failed starts" in reason and "not ready" in reason
    assert "last output: 'starting on" in reason and f"(log: {log})" in reason


def test_a_command_that_exits_at_once_ends_the_run_quickly(tmp_path: Path) -> None:
    out = tmp_path / "r" / "results.json"
    proc, took = _cli([
        "run", "--target-cmd", f"{sys.executable} -c 'import sys; sys.exit(4)' {{port}}",
        "--family", "framing", "--results", str(out), "-q", "--no-report",
    ])  # fmt: skip
    results = json.loads(out.read_text())["results"]
    assert {r["outcome"] for r in results} == {"ERROR"}, proc.stdout[-2000:]
    assert "exited with status 4" in results[-1]["reason"] and "(no output)" in results[-1]["reason"]
    assert took < 20


def test_a_start_that_succeeds_resets_the_count(server_script: Path, tmp_path: Path) -> None:
    flaky = TargetSession("t", runner(server_script, "", tmp_path))
    flaky.history.failures = GIVE_UP_AFTER - 1
    try:
        flaky.ensure_running()
    finally:
        flaky.stop()
    assert flaky.history.failures == 0 and flaky.history.gave_up is None


# -- process groups -----------------------------------------------------------------------------------


def test_stop_kills_the_group_including_a_child_that_ignores_sigterm(
    server_script: Path, tmp_path: Path
) -> None:
    r = runner(server_script, "child-ignores-term", tmp_path, stop_grace=0.5)
    r.start()
    child_file = server_script.parent / "child.pid"
    wait_for(child_file.exists, 5, "the child's pid")
    leader, child = r.proc.pid, int(child_file.read_text())  # type: ignore[union-attr]
    assert alive(child)
    started = time.monotonic()
    r.stop()
    took = time.monotonic() - started
    assert not alive(leader) and not alive(child), "the child that ignores SIGTERM survived"
    assert 0.4 < took < 3, took  # the grace period, then SIGKILL to the group
    assert "still running 0.5 s after SIGTERM: SIGKILL" in (tmp_path / "logs" / "t.server.log").read_text()


def test_stop_kills_a_leader_that_ignores_sigterm(server_script: Path, tmp_path: Path) -> None:
    r = runner(server_script, "ignore-term", tmp_path, stop_grace=0.5)
    r.start()
    leader = r.proc.pid  # type: ignore[union-attr]
    r.stop()
    assert not alive(leader)


def test_a_healthy_stop_takes_no_grace_period(server_script: Path, tmp_path: Path) -> None:
    r = runner(server_script, "", tmp_path)
    r.start()
    started = time.monotonic()
    r.stop()
    assert time.monotonic() - started < 1.5


CLIENT = f"""\
import os, runpy, subprocess, sys, time
out = sys.argv[1] + "." + str(os.getpid())
subprocess.Popen([sys.executable, "-c", {IGNORING_CHILD!r}, out])  # inherits stdout, ignores SIGTERM
while not os.path.exists(out):
    time.sleep(0.01)
if sys.argv[2] == "unsupported":
    sys.exit(127)  # the case ends at once, the child stays behind
sys.argv = sys.argv[2:]  # then the real websockets client adapter
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("adapter", ["unsupported", str(ROOT / "targets" / "websockets" / "client.py")])
def test_a_clients_children_are_killed_after_its_case(
    repo_cases: dict[str, Case], tmp_path: Path, adapter: str
) -> None:
    """A client that leaves a child behind (holding its stdout open, ignoring SIGTERM): the case is
    still judged on what the client did, and the child is killed with the client's group."""
    script, pids = tmp_path / "client.py", tmp_path / "children.txt"  # one children.txt.PID per client
    script.write_text(CLIENT)
    argv = [sys.executable, str(script), str(pids), adapter, "--url", "{url}", "--protocols", "{protocols}"]
    launcher = ProcessClientLauncher(argv, cwd=None, log_path=tmp_path / "c.log", stop_grace=0.5)
    spec = TargetSpec(name="c", implementation="c", roles={"client": RoleSpec()}, policies=Policies())
    session = TargetSession("c@client", launcher, spec, role="client")
    ids = ("client-echo-text-125", "client-answers-ping", "client-rejects-masked-frame")
    try:
        results = [run_case(repo_cases[i], session, data_dir=CASES / "data") for i in ids]
    finally:
        session.stop()
    want = Outcome.UNIMPLEMENTED if adapter == "unsupported" else Outcome.PASS
    assert [r.outcome for r in results] == [want] * 3, [r.reason for r in results]
    assert all(r.duration_ms < 5000 for r in results), [r.duration_ms for r in results]
    children = [int(p.read_text()) for p in tmp_path.glob("children.txt.*")]
    assert len(children) == 3
    wait_for(lambda: not any(alive(p) for p in children), 5, "the clients' children to be killed")


# -- crash attribution --------------------------------------------------------------------------------


def test_exited_within_waits_for_a_dying_target_and_not_for_a_healthy_one(
    server_script: Path, tmp_path: Path, stopper: list[Runner]
) -> None:
    r = runner(server_script, "exit-on-connect", tmp_path)
    stopper.append(r)
    r.start()
    started = time.monotonic()
    assert r.exited_within(0.2) is None  # healthy: waits at most the bound
    assert 0.15 < time.monotonic() - started < 1
    with __import__("socket").create_connection(("127.0.0.1", r.address.port), timeout=2):
        pass  # the target exits 0.3 s after this connection
    assert r.exited_within(5) == 5
    assert r.exited_within(5) == 5 and not r.alive()  # at once when already gone
    r.stop()
    assert r.exited_within(1) is None  # stopped: nothing to wait for
    assert Runner().exited_within(1) is None  # runners that cannot tell say so at once


# -- the pid file -------------------------------------------------------------------------------------


def test_a_sigkilled_harness_leaves_nothing_after_the_next_run(server_script: Path, tmp_path: Path) -> None:
    """PDEATHSIG kills the target with the harness; the next run's sweep kills the orphaned child."""
    out = tmp_path / "r" / "results.json"
    cmd = f"{sys.executable} {server_script} {{port}} child-ignores-term"
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--target-cmd", cmd, "--family", "framing", "-j", "1",
         "--results", str(out), "-q", "--no-report"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        child_file = server_script.parent / "child.pid"
        wait_for(child_file.exists, 30, "the target's child")
        records = [json.loads(line) for line in (out.parent / pgroup.PID_FILE).read_text().splitlines()]
        assert records and records[0]["harness"] == harness.pid
        leader, child = records[0]["pid"], int(child_file.read_text())
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=10)
        wait_for(lambda: not alive(leader), 5, "PDEATHSIG to kill the target")
        assert alive(child), "the orphan should live until the next run sweeps it"
    finally:
        if harness.poll() is None:
            harness.kill()
    again = f"{sys.executable} {server_script} {{port}} plain"  # not a WebSocket server: any outcome will do
    proc, _ = _cli(
        ["run", "--target-cmd", again, "-k", "text-len-0", "--results", str(out), "-q", "--no-report"]
    )
    assert len(json.loads(out.read_text())["results"]) == 1, proc.stdout[-2000:]
    wait_for(lambda: not alive(child), 5, "the sweep to kill the orphan")
    left = [json.loads(line)["harness"] for line in (out.parent / pgroup.PID_FILE).read_text().splitlines()]
    assert harness.pid not in left, "the dead run's lines stay in the pid file"


def test_the_sweep_spares_live_harnesses_and_reused_pids(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        start = psutil.Process(sleeper.pid).create_time()
        dead = subprocess.Popen(["true"])
        dead.wait()
        path = tmp_path / pgroup.PID_FILE
        lines = [
            {"harness": os.getpid(), "harness_start": psutil.Process().create_time(), "pid": sleeper.pid,
             "pgid": sleeper.pid, "start": start},  # a live harness (this one): kept
            {"harness": dead.pid, "harness_start": 1.0, "pid": sleeper.pid, "pgid": sleeper.pid,
             "start": start - 100},  # the pid was reused since: spared
        ]  # fmt: skip
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
        assert pgroup.sweep(path) == []
        assert alive(sleeper.pid)
        assert len(path.read_text().splitlines()) == 1
        lines[1]["start"] = start  # now it is the dead harness's own target
        path.write_text(json.dumps(lines[1]) + "\n")
        assert pgroup.sweep(path) == [sleeper.pid]
        sleeper.wait(timeout=5)
    finally:
        sleeper.kill()
        sleeper.wait(timeout=5)


# -- logs ---------------------------------------------------------------------------------------------


def test_a_target_flooding_its_output_leaves_a_capped_log(
    server_script: Path, tmp_path: Path, stopper: list[Runner]
) -> None:
    r = runner(server_script, "flood", tmp_path, ready="stdout-line", startup_timeout=10)
    stopper.append(r)
    r.start()
    wait_for((server_script.parent / "flooded").exists, 60, "256 MiB of output")
    wait_for(lambda: "END-OF-FLOOD" in r.output_tail(), 10, "the pump to drain the pipe")
    log = tmp_path / "logs" / "t.server.log"
    size = log.stat().st_size
    assert LOG_CAP <= size < LOG_CAP + 4096, size
    with log.open("rb") as fh:
        fh.seek(-200, os.SEEK_END)
        assert f"[log capped at {LOG_CAP} bytes]".encode() in fh.read()
    assert r.alive(), "a target must not block on a full pipe"
    mark = r.log_mark()
    assert "this output was not kept" in r.log_since(mark)


def test_runner_interface_defaults() -> None:
    """The base runner starts nothing and is always alive: what `wsconform serve` uses."""
    base = Runner()
    base.start()
    assert base.alive() and base.exit_status() is None and base.replica(2) is None
    assert base.log_since(base.log_mark()) == "" and base.address == Address("127.0.0.1", 0)


KILL_SPAWNED = """
import sys, time
from harness.targets.runners import pgroup
IGNORE = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
SPAWN = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {IGNORE!r}]); exec({IGNORE!r})"
proc = pgroup.spawn([sys.executable, "-c", SPAWN], registry_dir=None)
deadline = time.monotonic() + 10
while len(pgroup.group_members(proc.pid)) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
started = len(pgroup.group_members(proc.pid))
killed = pgroup.kill_spawned()
proc.wait(5)
time.sleep(0.2)
print(started, len(killed), proc.pid in killed, len(pgroup.group_members(proc.pid)))
"""


def test_kill_spawned_takes_every_group_this_process_started() -> None:
    """What a worker process does last on SIGTERM: a target it was still starting (its runner never
    learned of it) dies with its SIGTERM-ignoring child. In a subprocess: it kills every group the
    calling process started, which in a pytest worker would include other tests' targets."""
    out = subprocess.run(
        [sys.executable, "-c", KILL_SPAWNED], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["2", "2", "True", "0"], out.stdout + out.stderr
