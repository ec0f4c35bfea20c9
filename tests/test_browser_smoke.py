"""The browser path works: Debian's chromium, driven by Playwright, renders a page BoxSync serves.

The first of the browser tests, kept tiny: it proves that what `make test` installed can load one of
our pages and take a screenshot. Without chromium or playwright it skips on a developer's machine
and fails under CI (tests/support/ci.py)."""
from __future__ import annotations

from tests.boxsync.connectkit import boxsync_server
from tests.support import browser
from tests.support.ci import unavailable


async def test_admin_guide_renders_in_chromium(tmp_path):
    reason = browser.missing()
    if reason:
        unavailable(reason)
    shot = tmp_path / "docs-admin.png"
    with boxsync_server(f"sqlite+aiosqlite:///{tmp_path}/boxsync.db", "http://127.0.0.1:9/keys") as app:
        async with browser.browser() as chromium:
            page = await chromium.new_page()
            response = await page.goto(f"{app}/docs/admin")
            assert response is not None and response.status == 200
            assert await page.text_content("h1") == "BoxSync administrator guide"
            assert await page.title() == "BoxSync · Administrator guide"
            # Our stylesheet (served from /static) applied: .bs-heading is 16px, a bare h1 is 32px.
            assert await page.evaluate("getComputedStyle(document.querySelector('h1')).fontSize") == "16px"
            await page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
