"""The widget as users meet it (issue 13): answered prompts stay answered, labels follow the user, answers
link their article, and the features people expect of a chat widget. A real server and a real browser."""

from __future__ import annotations

import asyncio
import base64
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer
from tests.browser.test_widget import _append, _events, state

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
)
KB_QUESTION = "发票查验失败，提示查验结果不一致"
expect.set_options(timeout=15_000)  # a shared CI machine: the first answer waits for the warm-up


def say(page: Any, text: str) -> None:
    page.locator(".tb-input").fill(text)
    page.keyboard.press("Enter")


def append(server: LiveServer, conversation: str, *events: dict[str, Any]) -> None:
    # Playwright's sync API owns this thread's event loop: write from a thread of our own.
    with ThreadPoolExecutor(1) as pool:
        for event in events:
            pool.submit(asyncio.run, _append(server, conversation, event)).result()


# ------------------------------------------------------------------------------------------------ bugs
def test_after_a_reload_answered_prompts_stay_answered(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    say(page, KB_QUESTION)
    answer = page.locator(".tb-bot").filter(has_text="可以这样处理")
    answer.get_by_role("button", name="有帮助").click()
    expect(page.locator(".tb-bot").filter(has_text="太好了")).to_be_visible()
    conversation = state(page)["conversationId"]
    append(
        live_server,
        conversation,
        {"type": "resolved", "role": "system"},
        {"type": "csat_request", "role": "system"},
    )
    page.get_by_role("button", name="5 / 5").click()
    page.get_by_role("button", name="提交评价").click()
    expect(page.locator(".tb-csat")).to_contain_text("感谢您的评价")

    page.reload()
    answer = page.locator(".tb-bot").filter(has_text="可以这样处理")
    expect(answer.get_by_role("button", name="有帮助")).to_be_disabled()
    expect(answer.get_by_role("button", name="没帮助")).to_be_disabled()
    expect(page.locator(".tb-user").filter(has_text="有帮助")).to_have_count(1)  # its words, not "/helpful"
    expect(page.locator(".tb-csat")).to_contain_text("您已评价过")
    expect(page.locator(".tb-csat button")).to_have_count(0)  # no second rating from the old prompt
    events = _events_now(live_server, conversation)
    assert [e["score"] for e in events if e["type"] == "csat"] == [5]


def _events_now(server: LiveServer, conversation: str) -> list[dict[str, Any]]:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, _events(server, conversation)).result()


def test_the_closed_banner_goes_when_the_bot_answers_again(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    say(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    append(live_server, state(page)["conversationId"], {"type": "resolved", "role": "system"})
    expect(page.locator(".tb-status")).to_contain_text("对话已结束")
    say(page, "怎么导出报销明细")
    expect(page.locator(".tb-bot")).to_have_count(2)
    expect(page.locator(".tb-status")).to_be_hidden()
    page.reload()  # the replayed transcript ends the same way
    expect(page.locator(".tb-bot")).to_have_count(2)
    expect(page.locator(".tb-status")).to_be_hidden()


def test_an_answer_links_its_article_as_a_card_not_a_raw_path(
    browser_context: Any, live_server: LiveServer
) -> None:
    page = browser_context("en-US")
    page.goto(live_server.url + "/")
    say(page, "invoice verification failed, the check result is inconsistent")
    answer = page.locator(".tb-bot").filter(has_text="Did this help?")
    card = answer.locator("a.tb-card")
    expect(card).to_have_attribute("href", re.compile(r"^/kb/en-[\w-]+$"))
    expect(card).to_contain_text("Read the full article")
    text = answer.inner_text()
    assert "help?Read" not in text and "Full article: /kb/" not in text, text
    assert re.search(r"Did this help\?\s*\n", text), text


def test_labels_follow_the_user_not_the_host_page(browser_context: Any, live_server: LiveServer) -> None:
    page = browser_context("en-US")  # the demo page is <html lang="zh-CN">
    page.goto(live_server.url + "/")
    expect(page.locator(".tb-input")).to_have_attribute("placeholder", "Describe your problem…")
    expect(page.locator(".tb-send")).to_have_text("Send")
    say(page, "发票查验失败")  # an English browser, a Chinese user
    expect(page.locator(".tb-send")).to_have_text("发送")
    expect(page.locator(".tb-bot .tb-who").first).to_have_text("助手")


def test_a_traditional_chinese_user_gets_traditional_labels_and_article(
    browser_context: Any, live_server: LiveServer
) -> None:
    page = browser_context("zh-TW")
    page.goto(live_server.url + "/")
    expect(page.locator(".tb-input")).to_have_attribute("placeholder", "描述您遇到的問題…")
    say(page, "發票查驗失敗，提示查驗結果不一致")
    answer = page.locator(".tb-bot").filter(has_text="可以這樣處理")
    card = answer.locator("a.tb-card")
    expect(card).to_have_attribute("href", re.compile(r"^/kb/zh-[\w-]+\?script=Hant-TW$"))
    expect(page.locator(".tb-send")).to_have_text("傳送")
    article = page.context.new_page()
    article.goto(live_server.url + card.get_attribute("href"))
    expect(article.locator("h1")).to_contain_text("發票查驗")
    expect(article.locator("a.back")).to_be_visible()
    assert "发票" not in article.content()


def test_a_long_answer_is_scrolled_to_its_start(browser_context: Any, live_server: LiveServer) -> None:
    page = browser_context("zh-CN", viewport={"width": 375, "height": 340})
    page.goto(live_server.url + "/")
    say(page, KB_QUESTION)
    answer = page.locator(".tb-bot").filter(has_text="可以这样处理")
    expect(answer).to_be_visible()
    page.wait_for_timeout(300)
    top, log_top, log_bottom, height = page.evaluate(
        """() => { const a = [...document.querySelectorAll('.tb-bot')].pop().getBoundingClientRect();
                   const l = document.querySelector('.tb-log').getBoundingClientRect();
                   return [a.top, l.top, l.bottom, a.height]; }"""
    )
    assert height > log_bottom - log_top, "the test needs an answer taller than the log"
    assert log_top - 1 <= top < log_bottom, (top, log_top, log_bottom)  # the title is in view


# -------------------------------------------------------------------------------------------- features
def test_welcome_topics_timestamps_and_agent_name(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    welcome = page.locator(".tb-welcome")
    expect(welcome).to_contain_text("您好")
    welcome.get_by_role("button", name="收不到验证码").click()
    expect(page.locator(".tb-user").filter(has_text="收不到验证码")).to_be_visible()
    expect(page.locator(".tb-bot").first).to_be_visible()
    expect(welcome.locator(".tb-topics")).to_be_hidden()
    expect(page.locator(".tb-bot time.tb-time").first).to_have_text(re.compile(r"^\d\d:\d\d$"))
    conversation = state(page)["conversationId"]
    append(
        live_server,
        conversation,
        {"type": "assigned", "role": "system", "agent": "a1", "agent_name": "王芳"},
        {"type": "message", "role": "agent", "agent_name": "王芳", "text": "您好，我来看看"},
    )
    agent = page.locator(".tb-agent").filter(has_text="我来看看")
    expect(agent.locator(".tb-who")).to_contain_text("王芳")
    expect(page.locator(".tb-status")).to_contain_text("客服 王芳 已接入")


def test_links_are_clickable_and_only_safe_ones(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    say(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    text = "请看 https://help.example.com/a?b=1 或 /kb/zh-verify-info-mismatch ，不要点 javascript:alert(1) <b>x</b>"
    append(live_server, state(page)["conversationId"], {"type": "message", "role": "agent", "text": text})
    agent = page.locator(".tb-agent").last
    expect(agent.locator("a")).to_have_count(2)
    hrefs = agent.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://help.example.com/a?b=1", "/kb/zh-verify-info-mismatch"]
    assert agent.locator("b").count() == 0
    expect(agent).to_contain_text("javascript:alert(1) <b>x</b>")


def test_unread_badge_and_title_while_closed(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    say(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    title = page.title()
    page.get_by_role("button", name="关闭").click()
    append(
        live_server, state(page)["conversationId"], {"type": "message", "role": "agent", "text": "还在吗？"}
    )
    expect(page.locator(".tb-badge")).to_have_text("1")
    expect(page).to_have_title(re.compile(r"^\(1\) "))
    page.locator(".tb-launcher").click()
    expect(page.locator(".tb-badge")).to_be_hidden()
    expect(page).to_have_title(title)


def test_expected_wait_while_queued_and_a_new_conversation(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    say(page, "转人工")
    expect(page.locator(".tb-status.tb-queue")).to_contain_text("预计等待约")
    first = state(page)["conversationId"]
    page.get_by_role("button", name="新对话").click()
    expect(page.locator(".tb-msg")).to_have_count(0)
    expect(page.locator(".tb-status")).to_be_hidden()
    say(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    assert state(page)["conversationId"] not in (None, first)


def test_focus_stays_in_the_open_panel_and_escape_closes(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    expect(page.locator(".tb-input")).to_be_focused()
    for _ in range(15):
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.querySelector('.tb-panel').contains(document.activeElement)")
    for _ in range(15):
        page.keyboard.press("Shift+Tab")
        assert page.evaluate("() => document.querySelector('.tb-panel').contains(document.activeElement)")
    page.keyboard.press("Escape")
    expect(page.locator(".tb-panel")).to_be_hidden()
    expect(page.locator(".tb-launcher")).to_be_focused()


def test_phone_sized_viewport(browser_context: Any, live_server: LiveServer, tmp_path: Path) -> None:
    page = browser_context("zh-CN", viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page.goto(live_server.url + "/")
    say(page, KB_QUESTION)
    expect(page.locator(".tb-bot").filter(has_text="可以这样处理")).to_be_visible()
    box = page.locator(".tb-panel").bounding_box()
    assert box is not None and (round(box["width"]), round(box["height"])) == (375, 667)
    for part in (".tb-input", ".tb-send", ".tb-close"):
        part_box = page.locator(part).bounding_box()
        assert part_box is not None and part_box["x"] >= 0 and part_box["x"] + part_box["width"] <= 375, part
    assert page.evaluate(
        "() => document.querySelector('.tb-log').scrollWidth <= document.querySelector('.tb-log').clientWidth"
    )
    page.screenshot(path=str(tmp_path / "phone.png"))


@pytest.mark.parametrize(
    ("media", "check"),
    [
        ({"color_scheme": "dark"}, "dark"),
        ({"forced_colors": "active"}, "forced"),
    ],
)
def test_dark_mode_and_high_contrast(
    browser_context: Any, live_server: LiveServer, media: dict[str, str], check: str
) -> None:
    page = browser_context("zh-CN")
    page.emulate_media(**media)
    page.goto(live_server.url + "/")
    say(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    if check == "dark":
        rgb = page.evaluate("() => getComputedStyle(document.querySelector('.tb-log')).backgroundColor")
        assert sum(int(n) for n in re.findall(r"\d+", rgb)[:3]) < 120, rgb
    else:
        width = page.evaluate("() => getComputedStyle(document.querySelector('.tb-bot')).borderTopWidth")
        assert width == "1px"
        assert page.evaluate("() => matchMedia('(forced-colors: active)').matches")


# ----------------------------------------------------------------------------------------- attachments
def test_attach_a_screenshot_and_paste_one(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    say(page, "发票上传失败")
    expect(page.locator(".tb-bot").first).to_be_visible()
    page.locator(".tb-form input[type=file]").set_input_files(
        files=[{"name": "屏幕截图.png", "mimeType": "image/png", "buffer": PNG}]
    )
    sent = page.locator(".tb-file[data-seq]").filter(has_text="屏幕截图.png")
    expect(sent).to_have_count(1)
    expect(sent.locator("img.tb-thumb")).to_have_attribute("src", re.compile("^blob:"))
    page.evaluate(
        """(b64) => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const data = new DataTransfer(); data.items.add(new File([bytes], 'pasted.png', {type: 'image/png'}));
            document.querySelector('.tb-input').dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true})); }""",
        base64.b64encode(PNG).decode(),
    )
    pasted = page.locator(".tb-file[data-seq]").filter(has_text="pasted.png")
    expect(pasted).to_have_count(1)
    assert page.evaluate("() => document.querySelectorAll('img.tb-thumb')[1].naturalWidth") == 1
    page.reload()  # after a reload the thumbnail is fetched with the conversation's token
    expect(page.locator(".tb-file img.tb-thumb")).to_have_count(2)
    events = [e for e in _events_now(live_server, state(page)["conversationId"]) if e["type"] == "attachment"]
    assert [e["filename"] for e in events] == ["屏幕截图.png", "pasted.png"]


def test_an_html_file_named_png_is_refused(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    say(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    page.locator(".tb-form input[type=file]").set_input_files(
        files=[{"name": "evil.png", "mimeType": "image/png", "buffer": b"<html><script>alert(1)</script>"}]
    )
    expect(page.locator(".tb-file.tb-failed")).to_contain_text("上传失败")
