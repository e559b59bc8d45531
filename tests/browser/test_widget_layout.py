"""The widget's layout in both languages, on a desktop and a phone, light and dark (a screenshot of each kept
for a person to look at; the checks are on the boxes), and hostile text rendered as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import VIEWPORTS, LiveServer, overlap
from tests.browser.test_widget import state
from tests.browser.test_widget_issue13 import append, say

expect.set_options(timeout=15_000)
REGIONS = (".tb-header", ".tb-log", ".tb-input", ".tb-send")
QUESTIONS = {
    "zh-CN": ("发票查验失败，提示查验结果不一致", "发送", "查看完整文章"),
    "en-US": ("invoice verification failed, result inconsistent", "Send", "Read the full article"),
}
LONG_WORD = "发" * 10_000
HOSTILE = [
    '<img src=x onerror="window.__pwned=1">',
    "\u202egnp.exe 发票",
    LONG_WORD,
    "<script>window.__pwned=2</script>",
]


@pytest.mark.parametrize(
    ("locale", "viewport", "scheme"),  # each language, viewport and scheme twice, in four runs
    [
        ("zh-CN", "desktop", "light"),
        ("zh-CN", "phone", "dark"),
        ("en-US", "desktop", "dark"),
        ("en-US", "phone", "light"),
    ],
)
def test_layout_in_both_languages(
    browser_context: Any, live_server: LiveServer, tmp_path: Path, locale: str, viewport: str, scheme: str
) -> None:
    size = VIEWPORTS[viewport]
    page = browser_context(locale=locale, viewport=size, color_scheme=scheme)
    page.goto(live_server.url + "/")
    question, send_label, article = QUESTIONS[locale]
    say(page, question)
    expect(page.locator(".tb-card").last).to_contain_text(article)
    expect(page.locator(".tb-send")).to_have_text(send_label)
    page.screenshot(path=str(tmp_path / f"widget-{locale}-{viewport}-{scheme}.png"))

    boxes = {}
    for selector in REGIONS:
        box = page.locator(selector).bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0, selector
        assert box["x"] >= -1 and box["x"] + box["width"] <= size["width"] + 1, (selector, box)
        assert box["y"] >= -1 and box["y"] + box["height"] <= size["height"] + 1, (selector, box)
        boxes[selector] = box
    for a, b in ((".tb-header", ".tb-log"), (".tb-log", ".tb-input"), (".tb-input", ".tb-send")):
        assert not overlap(boxes[a], boxes[b]), (a, boxes[a], b, boxes[b])
    assert page.locator(".tb-log").evaluate("log => log.scrollWidth <= log.clientWidth + 1")
    background = page.locator(".tb-panel").evaluate("p => getComputedStyle(p).backgroundColor")
    assert (background == "rgb(255, 255, 255)") == (scheme == "light"), background


def test_hostile_text_from_an_agent_is_rendered_as_text(page: Any, live_server: LiveServer) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live_server.url + "/")
    say(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    conversation = state(page)["conversationId"]
    append(
        live_server,
        conversation,
        *({"type": "message", "role": "agent", "text": text, "agent_name": text[:40]} for text in HOSTILE),
    )
    agent = page.locator(".tb-agent")
    expect(agent).to_have_count(len(HOSTILE))
    expect(agent.nth(0)).to_contain_text('<img src=x onerror="window.__pwned=1">')
    expect(agent.nth(3)).to_contain_text("<script>")
    assert page.locator(".tb-log img:not(.tb-thumb), .tb-log script").count() == 0
    assert page.evaluate("() => window.__pwned") is None and not dialogs
    assert page.locator(".tb-log").evaluate(
        "log => log.scrollWidth <= log.clientWidth + 1"
    )  # the long word wraps
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
