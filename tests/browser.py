"""A real headless Chromium (Debian's `chromium`) driven by Playwright for Python, for Trio tests.

Playwright's sync API must stay on the thread that started it, and a Trio test must not block its
loop (the site under test runs there): so one worker thread owns the browser and every browser
step runs there, awaited from the test:

    async def test_page(browser):                      # the module-scoped fixture below
        page = await browser.page(api_base(site))
        await browser.run(page.goto, "/")
        await browser.run(lambda: expect(page.get_by_role("heading", name="Site")).to_be_visible())

`expect` polls (up to EXPECT_TIMEOUT_MS) in the worker thread while the site keeps running.
Playwright's own browser download is never used: the system chromium is launched. Tests using
the fixture are skipped, with the reason, where chromium is not installed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
import trio

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium" if shutil.which("/usr/bin/chromium") else shutil.which("chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
EXPECT_TIMEOUT_MS = 10_000
PHONE = {"width": 360, "height": 740}


class Browser:
    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._playwright: Any = None
        self._browser: Any = None
        self._contexts: list[Any] = []

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._thread.submit(fn, *args).result()

    def start(self) -> Browser:
        def launch() -> None:
            from playwright.sync_api import expect, sync_playwright

            expect.set_options(timeout=EXPECT_TIMEOUT_MS)
            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        self._call(launch)
        return self

    def close(self) -> None:
        def stop() -> None:
            self._browser.close()
            self._playwright.stop()

        self._call(stop)
        self._thread.shutdown()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the browser's thread; the Trio loop runs on meanwhile."""
        future = self._thread.submit(fn, *args)
        return await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)

    async def page(self, base_url: str, *, phone: bool = False) -> Any:
        """A page in a fresh context (its own cookies), `base_url` for relative addresses."""

        def open_page() -> Any:
            for context in self._contexts:  # the previous test's pages
                context.close()
            context = self._browser.new_context(base_url=base_url, viewport=PHONE if phone else None,
                                                accept_downloads=True)
            context.set_default_timeout(EXPECT_TIMEOUT_MS)
            self._contexts[:] = [context]
            return context.new_page()

        return await self.run(open_page)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (each test gets fresh contexts from `page`)."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    running = Browser().start()
    try:
        yield running
    finally:
        running.close()
