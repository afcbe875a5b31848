"""A server somebody else runs (``--target-url``, or ``url:`` in target.yaml): checked, never started.

The harness cannot restart it, so a case that kills it leaves every later case ERROR with the cause;
it cannot be duplicated either, so a run gives it one worker. Only loopback addresses are accepted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from harness.targets.errors import TargetUnavailable
from harness.targets.runners.base import Address, ServerRunner, ensure_loopback, port_open


class UrlRunner(ServerRunner):
    kind = "url"
    restartable = False

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "http"):
            raise TargetUnavailable(f"unsupported URL scheme in {url!r} (use ws://)")
        host = parts.hostname or ""
        ensure_loopback(host)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self.url = url
        self.address = Address(host, parts.port or 80, path)

    def start(self) -> None:
        if not port_open(self.address.host, self.address.port, timeout=2.0):
            raise TargetUnavailable(f"nothing accepts TCP at {self.address.host}:{self.address.port}")

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        return None
