"""Container command of the nginx-proxy target: nginx as a WebSocket reverse proxy, backend behind it.

A proxy is an implementation under test too: every byte of a case goes through nginx, which parses
the opening handshake itself, forwards it to the backend with the WebSocket upgrade headers, and
then tunnels both directions. This script makes that one process for the harness:

1. picks a free port on 127.0.0.1 for the backend (inside the container, which shares the host's
   network namespace, so the kernel hands out a port nobody uses) and starts backend.py there;
2. writes an nginx.conf that listens on 127.0.0.1:{port} and proxies every path to the backend with
   the configuration nginx documents for WebSocket proxying (proxy_http_version 1.1, Upgrade and
   Connection set from the client's Upgrade header);
3. runs nginx in the foreground (``daemon off``), prints a line with "ready" once both accept TCP;
4. on SIGTERM/SIGINT stops the backend (it closes open connections with 1001, through nginx), then
   nginx, and exits 0; if either dies on its own, stops the other and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

HOST = "127.0.0.1"
BACKEND_PYTHON = "/opt/venv/bin/python"
BACKEND = "/app/backend.py"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 3.0

NGINX_CONF = """\
# written by entry.py for one run of the nginx-proxy target
worker_processes 1;
daemon off;
pid {run}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;

    # "Connection: upgrade" when the client asked for an upgrade, else close (nginx's documented map)
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}

    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://{host}:{backend_port};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            # the default 60 s would cut a tunnel that is idle for a minute
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_listening(port: int, procs: list[subprocess.Popen[bytes]], timeout: float) -> bool:
    """True once something accepts on the port; False if a process died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            return False
        if port_open(port):
            return True
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="nginx WebSocket proxy in front of a websockets echo server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--subprotocols", default="")
    parser.add_argument("--max-size", default="67108864")
    args = parser.parse_args(argv)

    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    run = Path(tempfile.mkdtemp(prefix="nginx-wsconform-"))
    backend_port = free_port()
    conf = run / "nginx.conf"
    conf.write_text(NGINX_CONF.format(run=run, host=HOST, port=args.port, backend_port=backend_port))

    backend: subprocess.Popen[bytes] | None = None
    nginx: subprocess.Popen[bytes] | None = None
    try:
        backend = subprocess.Popen(
            [BACKEND_PYTHON, BACKEND, "--port", str(backend_port), "--subprotocols", args.subprotocols,
             "--max-size", args.max_size],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        if not wait_listening(backend_port, [backend], START_TIMEOUT):
            print(f"entry: the backend did not listen on {HOST}:{backend_port}", file=sys.stderr, flush=True)
            return 1
        nginx = subprocess.Popen(
            ["nginx", "-p", str(run), "-e", "stderr", "-c", str(conf)], stdin=subprocess.DEVNULL
        )
        if not wait_listening(args.port, [backend, nginx], START_TIMEOUT):
            print(f"entry: nginx did not listen on {HOST}:{args.port}", file=sys.stderr, flush=True)
            return 1
        print(f"ready: nginx on {HOST}:{args.port}, backend on {HOST}:{backend_port}", flush=True)
        while not stopping:
            for name, proc in (("backend", backend), ("nginx", nginx)):
                if proc.poll() is not None:
                    print(f"entry: {name} exited with {proc.returncode}", file=sys.stderr, flush=True)
                    return 1
            time.sleep(0.1)
        return 0
    finally:
        stop(backend)  # first, so its 1001 Close frames still reach the clients through nginx
        stop(nginx)


if __name__ == "__main__":
    sys.exit(main())
