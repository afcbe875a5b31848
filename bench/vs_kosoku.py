"""wsconform ``--autobahn`` against kosoku -p 4 on the same server, alternated, median ratio.

kosoku (``pip install kosoku``) is a native runner of Autobahn|Testsuite's case files. Both tools run
the same case set: categories 1-10 by default (kosoku excludes 12.* and 13.*; wsconform's target does
not declare permessage-deflate, so its equivalents of 12 and 13 are UNIMPLEMENTED without a
connection), or with ``--deflate`` categories 12 and 13 only (kosoku ``-i 12.* -i 13.*``; wsconform
``--autobahn --family permessage-deflate`` with permessage-deflate declared). Both drive the same
server program, the ``websockets`` target's adapter: kosoku one instance started here, wsconform its
own replicas (``--target-cmd``, one per worker). The two tools run
one after the other, ``--repeat`` times in alternation, so that a neighbour's load hits both alike;
the median of the per-round ratios is printed (below 1.0: wsconform is faster).

    python bench/vs_kosoku.py [--repeat 3] [--jobs 2] [--deflate] [--suites]

``--suites`` also times the default ``wsconform run`` (all roles of the default target) and the whole
server suite against one target, once each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "targets" / "websockets" / "server.py"
SERVER_ARGS = ["--subprotocols", "chat,superchat", "--max-size", "67108864"]
POLICIES = ["--subprotocols", "chat,superchat", "--max-message-size", "67108864"]
CORE_ONLY = ["-x", "12.*", "-x", "13.*"]  # kosoku: Autobahn categories 1-10
DEFLATE_ONLY = ["-i", "12.*", "-i", "13.*"]  # kosoku: Autobahn categories 12 and 13


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the server did not listen on {port} within {timeout} s")


def _wsconform(extra: list[str], out: Path) -> float:
    argv = [sys.executable, "-m", "harness", "run", *extra, "--results", str(out / "r.json")]
    argv += ["--no-report", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False, timeout=1800)
    return time.perf_counter() - start


def run_wsconform(jobs: int, out: Path, deflate: bool) -> float:
    cmd = " ".join([sys.executable, str(SERVER), "--port", "{port}", *SERVER_ARGS])
    selection = ["--permessage-deflate", "--family", "permessage-deflate"] if deflate else []
    return _wsconform(["--autobahn", "--target-cmd", cmd, *POLICIES, *selection, "-j", str(jobs)], out)


def run_kosoku(out: Path, deflate: bool) -> float:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", str(port), *SERVER_ARGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port)
        argv = ["kosoku", "-m", "fuzzingclient", *(DEFLATE_ONLY if deflate else CORE_ONLY), "-p", "4"]
        argv += ["-o", str(out / "kosoku"), f"127.0.0.1:{port}"]
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, check=False, timeout=1800)
        return time.perf_counter() - start
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--suites", action="store_true")
    ap.add_argument("--deflate", action="store_true", help="categories 12 and 13 instead of 1-10")
    args = ap.parse_args()
    if shutil.which("kosoku") is None:
        sys.exit("kosoku is not installed: pip install kosoku")
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for n in range(args.repeat):
            ours = run_wsconform(args.jobs, out, args.deflate)
            theirs = run_kosoku(out, args.deflate)
            ratios.append(ours / theirs)
            what = "12-13" if args.deflate else "1-10"
            print(f"round {n + 1} ({what}): wsconform -j {args.jobs} {ours:.1f} s, kosoku {theirs:.1f} s")
        print(f"median ratio wsconform / kosoku: {statistics.median(ratios):.2f}")
        if args.suites:
            print(f"default `wsconform run`: {_wsconform([], out):.1f} s")
            cmd = " ".join([sys.executable, str(SERVER), "--port", "{port}", *SERVER_ARGS])
            declared = [*POLICIES, "--permessage-deflate"]
            server_suite = _wsconform(["--target-cmd", cmd, *declared, "-j", str(args.jobs)], out)
            print(f"server suite against the websockets server: {server_suite:.1f} s")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
