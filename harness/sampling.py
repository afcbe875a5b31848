"""Sample a target's memory and the peer's byte counters at a fixed interval while a case runs.

Backpressure is a property of time series, not of an end state: a target that buffers everything
ends the case with the same echoes as one that pushed back, and differs only in how much it held
meanwhile. So a sampler thread records, every ``interval`` seconds on an absolute schedule (a late
tick is skipped, never bunched), the resident memory of the target's process tree and the peer's
counters (payload accepted by the kernel, payload received back). A thread, because psutil reads
``/proc`` with blocking calls and the event loop is busy flooding; the counters are plain integers
that the loop publishes, so the thread never touches asyncio objects.

Bytes in flight (accepted by the peer's kernel, not back yet) include four kernel queues: the
peer's send and receive queues and the target's. On loopback the target's socket is on this host,
so ``tcp_queues`` asks the kernel for both ends by their address tuple (netlink sock_diag, Linux;
``ss`` reads the same): what is left is what the target's process holds itself.

How memory is read depends on where the target runs: a local process tree through psutil here
(``process_tree_rss``), a container through its stats (the Docker runner's ``memory_bytes``), a
client target through the process the case launched. The sampler only takes a callable.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

MemorySource = Callable[[], int | None]
CHILDREN_REFRESH = 20  # samples between two scans for new child processes (a scan reads all of /proc)
MAX_POINTS = 200


class Counters(Protocol):
    """What the peer connection publishes for the sampler (plain ints, read from another thread)."""

    payload_accepted: int
    bytes_written: int
    payload_written: int
    bytes_received: int
    payload_received: int
    endpoints: tuple[tuple[str, int], tuple[str, int]] | None  # (peer's address, target's address)

    def unparsed(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Ratios:
    """Payload per wire byte in each direction, to express kernel queues (wire bytes) as payload."""

    out: float = 1.0
    back: float = 1.0


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    rss: int | None
    sent: int  # payload accepted by the peer's kernel
    received: int  # payload received back (parsed, or read and not parsed yet)
    kernel_out: int | None = None  # wire bytes queued toward the target: peer's send + target's receive
    kernel_back: int | None = None  # wire bytes queued back: target's send + peer's receive

    @property
    def in_flight(self) -> int:
        return max(0, self.sent - self.received)

    def kernel(self, r: Ratios) -> int | None:
        if self.kernel_out is None or self.kernel_back is None:
            return None
        return round(self.kernel_out * r.out + self.kernel_back * r.back)

    def held(self, r: Ratios) -> int | None:
        """In flight minus the kernel queues: what the target process itself holds."""
        kernel = self.kernel(r)
        return None if kernel is None else max(0, self.in_flight - kernel)

    def to_json(self, r: Ratios) -> dict[str, Any]:
        """The shape the report draws (``harness.report.perf``): t, rss, bytes_in_flight; and more."""
        return {
            "t": round(self.t, 3),
            "rss": self.rss,
            "bytes_in_flight": self.in_flight,
            "kernel": self.kernel(r),
            "held": self.held(r),
            "sent": self.sent,
            "received": self.received,
        }


class ProcessTree:
    """RSS of a process and its descendants; children are rescanned every CHILDREN_REFRESH reads."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.children: list[psutil.Process] = []
        self._reads = 0

    def rss(self) -> int | None:
        try:
            if self._reads % CHILDREN_REFRESH == 0:
                self.children = self.root.children(recursive=True)
            self._reads += 1
            total = self.root.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return None
        for child in self.children:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                total += child.memory_info().rss
        return int(total)


def process_tree_rss(pid: int) -> MemorySource:
    """A memory source for a local process tree (None once the process is gone)."""
    try:
        tree = ProcessTree(pid)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return lambda: None
    return tree.rss


def memory_of(proc: object) -> MemorySource | None:
    """A memory source for a launched client: its own ``memory_bytes`` if it has one, else its pid."""
    own = getattr(proc, "memory_bytes", None)
    if callable(own):
        return own  # type: ignore[no-any-return]
    pid = getattr(proc, "pid", None)
    return process_tree_rss(pid) if isinstance(pid, int) else None


class Sampler:
    """Samples ``memory()`` and the attached counters every ``interval`` s in a daemon thread."""

    def __init__(self, memory: MemorySource | None, interval: float = 0.05) -> None:
        self.memory = memory
        self.interval = interval
        self.counters: Counters | None = None
        self.samples: list[Sample] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.missed = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="wsconform-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        tick = 0
        while True:
            self._take()
            tick += 1
            due = self.t0 + tick * self.interval
            late = time.monotonic() - due
            if late > 0:  # skip whole missed ticks, keep the grid
                skipped = int(late // self.interval) + 1
                self.missed += skipped
                tick += skipped
                due = self.t0 + tick * self.interval
            if self._stop.wait(max(0.0, due - time.monotonic())):
                self._take()  # a last sample at the end of the case
                return

    def _take(self) -> None:
        t = self.now()
        source = self.memory
        rss = source() if source is not None else None
        c = self.counters
        if c is None:
            self.samples.append(Sample(t, rss, 0, 0))
            return
        sent, received = c.payload_accepted, c.payload_received + c.unparsed()
        kernel_out = kernel_back = None
        if c.endpoints is not None:
            ours, theirs = tcp_queues(*c.endpoints), tcp_queues(c.endpoints[1], c.endpoints[0])
            if ours is not None and theirs is not None:
                kernel_out, kernel_back = ours[1] + theirs[0], theirs[1] + ours[0]
        self.samples.append(Sample(t, rss, sent, received, kernel_out, kernel_back))

    def ratios(self) -> Ratios:
        c = self.counters
        if c is None or not c.bytes_written:
            return Ratios()
        out = c.payload_written / c.bytes_written
        back = c.payload_received / c.bytes_received if c.bytes_received else out
        return Ratios(out, back)


def downsample(samples: list[Sample], limit: int = MAX_POINTS) -> list[Sample]:
    """At most ``limit`` samples, evenly spread, always keeping the first, the last and both peaks."""
    if len(samples) <= limit:
        return list(samples)
    keep = {0, len(samples) - 1}
    keep.add(max(range(len(samples)), key=lambda i: samples[i].rss or 0))
    keep.add(max(range(len(samples)), key=lambda i: samples[i].in_flight))
    step = (len(samples) - 1) / (limit - len(keep) - 1)
    i = 0.0
    while len(keep) < limit and i < len(samples):
        keep.add(round(i))
        i += step
    return [samples[i] for i in sorted(keep)][:limit]


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NO_COOKIE = 0xFFFFFFFF


def tcp_queues(local: tuple[str, int], remote: tuple[str, int]) -> tuple[int, int] | None:
    """(receive queue, send queue) in bytes of the TCP socket bound to ``local`` and connected to
    ``remote``: unread received bytes, and bytes written but not yet acknowledged.

    One netlink sock_diag request for exactly that socket (about 50 µs; reading /proc/net/tcp costs
    milliseconds on a busy host). None where the kernel offers no answer (not Linux, no such socket).
    """
    try:
        family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
        src = socket.inet_pton(family, local[0]).ljust(16, b"\0")
        dst = socket.inet_pton(family, remote[0]).ljust(16, b"\0")
        sockid = struct.pack("!HH", local[1], remote[1]) + src + dst
        sockid += struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)
        req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, 0xFFFFFFFF) + sockid
        head = struct.pack("=IHHII", 16 + len(req), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as nl:
            nl.settimeout(0.5)
            nl.send(head + req)
            data = nl.recv(8192)
    except (OSError, AttributeError, ValueError):
        return None
    if len(data) < 16 + 72 or struct.unpack_from("=H", data, 4)[0] != _SOCK_DIAG_BY_FAMILY:
        return None
    rqueue, wqueue = struct.unpack_from("=II", data, 16 + 4 + 48 + 4)
    return int(rqueue), int(wqueue)


def kernel_tcp_buffers() -> dict[str, int]:
    """The kernel's TCP autotuning ceilings (Linux); they bound what "absorbed" can include."""
    out: dict[str, int] = {}
    for name in ("tcp_rmem", "tcp_wmem"):
        try:
            values = Path(f"/proc/sys/net/ipv4/{name}").read_text().split()
            out[f"kernel_{name}_max"] = int(values[2])
        except (OSError, IndexError, ValueError):
            continue
    return out
