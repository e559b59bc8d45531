"""The rendered knowledge-base article (/kb/<id>) on a desktop and a phone, in both languages: the article, its
title and the way back fit the screen; long lines wrap or scroll inside their block, never the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import VIEWPORTS, LiveServer, overlap

expect.set_options(timeout=15_000)
ARTICLES = {"zh-CN": ("zh-api-signature-error", "返回"), "en-US": ("en-api-signature-error", "Back")}


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("locale", sorted(ARTICLES))
def test_layout_in_both_languages(
    browser_context: Any, live_server: LiveServer, tmp_path: Path, locale: str, viewport: str
) -> None:
    size = VIEWPORTS[viewport]
    page = browser_context(locale=locale, viewport=size)
    article, back = ARTICLES[locale]
    page.goto(f"{live_server.url}/kb/{article}")
    expect(page.locator("header a.back")).to_contain_text(back)
    page.screenshot(path=str(tmp_path / f"kb-{locale}-{viewport}.png"), full_page=True)
    header, title = page.locator("header").bounding_box(), page.locator("h1").bounding_box()
    body = page.locator("article").bounding_box()
    for box in (header, title, body):
        assert box is not None and box["width"] > 0 and box["height"] > 0
        assert box["x"] >= -1 and box["x"] + box["width"] <= size["width"] + 1, box
    assert header is not None and body is not None and not overlap(header, body)
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
