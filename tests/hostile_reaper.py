"""Run ``python -m harness.cli`` commands under a child subreaper and report what each left behind.

An orphan reparents to the nearest ancestor that is a *child subreaper* (Linux PR_SET_CHILD_SUBREAPER),
so under this process nothing a harness run starts can escape: a target's child that outlived its
group, a process that called ``setsid``, a client that was never reaped all end up as children of
this process, where psutil sees them. The test process itself stays as it was (making a pytest
worker a subreaper would collect every other test's orphans).

For each run of the plan it records the exit status, the wall time, the harness's peak RSS (VmHWM,
polled every 10 ms) and ``ru_maxrss`` from ``wait4`` (the harness and the targets it reaped: an
upper bound of the harness's own peak), and the processes still alive after the run; it can send
the harness a signal once results.jsonl holds N results. Everything still alive at the end is
killed, so a test never leaks a process whatever happened.

    python tests/hostile_reaper.py PLAN.json REPORT.json

PLAN: ``{"cwd": DIR, "runs": [{"argv": [...], "stdout": PATH, "results": RESULTS.jsonl, "snapshot": DIR,
"timeout": S, "settle": S, "signal": {"name": "SIGTERM", "after_results": 1}}]}``
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
POLL = 0.01


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl failed")


def hwm_kib(pid: int) -> int | None:
    """The process's peak resident set size so far (VmHWM), in KiB; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def descendants() -> list[dict[str, Any]]:
    """Every live (non-zombie) process below this one."""
    out = []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append({"pid": p.pid, "cmdline": " ".join(p.cmdline())[:300]})
    return out


def reap(harness: int | None) -> tuple[int, Any] | None:
    """Reap every child that has exited; the harness's (status, rusage) when it was among them."""
    found = None
    while True:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return found
        if pid == 0:
            return found
        if pid == harness:
            found = (status, usage)


def result_lines(path: str, since: float) -> int:
    """Results in results.jsonl, once this run has rewritten it (the previous run's do not count)."""
    try:
        if os.stat(path).st_mtime < since:
            return 0
        with open(path, encoding="utf-8") as fh:
            return sum(1 for line in fh if line.startswith('{"type": "result"'))
    except OSError:
        return 0


def snapshot(results: str | None, folder: str | None) -> None:
    """Copy what the run left (results.json, results.jsonl, index.html) before the next run replaces it."""
    if not results or not folder:
        return
    os.makedirs(folder, exist_ok=True)
    src = Path(results).parent
    for name in ("results.json", "results.jsonl", "index.html"):
        if (src / name).is_file():
            shutil.copy(src / name, Path(folder) / name)


def run_one(spec: dict[str, Any], cwd: str) -> dict[str, Any]:
    argv = [sys.executable, "-m", "harness.cli", *spec["argv"]]
    out = open(spec["stdout"], "wb")  # noqa: SIM115 - closed below
    started, since = time.monotonic(), time.time() - 0.01
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a worker may ignore it
    )  # fmt: skip
    sig = spec.get("signal")
    results = spec.get("results")
    deadline = started + float(spec.get("timeout", 120))
    report: dict[str, Any] = {"pid": proc.pid, "hwm_kib": 0, "timed_out": False, "signalled_at": None}
    first_result: list[dict[str, Any]] | None = None
    done = None
    while done is None:
        hwm = hwm_kib(proc.pid)
        if hwm is not None:
            report["hwm_kib"] = max(report["hwm_kib"], hwm)
        count = result_lines(results, since) if results else 0
        if first_result is None and count >= 1:
            first_result = descendants()
        if sig and report["signalled_at"] is None and count >= sig.get("after_results", 1):
            os.kill(proc.pid, getattr(signal, sig["name"]))
            report["signalled_at"] = round(time.monotonic() - started, 3)
        if time.monotonic() > deadline and not report["timed_out"]:
            report["timed_out"] = True
            os.kill(proc.pid, signal.SIGKILL)
        done = reap(proc.pid)
        if done is None:
            time.sleep(POLL)
    out.close()
    snapshot(results, spec.get("snapshot"))
    status, usage = done
    report["exit"] = os.waitstatus_to_exitcode(status)
    report["wall_s"] = round(time.monotonic() - started, 3)
    report["maxrss_kib"] = usage.ru_maxrss
    report["alive_at_first_result"] = first_result
    settle = time.monotonic() + float(spec.get("settle", 1.0))
    left = descendants()
    while left and time.monotonic() < settle:  # SIGKILL is delivered asynchronously
        time.sleep(POLL)
        reap(None)
        left = descendants()
    report["survivors"] = left
    return report


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the test died: so do we, and our children's PDEATHSIG
    runs = [run_one(spec, plan["cwd"]) for spec in plan["runs"]]
    leftovers = descendants()
    for p in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p["pid"], signal.SIGKILL)
    end = time.monotonic() + 5
    while descendants() and time.monotonic() < end:
        reap(None)
        time.sleep(POLL)
    reap(None)
    Path(sys.argv[2]).write_text(json.dumps({"runs": runs, "killed_at_end": leftovers}, indent=1))


if __name__ == "__main__":
    main()
