"""The wheel a library maintainer installs: built from this repository, installed into a fresh venv,
run from an empty directory.

It proves what an editable install cannot: that the cases, the targets and the docs the CLI reads at
run time are in the wheel (harness/bundled/), that nothing reads ./cases or ./targets, and that an
empty selection is exit 2. The wheel is built from a clean copy of the tracked (and new, unignored)
files, so a stale build/ folder cannot leak files into it. The venv uses --system-site-packages for
the dependencies (nothing is downloaded but the build backend, from the configured index) and gets
the wheel with --ignore-installed; the test checks that its ``harness`` is the wheel's, not an
editable install's. Marked ``slow`` (about 30 s on a 2-core machine); it runs in CI all the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "targets" / "websockets" / "server.py"

pytestmark = pytest.mark.slow


def run(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def source_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True, timeout=30,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    src = source_copy(base / "src")
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(base / "dist"), str(src)],
                cwd=base, env=env, timeout=180)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("wsconform-*.whl")
    made = run([sys.executable, "-m", "venv", "--system-site-packages", str(base / "venv")],
               cwd=base, env=env, timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    python = base / "venv" / "bin" / "python"
    inst = run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed", str(wheel)],
               cwd=base, env=env, timeout=180)  # fmt: skip
    assert inst.returncode == 0, inst.stderr
    return base / "venv"


def test_wheel_runs_the_bundled_suite_from_an_empty_directory(venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    where = run([str(venv / "bin" / "python"), "-c", "import harness, harness.bundled as b; "
                 "print(harness.__file__); print(b.cases_dir()); print(b.targets_dir())"],
                cwd=tmp_path, env=env, timeout=30)  # fmt: skip
    assert where.returncode == 0, where.stderr
    for line in where.stdout.split():
        assert line.startswith(str(venv)), f"not the wheel's: {line}"
    wsconform = str(venv / "bin" / "wsconform")
    empty = tmp_path / "empty"
    empty.mkdir()
    started = time.monotonic()
    server = f"{venv / 'bin' / 'python'} {SERVER} --port {{port}}"
    res = run([wsconform, "run", "--target-cmd", server, "--family", "framing", "-j", "2",
               "--junitxml", "junit.xml"], cwd=empty, env=env, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads((empty / "reports" / "latest" / "results.json").read_text())
    assert len(doc["results"]) == 72 and doc["complete"] is True
    assert (empty / "reports" / "latest" / "index.html").is_file() and (empty / "junit.xml").is_file()
    assert time.monotonic() - started < 60
    # a named built-in target runs from the wheel's own folder
    res = run([wsconform, "run", "--target", "websockets", "-k", "text-len-125", "--no-report"],
              cwd=empty, env=env, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    named = json.loads((empty / "reports" / "latest" / "results.json").read_text())
    assert {r["target"] for r in named["results"]} == {"websockets", "websockets@client"}
    # nothing silent: no match is exit 2, and so is a missing folder
    res = run(
        [wsconform, "run", "--target-cmd", "x {port}", "-k", "no-such-case"], cwd=empty, env=env, timeout=60
    )
    assert res.returncode == 2 and "no case matches -k no-such-case" in res.stdout
    res = run([wsconform, "cases", "list"], cwd=empty, env=env, timeout=60)
    assert res.returncode == 0 and len(res.stdout.splitlines()) > 1000
    res = run([wsconform, "init", "mylib"], cwd=empty, env=env, timeout=60)  # its templates are in the wheel
    assert res.returncode == 0 and (empty / "wsconform-targets" / "mylib" / "server.py").is_file(), res.stdout
    res = run([str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "--wsconform-cases",
               "--target-cmd", f"{venv / 'bin' / 'python'} {SERVER} --port {{port}}", "-k", "text-len-12",
               "-q"], cwd=empty, env=env, timeout=120)  # fmt: skip
    assert res.returncode == 0 and " passed" in res.stdout, res.stdout + res.stderr
