"""The report in a real browser: colours as computed by CSS, the filter script, navigation to a detail
page, and no script from target-controlled text ever running.

Needs the system Chromium (/usr/bin/chromium) and the playwright package; skipped, with the reason
shown, when either is missing. It never downloads a browser (no ``playwright install``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.report.model import COLOURS
from tests.test_report import TARGETS, write_run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FOUR_TARGETS = [
    *TARGETS,
    {"name": "delta", "implementation": "delta-ws", "language": "c", "version": "4.5", "role": "server"},
]


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.fixture
def browser() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the playwright package is missing (pip install playwright)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


def test_matrix_colours_filters_and_navigation(browser: Any, tmp_path: Path) -> None:
    results = write_run(tmp_path / "run", targets=FOUR_TARGETS)
    out = tmp_path / "report"
    assert main(["report", str(results), "-o", str(out)]) == 0
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto((out / "index.html").as_uri())

    cells = page.eval_on_selector_all(
        "table.m td.o",
        "els => els.map(e => [e.classList[1], getComputedStyle(e).backgroundColor, e.innerText.trim()])",
    )
    assert len(cells) == 4 * 6  # targets × cases
    seen = {outcome for outcome, _, _ in cells}
    assert seen == set(COLOURS)
    for outcome, colour, _ in cells:
        assert colour == rgb(COLOURS[outcome]), outcome
    assert len({c for _, c, _ in cells}) == len(COLOURS)  # one distinct colour per outcome
    legend = page.eval_on_selector_all(
        "p.legend span.lg", "els => els.map(e => [e.classList[1], getComputedStyle(e).backgroundColor])"
    )
    assert legend == [[o, rgb(c)] for o, c in COLOURS.items()]

    # filters: only rows with FAIL/ERROR, then one family
    def visible(selector: str) -> int:
        return int(
            page.eval_on_selector_all(selector, "els => els.filter(e => e.offsetParent !== null).length")
        )

    assert visible("tr.ok") > 0
    page.check("#only-bad")
    assert visible("tr.ok") == 0 and visible("tr.bad") == 3  # text-echo, rsv-bit, many-pings
    assert visible("details.family") == 3  # close has no FAIL/ERROR: hidden
    page.uncheck("#only-bad")
    page.select_option("#family", "limits")
    assert visible("details.family") == 1 and visible("table.m td.o") == 2 * 4
    page.select_option("#family", "")
    page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

    # a cell leads to its detail page
    page.click("details[data-family=framing] td.o.FAIL a")
    page.wait_for_load_state()
    assert page.title() == "text-echo · gamma"
    assert page.inner_text("h1").startswith("text-echo on gamma-ws")
    assert page.eval_on_selector("td.lg.FAIL", "e => getComputedStyle(e).backgroundColor") == rgb(
        COLOURS["FAIL"]
    )
    assert visible("table.trace tr.violation") == 1
    assert "<script>alert(1)</script>" in page.inner_text("table.trace")  # shown as text
    page.screenshot(path=str(tmp_path / "detail.png"), full_page=True)

    page.goto((out / "performance.html").as_uri())
    boxes = page.eval_on_selector_all("svg rect", "els => els.map(e => e.getBoundingClientRect().width)")
    assert len(boxes) == 2 * 4 and all(w > 0 for w in boxes)
    assert page.locator("svg polyline").count() == 2
    page.screenshot(path=str(tmp_path / "performance.png"), full_page=True)

    assert dialogs == []  # no target-controlled script ran on any page
    print(f"screenshots: {tmp_path}/index.png, detail.png, performance.png")
