"""Nobody on duty, in the browser: the widget asks how to reach the user, shows "我的工单" with each ticket's
status, and marks the user's messages delivered and read. A real server (off duty) and a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, start_server
from tests.browser.test_widget import state
from tests.browser.test_widget_issue13 import KB_QUESTION, append, say

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module")
def off_duty(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path
) -> Iterator[LiveServer]:
    yield from start_server(tmp_path_factory, redis_url, model_dir, {"TRIAGE_ON_DUTY": "false"})


def test_the_user_leaves_an_email_for_the_answer_and_sees_it_after_a_reload(
    page: Any, off_duty: LiveServer
) -> None:
    page.goto(off_duty.url + "/")
    say(page, "转人工，发票一直上传失败 <img src=x onerror=alert(1)>")
    form = page.locator(".tb-contact")
    expect(form).to_contain_text("现在无人值班")

    form.get_by_placeholder("邮箱或手机号").fill("not-an-address")
    form.get_by_role("button", name="提交").click()
    expect(form.locator(".tb-contact-note")).to_have_text("请输入有效的邮箱或手机号")
    form.get_by_placeholder("邮箱或手机号").fill("Wang.Li@Acme.com")
    form.get_by_role("button", name="提交").click()
    expect(form).to_have_text("有回复时我们会通过 w***@acme.com 通知您")

    page.reload()
    expect(page.locator(".tb-contact")).to_have_text("有回复时我们会通过 w***@acme.com 通知您")
    expect(page.locator(".tb-contact input")).to_have_count(0)

    page.get_by_role("button", name="我的工单").click()
    ticket = page.locator(".tb-ticket")
    expect(ticket).to_have_count(1)
    expect(ticket.locator(".tb-ticket-status")).to_have_text("待处理")
    expect(ticket).to_contain_text("w***@acme.com")
    expect(ticket).to_contain_text("首次回复截止")
    expect(ticket.locator(".tb-ticket-summary")).to_contain_text(
        "<img src=x onerror=alert(1)>"
    )  # text, not HTML
    expect(page.locator(".tb-ticket img")).to_have_count(0)
    expect(page.locator(".tb-input")).to_be_hidden()
    page.get_by_role("button", name="返回对话").click()
    expect(page.locator(".tb-input")).to_be_visible()


def test_in_english_the_form_and_the_list_are_in_english(browser_context: Any, off_duty: LiveServer) -> None:
    english = browser_context(locale="en-US")
    english.goto(off_duty.url + "/")
    say(english, "put me through to a person, my login keeps failing")
    form = english.locator(".tb-contact")
    expect(form).to_contain_text("No agent is on duty now")
    form.get_by_placeholder("E-mail or mobile number").fill("138 1234 5678")
    form.get_by_role("button", name="Save").click()
    expect(form).to_contain_text("*******5678")
    english.get_by_role("button", name="My tickets").click()
    expect(english.locator(".tb-ticket-status")).to_have_text("Open")


def test_without_tickets_the_list_says_so(page: Any, off_duty: LiveServer) -> None:
    page.goto(off_duty.url + "/")
    say(page, KB_QUESTION)
    expect(page.locator(".tb-bot").filter(has_text="可以这样处理")).to_be_visible()
    page.get_by_role("button", name="我的工单").click()
    expect(page.locator(".tb-tickets .tb-empty")).to_have_text("还没有工单")


def test_messages_are_marked_delivered_then_read_when_answered(page: Any, off_duty: LiveServer) -> None:
    page.goto(off_duty.url + "/")
    say(page, KB_QUESTION)
    first = page.locator(".tb-user").first
    expect(first.locator(".tb-mark")).to_have_attribute("data-mark", "read")  # the bot answered it
    expect(first.locator(".tb-mark")).to_contain_text("已读")

    say(page, "转人工")  # a ticket: only the system's notice follows, nobody has read it yet
    expect(page.locator(".tb-contact")).to_be_visible()
    waiting = page.locator(".tb-user").last
    expect(waiting.locator(".tb-mark")).to_have_attribute("data-mark", "delivered")
    expect(waiting.locator(".tb-mark")).to_contain_text("已送达")

    append(
        off_duty,
        state(page)["conversationId"],
        {"type": "message", "role": "agent", "text": "您好，我来看看"},
    )
    expect(waiting.locator(".tb-mark")).to_have_attribute("data-mark", "read")
