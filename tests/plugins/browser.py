"""Headless Chromium through Playwright, using the system browser (never a downloaded one).

Without Chromium, browser tests skip with a notice, unless REQUIRE_BROWSER=1 makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if candidate and os.path.exists(candidate):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def chromium_executable():
    path = chromium_path()
    if path is None:
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail("REQUIRE_BROWSER=1 but no Chromium was found (apt-get install -y chromium).")
        print("\nNOTICE: no Chromium found; browser tests are skipped (apt-get install -y chromium).")
        pytest.skip("no Chromium found")
    return path


@contextmanager
def playwright():
    """Playwright's sync API, for a test that also uses the database.

    Playwright keeps an event loop running on this thread; the test's own ORM calls are still sync. While
    that loop runs, Django keeps this thread's database connections apart (asgiref's per-context storage in
    an async thread): the ones opened meanwhile are closed before the loop stops, or they would stay checked
    out of the pool to the end of the session and keep the test database from being dropped."""
    from django.db import connections
    from playwright.sync_api import sync_playwright

    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        try:
            yield p
        finally:
            connections.close_all()


@pytest.fixture
def page(chromium_executable):
    with playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        context = browser.new_context()
        pg = context.new_page()
        pg.set_default_timeout(15_000)
        yield pg
        context.close()
        browser.close()
