"""``wsconform init NAME``: a target folder to start from, that already passes.

A library maintainer's first hour with the harness is writing an adapter; starting from a folder that
runs (a commented target.yaml, an adapter that follows the contract, an empty expected.yaml, a
Dockerfile that follows the container contract) turns that into replacing a few lines. The adapters
are written with the `websockets` library, a dependency of wsconform, so the folder runs as soon as it
is made; tests check that the server passes the framing family with no FAIL.
"""

from __future__ import annotations

import argparse
import re
from importlib.resources import files
from pathlib import Path
from string import Template

from harness.terminal import Out

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLES = ("server", "client", "both")

TARGET_HEAD = """\
# wsconform target: $name (docs/targets.md is the contract; docs/architecture.md has the details).
name: $name
implementation: $name            # shown in report headings; say what is tested, e.g. "mylib (asyncio)"
language: python
# homepage: https://example.org/$name
version:
  python_package: websockets     # where the report's version comes from; or command: [...], or value: "1.2"
requires:
  python: [websockets]           # modules (or commands:) that must exist to run as a local process
roles:
"""

SERVER_ROLE = """\
  server:
    process:
      # {python} is the interpreter running wsconform; {port} a free port the harness picked.
      # Also available: {host} {url} {subprotocols} {max_message_size}; a literal brace is {{ or }}.
      argv: ["{python}", "server.py", "--port", "{port}",
             "--subprotocols", "{subprotocols}", "--max-size", "{max_message_size}"]
    docker:
      argv: ["/opt/venv/bin/python", "/app/server.py", "--port", "{port}",
             "--subprotocols", "{subprotocols}", "--max-size", "{max_message_size}"]
    ready: stdout-line           # the adapter prints "ready" once listening (else: tcp, a connect succeeds)
    startup_timeout: 20
"""

CLIENT_ROLE = """\
  client:
    process:
      # once per case: {url} is the peer's ws:// URL for the case, {protocols} the subprotocols to offer
      argv: ["{python}", "client.py", "--url", "{url}", "--protocols", "{protocols}"]
    docker:
      argv: ["/opt/venv/bin/python", "/app/client.py", "--url", "{url}", "--protocols", "{protocols}"]
"""

POLICIES = """\
policies:
  subprotocols: [chat, superchat]  # what the server supports: cases that need others are UNIMPLEMENTED
  permessage_deflate: false        # true when the server negotiates permessage-deflate (RFC 7692)
  max_message_size: 1048576        # the largest message it accepts; one byte more must be refused (1009)
notes:
  - "Say here how the adapter configures the library (every non-default setting and why)."
"""


def scaffold(name: str, role: str, parent: Path) -> Path:
    """Write the folder ``parent/name``; refuses an existing folder (nothing is overwritten)."""
    if not _NAME.match(name):
        raise ValueError(f"target name {name!r}: use letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise ValueError(f"role {role!r}: one of {', '.join(ROLES)}")
    folder = parent / name
    if folder.exists():
        raise FileExistsError(f"{folder} exists already; choose another name or --dir")
    roles = ["server", "client"] if role == "both" else [role]
    adapters = [f"{r}.py" for r in roles]
    values = {"name": name, "files": " ".join(adapters)}
    folder.mkdir(parents=True)
    yaml_text = TARGET_HEAD + "".join(SERVER_ROLE if r == "server" else CLIENT_ROLE for r in roles) + POLICIES
    (folder / "target.yaml").write_text(Template(yaml_text).safe_substitute(values), encoding="utf-8")
    for file in [*adapters, "expected.yaml", "Dockerfile"]:
        text = (files(__name__) / "templates" / file).read_text(encoding="utf-8")
        (folder / file).write_text(Template(text).safe_substitute(values), encoding="utf-8")
    return folder


def cmd_init(args: argparse.Namespace) -> int:
    out = Out()
    try:
        folder = scaffold(args.name, args.role, args.dir)
    except (ValueError, FileExistsError) as exc:
        out.error(str(exc))
        return 2
    made = ", ".join(sorted(p.name for p in folder.iterdir()))
    out.line(f"created {folder}: {made}")
    out.line(f"run it: wsconform run --targets-dir {args.dir} --target {args.name}")
    out.line("then replace the adapter's websockets calls with your library's (docs/targets.md)")
    return 0


def add_init_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser("init", help="create a target folder for your implementation, ready to run")
    init.add_argument("name", help="the target's name (folder name, report column)")
    init.add_argument(
        "--role", choices=ROLES, default="server", help="what the adapter plays (default: server)"
    )
    init.add_argument(
        "--dir", type=Path, default=Path("wsconform-targets"),
        help="where the folder is created (default: ./wsconform-targets; pass it as --targets-dir)",
    )  # fmt: skip
    init.set_defaults(func=cmd_init)
