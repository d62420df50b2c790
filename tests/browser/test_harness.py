"""The browser harness itself, no desk needed: the offline guard blocks and reports anything
but 127.0.0.1, and the accessibility checker finds known faults on small pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.a11y import audit
from tests.browser.conftest import close_context, open_context, watch_of

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CLEAN = """
<main style="background:#fff;color:#111">
  <label>Quantity <input name="q"></label>
  <label for="p">Price</label><input id="p">
  <input aria-label="Trigger price">
  <span id="n">Product</span><select aria-labelledby="n"></select>
  <button>Place order</button> <button aria-label="Close"><svg aria-hidden="true"></svg></button>
  <input type="submit" value="Go"> <input type="hidden" name="csrf">
  <img src="data:," alt=""> <img src="data:," alt="Logo">
  <p style="color:#767676">Just enough contrast (4.54:1)</p>
  <h1 style="font-size:32px;color:#949494">Large text needs 3:1</h1>
  <dialog><input></dialog>
  <p style="display:none;color:#eee">hidden</p>
  <button disabled style="color:#ccc">Disabled is exempt</button>
</main>
"""

FAULTY = """
<main style="background:#fff">
  <input name="nolabel" placeholder="Quantity">
  <select id="s"></select>
  <button><svg></svg></button>
  <img src="data:,">
  <p style="color:#999">Too faint</p>
  <div style="background:rgba(0,0,0,0.5)"><span style="color:#333">Dark on dim</span></div>
  <dialog open><input id="in-dialog"></dialog>
</main>
"""


@pytest.fixture
def blank(browser: Browser) -> Iterator[Page]:
    context = open_context(browser)
    yield context.new_page()
    close_context(context)


def test_a_clean_page_has_no_findings(blank: Page) -> None:
    blank.set_content(CLEAN)
    assert audit(blank) == []


def test_each_fault_is_found(blank: Page) -> None:
    blank.set_content(FAULTY)
    findings = "\n".join(audit(blank))
    for expected in (
        "no accessible name: input[name=nolabel]",
        "(a placeholder is not a label)",
        "no accessible name: select#s",
        "no accessible name: button",
        "image without alt",
        'contrast 2.85:1 < 4.5:1: p "Too faint"',
        'span "Dark on dim"',
        "no accessible name: input#in-dialog",
    ):
        assert expected in findings, f"{expected!r} not in:\n{findings}"
    assert len(audit(blank, "dialog")) == 1


def test_the_offline_guard_blocks_and_reports_other_hosts(blank: Page) -> None:
    blank.set_content(
        '<img src="http://example.com/x.png" alt="x">'
        "<script>new WebSocket('ws://10.1.2.3:8765/'); fetch('https://cdn.example.org/a.js')"
        ".catch(() => {})</script>"
    )
    blank.wait_for_timeout(500)
    watch = watch_of(blank)
    blocked = "\n".join(watch.blocked)
    for url in ("http://example.com/x.png", "ws://10.1.2.3:8765/", "https://cdn.example.org/a.js"):
        assert url in blocked, blocked
    watch.blocked.clear()  # reported: this test expected them


def test_the_watch_records_console_errors_crashes_and_failed_requests(blank: Page) -> None:
    blank.set_content(
        "<script>console.error('boom'); fetch('http://127.0.0.1:9/nothing').catch(() => {});"
        "setTimeout(() => { throw new Error('crash'); });</script>"
    )
    blank.wait_for_timeout(500)
    problems = "\n".join(watch_of(blank).problems())
    for expected in (
        "console: boom",
        "console: uncaught: crash",
        "http://127.0.0.1:9/nothing",
    ):
        assert expected in problems, problems
