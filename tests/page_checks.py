"""What every page of the product must pass in a real browser, and its screenshots.

``check_page(page, name)`` looks at the page at 1366 px and 375 px wide: nothing overflows horizontally,
axe-core (bundled by ``axe-playwright-python``) finds no serious or critical violation, and a full-page
screenshot of each width is saved under the artifacts directory (``QUICKSEND_TEST_ARTIFACTS``, default
``var/test-artifacts``, which git ignores) for people to look at."""

from __future__ import annotations

import os
from pathlib import Path

WIDTHS = (1366, 375)
ROOT = Path(__file__).resolve().parents[1]


def artifacts_dir() -> Path:
    path = Path(os.environ.get("QUICKSEND_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts") / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def serious_violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0 when nothing overflows)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def check_page(page, name: str, ready=None) -> None:
    """At each width: reload, wait until ``ready(page)`` (if given) and the network is idle, then assert no
    horizontal overflow and no serious/critical axe violation, and save ``<name>-<width>.png``."""
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.reload()
        page.wait_for_load_state("networkidle")
        if ready is not None:
            ready(page)
        page.screenshot(path=str(artifacts_dir() / f"{name}-{width}.png"), full_page=True)
        extra = overflow(page)
        if extra > 0:
            problems.append(f"{name} at {width} px is {extra} px wider than the window")
        problems += [f"{name} at {width} px: {v}" for v in serious_violations(page)]
    assert not problems, "\n".join(problems)
