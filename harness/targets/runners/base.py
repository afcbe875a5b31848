"""What every runner is: the interface the session and the engine use, and the parts all runners share.

A runner reaches one role of one target. ``ServerRunner``: something that listens (a process, a
container, a URL) and is started, watched, restarted and stopped between cases. ``ClientLauncher``:
nothing runs between cases; each case ``launch``es one client with the case's URL. Both share:

* **argv templates** rendered in one place (``render_argv``): ``{port}``-style placeholders, ``{{`` and
  ``}}`` for literal braces, and an error that names the unknown placeholder and the known ones, so a
  typo in target.yaml or ``--target-cmd`` is caught when the session opens instead of per case;
* **the log** (``TargetLog`` in ``output.py``): one capped file per target and role, ``log_mark`` /
  ``log_since`` for the output of one case, the tail of the last start for error messages;
* **crash attribution** (``exited_within``): after a case the engine may ask whether the target is
  on its way out, so the case that killed it gets the FAIL rather than the next one.

The base ``Runner`` itself starts nothing and is always "alive": what ``wsconform serve`` uses for
clients that come by themselves.
"""

from __future__ import annotations

import abc
import ipaddress
import re
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from harness.targets.errors import TargetUnavailable
from harness.targets.runners.output import TargetLog
from harness.targets.spec import Policies, RunnerKind

if TYPE_CHECKING:
    from harness.peer.server import ClientProcess

LOOPBACK_HOSTS = {"localhost"}

# The placeholders an argv may use, by role (docs/architecture.md, "Container targets").
SERVER_PLACEHOLDERS = ("python", "port", "host", "url", "subprotocols", "max_message_size")
CLIENT_PLACEHOLDERS = ("python", "url", "protocols", "host")


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (allocated, never hard-coded)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_loopback(host: str) -> None:
    """Refuse any address outside 127.0.0.0/8 and ::1: wsconform only ever talks to this machine."""
    if host in LOOPBACK_HOSTS:
        return
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return
    except ValueError:
        pass
    raise TargetUnavailable(
        f"{host} is not a loopback address; wsconform only connects to 127.0.0.0/8 or ::1"
    )


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Address:
    host: str
    port: int
    path: str = "/"


# -- argv templates ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def render_argv(template: Sequence[str], values: Mapping[str, str], *, what: str = "argv") -> list[str]:
    """Fill ``{name}`` placeholders; ``{{`` and ``}}`` are literal braces (as in str.format).

    Only plain names exist (no format specs, indexes or attributes: ``{port:>5}`` is an unknown
    placeholder, not a format), so an argv means the same in a process and in a container. Raises
    ``TargetUnavailable`` naming the unknown placeholder and the known ones.
    """

    def one(arg: str) -> str:
        def sub(m: re.Match[str]) -> str:
            token = m.group(0)
            if token == "{{":
                return "{"
            if token == "}}":
                return "}"
            name = m.group(1)
            if name is None:  # a lone brace
                raise TargetUnavailable(
                    f"unmatched {token!r} in {what} argument {arg!r} (write {token * 2} for a literal brace)"
                )
            if name not in values:
                known = " ".join(f"{{{k}}}" for k in sorted(values))
                raise TargetUnavailable(
                    f"unknown placeholder {{{name}}} in {what} {list(template)}; known placeholders: {known}"
                )
            return values[name]

        return _TOKEN.sub(sub, arg)

    return [one(a) for a in template]


def placeholders_used(template: Sequence[str]) -> set[str]:
    """The placeholder names an argv uses (literal ``{{``/``}}`` excluded)."""
    return {m.group(1) for a in template for m in _TOKEN.finditer(a) if m.group(1) is not None}


def server_values(policies: Policies, port: int, *, python: bool = True) -> dict[str, str]:
    """The placeholders of a server argv for a start on ``port`` (no ``{python}`` in a container)."""
    values = {
        "port": str(port),
        "host": "127.0.0.1",
        "url": f"ws://127.0.0.1:{port}/",
        "subprotocols": ",".join(policies.subprotocols),
        "max_message_size": str(policies.max_message_size or 0),
    }
    return {"python": sys.executable, **values} if python else values


def client_values(url: str, protocols: Sequence[str], *, python: bool = True) -> dict[str, str]:
    """The placeholders of a client argv for one case."""
    values = {"url": url, "protocols": ",".join(protocols), "host": "127.0.0.1"}
    return {"python": sys.executable, **values} if python else values


def check_template(template: Sequence[str], known: Sequence[str], *, what: str = "argv") -> None:
    """Fail now, at session opening, on a placeholder the runner would not know at start."""
    render_argv(template, dict.fromkeys(known, "x"), what=what)


# -- the interface -----------------------------------------------------------------------------------


class Runner:
    """The runner interface, and a runner of nothing (a client that connects by itself).

    ``start`` before the first case and after a crash (only when ``restartable``), ``alive`` between
    cases, ``stop`` at the end (and ``atexit``); ``address`` is where a server listens. A runner that
    ``launches_clients`` starts one client per case with ``launch`` instead. ``log_mark`` /
    ``log_since(mark)`` give the target's output during a case, ``memory_bytes`` its RSS for resource
    cases. ``replica(i)`` gives a parallel worker its own copy (own process, own port), the runner
    itself when one runner serves every worker (a client launcher), or None when the target cannot
    be duplicated (a URL: one worker).
    """

    kind: ClassVar[RunnerKind | str] = "external"  # a client that connects by itself (wsconform serve)
    restartable: ClassVar[bool] = False
    launches_clients: ClassVar[bool] = False
    address: Address = Address("127.0.0.1", 0)
    log: TargetLog | None = None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def alive(self) -> bool:
        return True

    def exit_status(self) -> int | None:
        """The exit status of a target that is no longer running; None while it runs (or never ran)."""
        return None

    def exited_within(self, seconds: float) -> int | None:
        """Wait up to ``seconds`` for the target to exit; its exit status, or None if it still runs.

        For crash attribution: a case whose connection ended abruptly may have killed the target, which
        can take a few milliseconds to finish dying. The engine asks with a short bound (about 0.1 s),
        only after such a case, so the FAIL goes to the case that crashed it and the next case starts
        on a restarted target. Returns at once for a target that is already gone (or never started:
        None), and never raises. Runners that cannot tell (a URL, a client launcher) return None.
        """
        return None

    def log_mark(self) -> int:
        return self.log.mark() if self.log is not None else 0

    def log_since(self, mark: int) -> str:
        return self.log.since(mark) if self.log is not None else ""

    def memory_bytes(self) -> int | None:
        """Resident memory of the running target in bytes, or None where it cannot be measured.

        Sampled every few tens of milliseconds by ``harness.sampling`` during resource cases, so it
        must be cheap and must not raise: a process tree through psutil here, container stats in a
        Docker runner, nothing for a server somebody else runs (``--target-url``).
        """
        return None

    def replica(self, index: int) -> Runner | None:
        return None

    def renew(self) -> None:
        """Before a resource case of a client launcher: the next client must be a fresh process (a
        persistent adapter is restarted; a per-case launcher starts one per case anyway)."""
        return None

    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> ClientProcess:
        raise TargetUnavailable(f"{type(self).__name__} does not start clients")


class ServerRunner(Runner, abc.ABC):
    """A server target: started on a fresh free port, ready when it accepts TCP (and, with
    ``ready: stdout-line``, printed a line starting with ``ready``) within ``startup_timeout``."""

    restartable = True

    @abc.abstractmethod
    def start(self) -> None:
        """Start (or restart) and wait until ready; raises ``TargetUnavailable`` with the output's tail."""

    @abc.abstractmethod
    def alive(self) -> bool: ...

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop everything the runner started (a process group, a container); idempotent."""


class ClientLauncher(Runner, abc.ABC):
    """A client target: ``start`` only prepares (an image, a browser); ``launch`` starts one client per
    case, connecting to ``url`` and reporting its API events as JSON lines on ``stdout``."""

    launches_clients = True

    def replica(self, index: int) -> Runner | None:
        return self  # every case starts its own client already: workers share the launcher

    @abc.abstractmethod
    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> ClientProcess: ...
