"""A target's output: one capped log file, a pump that fills it, the ready line and the last words.

Why a pump instead of handing the log file's descriptor to the target: a target that writes without
end (a debug flag left on, a loop printing every frame) would otherwise fill the disk, and the cap
must hold whatever the target does. A thread per running target reads its stdout+stderr pipe and
appends to the log until ``LOG_CAP`` bytes; after that it keeps draining the pipe (a target blocked
on a full pipe would change what is measured) and drops the rest, with one note line in the log.

The pump also answers the two questions a start needs, from this start's output only (never from
earlier starts in the same log): has a line with the word ``ready`` appeared (``ready: stdout-line``),
and what were the last lines (``tail``, kept in memory, so a capped log still explains a failed start).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

LOG_CAP = 8 * 1024 * 1024  # per log file and harness process
CAPTURE = 16 * 1024  # what log_since returns at most (the output of one case, in the result)
TAIL = 4 * 1024  # the output kept in memory per start, for start-failure messages
READ_CHUNK = 64 * 1024
READY_LINE = re.compile(rb"\bready\b")
MAX_LINE = 4096  # a partial line longer than this is not a ready line


class TargetLog:
    """One log file, appended by every writer of this process through one object (``for_path``).

    ``cap`` bounds what this process writes to the file; the first write past it is cut at the cap
    and followed by ``[log capped at N bytes]``; later writes are dropped. Thread-safe.
    """

    _instances: ClassVar[dict[Path, TargetLog]] = {}
    _instances_lock = threading.Lock()

    def __init__(self, path: Path, cap: int = LOG_CAP) -> None:
        self.path = path
        self.cap = cap
        self.written = 0
        self.capped_at: int | None = None  # file offset where the cap note was written
        self._lock = threading.Lock()

    @classmethod
    def for_path(cls, path: Path, cap: int | None = None) -> TargetLog:
        """The one ``TargetLog`` of this process for ``path`` (replicas and clients share a cap)."""
        key = path.absolute()
        with cls._instances_lock:
            log = cls._instances.get(key)
            if log is None:
                log = cls._instances[key] = TargetLog(path, LOG_CAP if cap is None else cap)
            elif cap is not None:
                log.cap = cap
            return log

    @property
    def capped(self) -> bool:
        return self.capped_at is not None

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            if self.capped_at is not None:
                return
            room = self.cap - self.written
            note = b""
            if len(data) > room:
                data = data[: max(0, room)]
                note = f"\n[log capped at {self.cap} bytes]\n".encode()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("ab") as fh:
                    fh.write(data)
                    if note:
                        self.capped_at = fh.tell()
                        fh.write(note)
            except OSError:
                return
            self.written += len(data)

    def note(self, text: str) -> None:
        """A line of the harness's own (``--- start #2: argv``), under the same cap."""
        self.write(("\n" + text.rstrip("\n") + "\n").encode("utf-8", "replace"))

    def mark(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def since(self, mark: int) -> str:
        """What the log got after ``mark``, at most ``CAPTURE`` bytes (the output of one case)."""
        try:
            with self.path.open("rb") as f:
                f.seek(mark)
                data = f.read(CAPTURE + 1)
        except OSError:
            return ""
        text = data[:CAPTURE].decode("utf-8", "replace")
        if len(data) > CAPTURE:
            text += "\n[… log truncated]"
        elif self.capped_at is not None and mark >= self.capped_at:
            text += f"[log capped at {self.cap} bytes: this output was not kept]"
        return text


class OutputPump:
    """A thread copying one started process's (or container's) output into its ``TargetLog``.

    ``source`` is a pipe's read end (closed at EOF) or an iterable of chunks (a container's log
    stream). ``ready`` is set by the first complete line containing the word ``ready``; ``eof`` when
    the source ends (every writer closed the pipe, the container stopped).
    """

    def __init__(self, log: TargetLog, source: int | Iterable[bytes], *, name: str) -> None:
        self.log = log
        self.source = source
        self.ready = threading.Event()
        self.eof = threading.Event()
        self._tail = bytearray()
        self._partial = b""
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            if isinstance(self.source, int):
                fd = self.source
                try:
                    while chunk := os.read(fd, READ_CHUNK):
                        self._feed(chunk)
                finally:
                    with contextlib.suppress(OSError):
                        os.close(fd)
            else:
                for chunk in self.source:
                    self._feed(bytes(chunk))
        except Exception:  # a broken stream (daemon gone) ends the copy, never the harness
            pass
        finally:
            if self._partial and READY_LINE.search(self._partial):
                self.ready.set()
            self.eof.set()

    def _feed(self, chunk: bytes) -> None:
        self.log.write(chunk)
        with self._lock:
            self._tail += chunk
            if len(self._tail) > TAIL:
                del self._tail[: len(self._tail) - TAIL]
        if self.ready.is_set():
            return
        data = self._partial + chunk
        end = data.rfind(b"\n")
        self._partial = data[end + 1 :][-MAX_LINE:]
        # One substring scan first: the regex costs 8 us per KiB line, which capped the pump at about
        # 100 MiB/s (a target writing faster blocked on its pipe, and a 2 x 256 MiB banner took 20 s).
        # No word spans a newline, so searching all complete lines at once finds what line by line would.
        if end >= 0 and b"ready" in data[:end] and READY_LINE.search(data, 0, end):
            self.ready.set()

    def tail(self, limit: int = 2000) -> str:
        with self._lock:
            data = bytes(self._tail[-limit:])
        return data.decode("utf-8", "replace")

    def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` for the source to end, so the last words are in the log and tail."""
        self.eof.wait(timeout)


def start_failure(summary: str, log: TargetLog | None, tail: str) -> str:
    """The message of a failed start: the summary, the last output line (or "(no output)") and the
    log's path on the first line (the ERROR's reason), the output's tail on the following ones."""
    tail = tail.strip()
    lines = tail.splitlines()
    last = f"; last output: {lines[-1].strip()[:160]!r}" if lines else "; (no output)"
    where = f" (log: {log.path})" if log is not None else ""
    body = f"\n--- its last output:\n{tail}" if tail else ""
    return f"{summary}{last}{where}{body}"
