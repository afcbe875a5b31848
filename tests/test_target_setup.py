"""A target's ``setup:`` (``npm ci`` for node-ws) runs once, before the first start, and fails clearly.

The fake target here stands in for a Node target: its set-up is a Python script that appends a line
to ``runs.txt`` (so the tests can count runs), sleeps a little (so concurrent callers overlap) and
creates the marker; its server refuses to start without the marker, which proves the order.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.cli import main as cli_main
from harness.engine import run_case
from harness.model.loader import Case
from harness.outcome import Outcome
from harness.targets.availability import missing
from harness.targets.errors import TargetUnavailable
from harness.targets.session import TargetSession, open_session
from harness.targets.setup import is_set_up, run_setup
from harness.targets.spec import load_target

ROOT = Path(__file__).resolve().parents[1]

SETUP_STEP = """\
import os, pathlib, sys, time
here = pathlib.Path(".")
with open("runs.txt", "a") as f:
    f.write(f"{os.getpid()}\\n")
print("installing 1 package")
time.sleep(float(os.environ.get("FAKE_SETUP_SLEEP", "0.3")))
if (here / "fail").exists():
    print("npm ERR! boom: cannot fetch left-pad", file=sys.stderr)
    sys.exit(3)
(here / "built").mkdir(exist_ok=True)
(here / "built" / "marker").write_text("ok")
"""

SERVER = """\
import pathlib, socket, sys, time
if not pathlib.Path("built/marker").exists():
    sys.exit("not set up")
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
while True:
    c, _ = s.accept()
    c.close()
"""


def fake_target(
    tmp_path: Path, *, setup_argv: str = '["{python}", "setup_step.py"]', timeout: float = 30
) -> Path:
    root = tmp_path / "targets"
    folder = root / "fake"
    folder.mkdir(parents=True)
    (folder / "setup_step.py").write_text(SETUP_STEP)
    (folder / "server.py").write_text(SERVER)
    (folder / "target.yaml").write_text(
        textwrap.dedent(
            f"""\
            name: fake
            implementation: fake
            setup:
              argv: {setup_argv}
              creates: built/marker
              timeout: {timeout}
            roles:
              server:
                process:
                  argv: ["{{python}}", "server.py", "{{port}}"]
              client:
                process:
                  argv: ["{{python}}", "-c", "pass", "{{url}}"]
            """
        )
    )
    return folder


def runs(folder: Path) -> list[str]:
    path = folder / "runs.txt"
    return path.read_text().split() if path.exists() else []


def session(tmp_path: Path, role: str = "server") -> TargetSession:
    return open_session("fake", targets_root=tmp_path / "targets", log_dir=tmp_path / "logs", role=role)


def test_setup_runs_before_the_first_start_and_only_once(tmp_path: Path) -> None:
    folder = fake_target(tmp_path)
    first = session(tmp_path)
    try:
        first.ensure_running()  # the server exits at once without the marker: setup must come first
        assert first.runner.alive()
    finally:
        first.stop()
    assert (folder / "built" / "marker").read_text() == "ok"
    assert len(runs(folder)) == 1
    assert "installing 1 package" in (tmp_path / "logs" / "fake.server.log").read_text()

    second = session(tmp_path)
    try:
        second.ensure_running()
    finally:
        second.stop()
    session(tmp_path, role="client").ensure_running()
    assert len(runs(folder)) == 1
    assert run_setup(load_target(folder), tmp_path / "x.log") is None


def test_failed_setup_is_target_unavailable_naming_command_and_output(
    tmp_path: Path, repo_cases: dict[str, Case]
) -> None:
    folder = fake_target(tmp_path)
    (folder / "fail").write_text("")
    s = session(tmp_path)
    with pytest.raises(TargetUnavailable) as info:
        s.ensure_running()
    message = str(info.value)
    first_line = message.splitlines()[0]
    assert "setup_step.py" in first_line and "exit status 3" in first_line
    assert "npm ERR! boom: cannot fetch left-pad" in message
    assert not is_set_up(load_target(folder))

    # Every case of the run is ERROR with that cause, and the command is not run again per case.
    case = next(c for c in repo_cases.values() if c.model.role == "server")
    result = run_case(case, s, data_dir=ROOT / "cases" / "data")
    assert result.outcome is Outcome.ERROR
    assert "setup_step.py" in result.reason and "exit status 3" in result.reason
    assert len(runs(folder)) == 1


def test_setup_that_hangs_is_stopped_at_its_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = fake_target(tmp_path, timeout=1)
    monkeypatch.setenv("FAKE_SETUP_SLEEP", "30")
    started = time.monotonic()
    with pytest.raises(TargetUnavailable, match=r"timed out after 1 s"):
        run_setup(load_target(folder), tmp_path / "setup.log")
    assert time.monotonic() - started < 10
    assert len(runs(folder)) == 1


def test_concurrent_processes_and_threads_run_setup_once(tmp_path: Path) -> None:
    folder = fake_target(tmp_path)
    # Separate processes, as pytest-xdist workers are...
    script = (
        "import sys; from pathlib import Path; from harness.targets.setup import run_setup; "
        "from harness.targets.spec import load_target; "
        "run_setup(load_target(Path(sys.argv[1])), Path(sys.argv[2]))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(folder), str(tmp_path / f"p{i}.log")], cwd=ROOT)
        for i in range(3)
    ]
    # ...and threads of this process, as `--jobs` replicas are.
    errors: list[BaseException] = []

    def start() -> None:
        s = session(tmp_path)
        try:
            s.ensure_running()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            s.stop()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    assert not errors
    assert len(runs(folder)) == 1


def test_missing_setup_command_makes_the_target_unavailable(tmp_path: Path) -> None:
    folder = fake_target(tmp_path, setup_argv='["wsconform-no-such-tool", "ci"]')
    spec = load_target(folder)
    assert missing(spec) == ["set-up command wsconform-no-such-tool"]
    with pytest.raises(TargetUnavailable, match="wsconform-no-such-tool"):
        run_setup(spec, tmp_path / "setup.log")


def test_cli_targets_setup_runs_ahead_of_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = fake_target(tmp_path)
    argv = ["--targets-dir", str(tmp_path / "targets"), "targets", "setup", "--log-dir", str(tmp_path / "l")]
    assert cli_main([*argv, "fake"]) == 0
    assert "done in" in capsys.readouterr().out
    assert cli_main(argv) == 0  # every target with a set-up: this one, already done
    assert "already set up" in capsys.readouterr().out
    assert len(runs(folder)) == 1
    (folder / "built" / "marker").unlink()
    (folder / "fail").write_text("")
    assert cli_main([*argv, "fake"]) == 1
    assert "boom" in capsys.readouterr().out
    assert cli_main([*argv, "nope"]) == 2
