"""Headless Chromium as a client target: one browser for the whole run, a fresh page per case.

Why Playwright (from PyPI) rather than raw DevTools-protocol calls: it gives exposed bindings (the page
reports its WebSocket events by calling a Python function), page-crash and browser-disconnect
events and timeouts on every call, all over the same CDP
connection we would otherwise have to drive by hand; ``executable_path`` points it at Debian's
``chromium``, so no browser is downloaded. Playwright's async objects belong to the event loop that
created them, while the engine runs each case in its own loop, so the browser lives in one thread
with its own loop for the whole run and cases talk to it through ``run_coroutine_threadsafe``.

The adapter is a JavaScript file in the target folder defining ``wsconformRun(url, protocols,
scenario, delayMs, interop)``; it reports the API's events with ``__wsconformEmit(json)`` and ends with
``__wsconformExit(code)`` (through the helpers of ``browser_reporter.js``, loaded first), the same
JSON-lines contract as every other client adapter. ``interop`` is the interop scenario of
docs/adapter-protocol.md §2 (``{scenario, plan}`` from ``WSCONFORM_INTEROP``/``WSCONFORM_PLAN``, null
otherwise), reaching the page the way the scenario does; ``browser_plan.js``, loaded next, builds its
payloads. The page is
served by a tiny HTTP server on 127.0.0.1 in the browser thread: a loopback origin is a secure
context (``crypto.subtle`` works) and, unlike a page injected by request interception, is in the
same address space as the peer, so Chromium's Local Network Access checks allow the connection
without any flag that would change the browser's behaviour. Chromium is started with background
networking off and
a host-resolver rule that resolves nothing but loopback, so the browser cannot reach beyond this
machine.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import json
import os
import shutil
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from harness.targets.errors import TargetUnavailable
from harness.targets.runners.base import Address, ClientLauncher
from harness.targets.runners.output import TargetLog

REPORTER = Path(__file__).with_name("browser_reporter.js")  # the event-reporting helpers every adapter uses
PLAN = Path(__file__).with_name("browser_plan.js")  # interop plans: payloads built and checked in the page
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
LAUNCH_TIMEOUT = 30.0
PAGE_TIMEOUT = 15.0
CHROMIUM_ARGS = [
    "--no-sandbox",  # the harness may run as root (CI); the page only ever loads our adapter
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]


def chromium_path() -> str | None:
    """The browser binary: $WSCONFORM_CHROMIUM, else Debian's ``chromium`` on PATH."""
    explicit = os.environ.get("WSCONFORM_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class PageClient:
    """One case's page, seen by the peer as a client process (``harness.peer.server.ClientProcess``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, owner: BrowserLauncher) -> None:
        self._loop = loop
        self._owner = owner
        self.stdout: asyncio.StreamReader | None = asyncio.StreamReader()
        self._exit: asyncio.Future[int] = loop.create_future()
        self.context: Any = None

    # Called from the browser thread.
    def emit(self, line: str) -> None:
        self._loop.call_soon_threadsafe(self._feed, line)

    def exit(self, code: int) -> None:
        self._loop.call_soon_threadsafe(self._set_exit, code)

    def _feed(self, line: str) -> None:
        if self.stdout is not None and not self._exit.done():
            self.stdout.feed_data(line.replace("\n", " ").encode("utf-8", "replace") + b"\n")

    def _set_exit(self, code: int) -> None:
        if self._exit.done():
            return
        self._exit.set_result(code)
        if self.stdout is not None:
            self.stdout.feed_eof()
        self._owner.close_page(self)

    @property
    def exited(self) -> bool:
        return self._exit.done()

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)  # a cancelled waiter must not cancel the exit itself

    def kill(self) -> None:
        self._set_exit(-9)


class BrowserLauncher(ClientLauncher):
    """A Chromium-based client target: ``launch`` opens a page running the target's adapter script.

    Restartable: a crashed browser is started again before the next case. Parallel workers share it
    (one page per case already).
    """

    kind = "browser"
    log: TargetLog
    restartable = True

    def __init__(self, script: Path, *, log_path: Path, executable: str | None = None) -> None:
        self.script = script
        self.log_path = log_path
        self.log = TargetLog.for_path(log_path)
        self.executable = executable
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._browser: Any = None
        self._playwright: Any = None
        self._lock = threading.Lock()
        self._crashed = False
        self.version = "unknown"
        self.address = Address("127.0.0.1", 0)  # a client target has no address: the peer listens
        self._page_server: asyncio.Server | None = None
        self._page_port = 0

    # -- lifecycle (harness thread) ---------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self.alive():
                return
            self._shutdown()
            executable = self.executable or chromium_path()
            if executable is None:
                raise TargetUnavailable(
                    "no Chromium found (apt-get install chromium, or set WSCONFORM_CHROMIUM)"
                )
            try:
                import playwright.async_api  # noqa: F401
            except ImportError as exc:
                raise TargetUnavailable("Playwright is not installed (pip install playwright)") from exc
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="wsconform-browser", daemon=True)
            thread.start()
            self._loop, self._thread, self._crashed = loop, thread, False
            try:
                self._call(self._launch(executable), LAUNCH_TIMEOUT)
            except Exception as exc:
                self._shutdown()
                raise TargetUnavailable(f"Chromium did not start: {type(exc).__name__}: {exc}") from exc
            self._log(f"--- browser started: {executable} {self.version}")
            _live.add(self)

    def alive(self) -> bool:
        return self._browser is not None and not self._crashed and self._loop is not None

    def exit_status(self) -> int | None:
        return None if self.alive() else 1

    def stop(self) -> None:
        with self._lock:
            self._shutdown()

    def _shutdown(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        if self._browser is not None or self._playwright is not None:
            with contextlib.suppress(Exception):  # a dead browser may fail to close; the thread still ends
                self._call(self._close(), 10.0)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5.0)
        if not loop.is_running():
            loop.close()
        self._loop = self._thread = self._browser = self._playwright = None

    def _call(self, coro: Any, timeout: float) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _log(self, text: str) -> None:
        self.log.write((text.rstrip("\n") + "\n").encode("utf-8", "replace"))

    # -- browser thread ---------------------------------------------------------------------------

    async def _launch(self, executable: str) -> None:
        from playwright.async_api import async_playwright

        self._playwright = await async_playwright().start()
        self._browser = await self._playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS, timeout=LAUNCH_TIMEOUT * 1000
        )
        self.version = str(self._browser.version)
        page = (
            "<!doctype html><meta charset=utf-8><title>wsconform adapter</title>"
            f"<script>{REPORTER.read_text(encoding='utf-8')}</script>"
            f"<script>{PLAN.read_text(encoding='utf-8')}</script>"
            f"<script>{self.script.read_text(encoding='utf-8')}</script>"
        ).encode()
        self._page_server = await asyncio.start_server(lambda r, w: _serve_page(r, w, page), "127.0.0.1", 0)
        self._page_port = int(self._page_server.sockets[0].getsockname()[1])
        self._browser.on("disconnected", lambda _browser: self._mark_crashed())

    def _mark_crashed(self) -> None:
        self._crashed = True

    async def _close(self) -> None:
        if self._page_server is not None:
            self._page_server.close()
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()

    async def _open(self, client: PageClient, args: list[Any]) -> None:
        context = await self._browser.new_context()
        client.context = context
        page = await context.new_page()
        await page.expose_function("__wsconformEmit", client.emit)
        await page.expose_function("__wsconformExit", client.exit)
        page.on("console", lambda msg: self._log(f"[console.{msg.type}] {msg.text}"))
        page.on("pageerror", lambda err: self._log(f"[pageerror] {err}"))
        page.on("crash", lambda _page: client.exit(-11))

        await page.goto(f"http://127.0.0.1:{self._page_port}/adapter.html", timeout=PAGE_TIMEOUT * 1000)
        await page.evaluate("(args) => { wsconformRun(...args); }", args)

    async def _close_context(self, context: Any) -> None:
        with contextlib.suppress(Exception):  # the page may be gone with a crashed renderer
            await asyncio.wait_for(context.close(), 5.0)

    # -- per case (the case's own event loop) -----------------------------------------------------

    async def launch(
        self, url: str, protocols: list[str], scenario: dict[str, str] | None = None
    ) -> PageClient:
        if not self.alive() or self._loop is None:
            raise TargetUnavailable("the browser is not running")
        scenario = scenario or {}
        client = PageClient(asyncio.get_running_loop(), self)
        name, delay = scenario.get("WSCONFORM_SCENARIO", ""), int(scenario.get("WSCONFORM_DELAY_MS", 0))
        interop = interop_argument(scenario)
        args: list[Any] = [url, protocols, name, delay, interop]
        label = interop["scenario"] if interop else "-"
        self._log(f"--- page: {url} protocols={protocols} scenario={name or '-'} interop={label}")
        started = time.monotonic()
        future = asyncio.run_coroutine_threadsafe(self._open(client, args), self._loop)
        try:
            await asyncio.wait_for(asyncio.wrap_future(future), PAGE_TIMEOUT)
        except (TimeoutError, concurrent.futures.CancelledError, Exception) as exc:
            if client.exited:  # the adapter ended during the call (e.g. exit 127 at once), closing its page
                return client
            self.close_page(client)
            raise TargetUnavailable(f"the adapter page did not load: {type(exc).__name__}: {exc}") from exc
        self._log(f"    page ready in {(time.monotonic() - started) * 1000:.0f} ms")
        return client

    def close_page(self, client: PageClient) -> None:
        loop, context = self._loop, client.context
        client.context = None
        if loop is not None and context is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close_context(context), loop)


def interop_argument(env: dict[str, str]) -> dict[str, Any] | None:
    """The adapter's ``interop`` argument: ``{scenario, plan}`` from the environment a process adapter
    would get (docs/adapter-protocol.md §2.1), or None for a conformance case."""
    if not env.get("WSCONFORM_INTEROP") and not env.get("WSCONFORM_PLAN"):
        return None
    try:
        plan = json.loads(env.get("WSCONFORM_PLAN") or "null")
    except ValueError as exc:
        raise TargetUnavailable(f"WSCONFORM_PLAN is not JSON: {exc}") from exc
    return {"scenario": env.get("WSCONFORM_INTEROP", ""), "plan": plan}


async def _serve_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, page: bytes) -> None:
    """Answer any request with the adapter page (HTTP/1.1, one response, then close)."""
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), PAGE_TIMEOUT)
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(page)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + page)
        await asyncio.wait_for(writer.drain(), PAGE_TIMEOUT)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


_live: weakref.WeakSet[BrowserLauncher] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for launcher in list(_live):
        launcher.stop()
