"""A real browser for tests: Debian's chromium, driven by the PyPI `playwright` package.

Playwright's own browser download cannot be fetched on these machines, so it never runs
(`playwright install` is not part of any setup): Playwright launches the system chromium through
`executable_path`. `make test` installs both once; `python -m tests.support.browser` is the check it
runs then: launch headless, open a loopback page, take a screenshot.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.support.servers import serve

# BOXSYNC_TEST_CHROMIUM points at another build (or, in the suite's own CI test, at nothing).
CHROMIUM = os.environ.get("BOXSYNC_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# No sandbox: CI runs as root in a container, where chromium's sandbox cannot start. The rest keeps
# a headless run from reaching for the network or a GPU it does not have.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def missing() -> str | None:
    """Why the browser cannot run here, or None when it can."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"chromium is not installed at {CHROMIUM} (make test installs Debian's package)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make test installs the dev extras)"
    return None


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[object]:
    """A headless chromium (a Playwright Browser) for the duration of the block."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def _check(shot: Path) -> None:
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>check</title><h1>browser check</h1>")

    with serve(lambda url: Starlette(routes=[Route("/", page)]), lifespan="off") as url:
        async with browser() as chromium:
            tab = await chromium.new_page()
            await tab.goto(url + "/")
            heading = await tab.text_content("h1")
            await tab.screenshot(path=str(shot))
    if heading != "browser check" or not shot.stat().st_size:
        raise SystemExit(f"browser check failed: heading {heading!r}, screenshot {shot.stat().st_size} bytes")


def main() -> None:
    reason = missing()
    if reason:
        raise SystemExit(f"browser check: {reason}")
    with tempfile.TemporaryDirectory() as tmp:
        shot = Path(tmp) / "check.png"
        asyncio.run(_check(shot))
    print(f"browser check: ok ({CHROMIUM} headless, loopback page, screenshot)", file=sys.stderr)


if __name__ == "__main__":
    main()
