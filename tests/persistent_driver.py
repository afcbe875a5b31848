"""A minimal driver of persistent client adapters (docs/adapter-protocol.md §1), for tests and benches.

The harness's own persistent launcher is built elsewhere; this driver exists so that every adapter's
persistent mode can be tested against the protocol on its own: start the adapter once, write one
JSON case line per case, read the events up to the case's ``done`` line. ``PersistentAdapter.launch``
has the signature of ``harness.peer.server.Launch``, so ``harness.engine.play`` runs a real case
through it exactly as it runs one through a per-case launcher; the result can be compared.

All of it lives in one event loop (asyncio subprocess pipes belong to the loop that made them): run
several cases with ``await play(...)`` inside one ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any

START_TIMEOUT = 10.0
EXIT_TIMEOUT = 10.0
LINE_LIMIT = 1 << 20  # longer than any event line (the contract's limit is 64 KiB)


def case_line(url: str, protocols: list[str], env: dict[str, str] | None) -> dict[str, Any]:
    """The stdin line of one case: what a per-case launch would carry in argv and the environment."""
    env = env or {}
    interop = None
    if env.get("WSCONFORM_INTEROP") or env.get("WSCONFORM_PLAN"):
        interop = {
            "scenario": env.get("WSCONFORM_INTEROP", ""),
            "plan": json.loads(env.get("WSCONFORM_PLAN", "{}")),
        }
    return {
        "case": url.rsplit("/", 1)[-1],
        "url": url,
        "protocols": list(protocols),
        "scenario": env.get("WSCONFORM_SCENARIO") or None,
        "delay_ms": int(env.get("WSCONFORM_DELAY_MS") or 0),
        "interop": interop,
    }


class CaseInFlight:
    """One case of a persistent adapter, seen by the peer as a client process: its events end at
    ``done``, whose ``exit`` is what ``wait`` returns (a per-case process's exit status)."""

    def __init__(self, owner: PersistentAdapter, case: str) -> None:
        self.owner = owner
        self.case = case
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self.done: dict[str, Any] | None = None
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pump = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.stdout is not None and self.owner.proc is not None and self.owner.proc.stdout is not None
        try:
            while line := await self.owner.proc.stdout.readline():
                try:
                    event = json.loads(line)
                except ValueError:
                    event = None
                if isinstance(event, dict) and event.get("event") == "done":
                    self.done = event
                    self._exit.set_result(int(event.get("exit", 0)))
                    return
                self.stdout.feed_data(line)
            self._exit.set_result(await self.owner.proc.wait())  # exited without `done`
        finally:
            self.stdout.feed_eof()
            if not self._exit.done():
                self._exit.set_result(-1)

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def kill(self) -> None:
        self.owner.kill()


class PersistentAdapter:
    """A persistent client adapter: one process, started with ``WSCONFORM_PERSISTENT=1``."""

    def __init__(self, argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
                 stderr: IO[bytes] | None = None) -> None:  # fmt: skip
        self.argv = argv
        self.cwd = cwd
        self.env = env or {}
        self.stderr = stderr
        self.proc: asyncio.subprocess.Process | None = None
        self.cases: list[CaseInFlight] = []

    async def start(self) -> None:
        env = {**os.environ, **self.env, "WSCONFORM_PERSISTENT": "1", "PYTHONUNBUFFERED": "1"}
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, cwd=self.cwd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=self.stderr, env=env, start_new_session=True, limit=LINE_LIMIT,
        )  # fmt: skip

    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> CaseInFlight:
        """``harness.peer.server.Launch``: hand the adapter the next case."""
        assert self.proc is not None and self.proc.stdin is not None, "start() first"
        if self.cases and self.cases[-1].done is None:
            raise RuntimeError("the previous case has not answered `done`")
        line = case_line(url, protocols, scenario)
        case = CaseInFlight(self, line["case"])
        self.cases.append(case)
        self.proc.stdin.write((json.dumps(line) + "\n").encode())
        await self.proc.stdin.drain()
        return case

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def close(self) -> int | None:
        """EOF on stdin: the adapter must exit 0 (§1). Its exit status (killed after a timeout: None)."""
        if self.proc is None:
            return None
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            return await asyncio.wait_for(self.proc.wait(), EXIT_TIMEOUT)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 9)
