"""How a target's role is reached: the runner interface and its local implementations.

* ``base``: the interface (``Runner``, ``ServerRunner``, ``ClientLauncher``), argv placeholders,
  loopback-only addresses and free ports.
* ``output``: the capped log file and the pump that fills it (ready line, tail of the output).
* ``pgroup``: process groups, death with the harness, the run's pid file and its sweep.
* ``process``: local processes (a server per start, a client per case).
* ``url``: a server somebody else runs.
* ``browser``: headless Chromium pages (``browser_reporter.js``: the adapters' event helpers).

Containers are in ``harness.targets.docker``. The names below are the package's public API, so
``from harness.targets.runners import Runner, TargetUnavailable`` keeps working for callers.
"""

from harness.targets.errors import TargetUnavailable
from harness.targets.runners.base import (
    Address,
    ClientLauncher,
    Runner,
    ServerRunner,
    ensure_loopback,
    free_port,
    port_open,
    render_argv,
)
from harness.targets.runners.process import ProcessClientLauncher, ProcessRunner
from harness.targets.runners.url import UrlRunner

__all__ = [
    "Address",
    "ClientLauncher",
    "ProcessClientLauncher",
    "ProcessRunner",
    "Runner",
    "ServerRunner",
    "TargetUnavailable",
    "UrlRunner",
    "ensure_loopback",
    "free_port",
    "port_open",
    "render_argv",
]
