"""What the command line prints, shaped for two readers: a person at a terminal and a CI log.

At a terminal: colours, a live progress bar, rich tables that fold long cells instead of cutting
them. Anywhere else (stdout piped or redirected, as in every CI system): no live display, a plain
progress line about every ten seconds, tables as aligned plain text at their full width, one record
per line. Text a target controls is never parsed as rich markup: lines are assembled from
``(text, style)`` pieces, and every piece goes through ``text.printable``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from harness.text import printable

Piece = str | tuple[str, str]  # plain text, or (text, rich style)


@dataclass(frozen=True)
class Column:
    header: str
    numeric: bool = False
    style: str = ""


class Out:
    """One console, used the same way by every command (and by tests, through capsys)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    @property
    def tty(self) -> bool:
        return self.console.is_terminal

    def line(self, *pieces: Piece) -> None:
        """Print one logical line; never wrapped by rich (a CI log line stays one line)."""
        text = Text.assemble(
            *[(printable(p), "") if isinstance(p, str) else (printable(p[0]), p[1]) for p in pieces]
        )
        self.console.print(text, soft_wrap=True)

    def error(self, message: str) -> None:
        self.line(("error", "red"), " ", message)

    def table(self, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        rows = [[printable(cell) for cell in row] for row in rows]
        if self.tty:
            table = Table(title=printable(title))
            for col in columns:
                table.add_column(
                    col.header, justify="right" if col.numeric else "left", style=col.style or None,
                    overflow="fold", min_width=len(col.header) if col.numeric else None,
                )  # fmt: skip
            for row in rows:
                table.add_row(*[Text(cell) for cell in row])
            self.console.print(table)
            return
        for text in plain_table(title, columns, rows):
            self.console.print(Text(text), soft_wrap=True)


def plain_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns of plain text at their natural width: nothing cut, nothing wrapped."""
    widths = [max([len(c.header)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]

    def fmt(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(w) if col.numeric else cell.ljust(w)
            for cell, w, col in zip(cells, widths, columns, strict=True)
        ]
        return "  ".join(parts).rstrip()

    lines = [printable(title)] if title else []
    lines.append(fmt([c.header for c in columns]))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt(r) for r in rows]
    return lines


def tally(counts: Counter[str], order: Sequence[str]) -> str:
    """``12 PASS, 3 FAIL`` in the given outcome order, zeros left out."""
    return ", ".join(f"{counts[o]} {o}" for o in order if counts.get(o)) or "nothing yet"


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


class RunProgress:
    """Progress of a run: a transient bar at a terminal, a plain line every ``every`` seconds elsewhere.

    The plain line comes from a timer thread, so a slow case (a 60 s limits case, a target that hangs
    until its timeout) still shows the run is alive; each line says done/total, the outcomes so far
    (with how many of the FAIL/ERROR are unexpected) and the elapsed time.
    """

    def __init__(self, out: Out, total: int, order: Sequence[str], *, enabled: bool, every: float) -> None:
        self.out, self.total, self.order, self.every = out, total, list(order), every
        self.enabled = enabled
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.unexpected = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar: Progress | None = None
        self._task: int | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunProgress:
        if not self.enabled:
            return self
        if self.out.tty:
            self._bar = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.out.console, transient=True,
            )  # fmt: skip
            self._bar.__enter__()
            self._task = self._bar.add_task("running", total=self.total)
        else:
            self._thread = threading.Thread(target=self._tick, name="wsconform-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self.out.line(self.status_line())
        if self._bar is not None:
            self._bar.__exit__(kind, exc, tb)

    def status_line(self) -> str:
        with self._lock:
            done, counts, unexpected = self.done, Counter(self.counts), self.unexpected
        bad = f" ({unexpected} unexpected)" if unexpected else ""
        return (
            f"progress: {done}/{self.total} done, {clock(time.monotonic() - self.started)} elapsed: "
            f"{tally(counts, self.order)}{bad}"
        )

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            self.out.line(self.status_line())

    def started_case(self, label: str) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=printable(label))  # type: ignore[arg-type]

    def finished_case(self, outcome: str, unexpected: bool) -> None:
        with self._lock:
            self.done += 1
            self.counts[outcome] += 1
            self.unexpected += int(unexpected)
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task)  # type: ignore[arg-type]
