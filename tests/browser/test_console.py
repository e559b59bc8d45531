"""The agent console and the widget together, in a real browser against a real server: an urgent message
reaches the top of the queue, the agent accepts, they talk both ways, the agent resolves, the user rates."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aredis
from playwright.sync_api import expect

from handoff_gateway.agents import AgentStore
from tests.browser.conftest import LiveServer, start_server


@pytest.fixture(scope="module")
def desk_server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path
) -> Iterator[LiveServer]:
    """Presence decides who is on duty, as in production."""
    yield from start_server(tmp_path_factory, redis_url, model_dir, {})


async def _add_agent(server: LiveServer, name: str) -> None:
    client = aredis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        await AgentStore(client, server.prefix).add(
            name, "password-123", "agent", ("zh", "en"), 3, "客服小王"
        )
    finally:
        await client.aclose()


def test_urgent_message_accepted_answered_resolved_and_rated(
    browser: Any, desk_server: LiveServer, tmp_path: Path
) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _add_agent(desk_server, "wang")).result()
    agent_ctx, user_ctx = browser.new_context(locale="zh-CN"), browser.new_context(locale="zh-CN")
    console, widget = agent_ctx.new_page(), user_ctx.new_page()
    for page in (console, widget):
        page.set_default_timeout(15_000)
    try:
        console.goto(desk_server.url + "/console")
        console.get_by_label("账号").fill("wang")
        console.get_by_label("密码").fill("password-123")
        console.get_by_role("button", name="登录").click()
        expect(console.locator("#me")).to_contain_text("客服小王")

        widget.goto(desk_server.url + "/")
        widget.get_by_label("描述您遇到的问题…").fill("系统打不开了，全公司都用不了，月底要结账！")
        widget.keyboard.press("Enter")
        expect(widget.locator(".tb-status")).to_contain_text("前面还有 0 位")

        first = console.locator("#queue-list li").first
        expect(first.locator(".badge").first).to_have_text("紧急")  # words, not the code "urgent"
        expect(first.locator(".sla")).to_contain_text("首响剩余")
        offer = console.locator(".offer")
        expect(offer).to_be_visible()
        offer.get_by_role("button", name="接入").click()
        expect(widget.locator(".tb-status")).to_contain_text("客服小王 已接入")

        reply = console.get_by_label("输入回复…")
        reply.fill("您好，我是客服小王，正在为您排查")
        reply.press("Enter")
        expect(widget.locator(".tb-agent")).to_contain_text("正在为您排查")
        expect(widget.locator(".tb-agent .tb-who")).to_have_text("客服小王")  # the agent's name, as text
        widget.get_by_label("描述您遇到的问题…").fill("好的，谢谢，我们在上海")
        widget.keyboard.press("Enter")
        expect(console.locator(".ev.user").filter(has_text="我们在上海")).to_be_visible()
        expect(console.locator(".context")).to_contain_text("紧急")
        console.screenshot(path=str(tmp_path / "console.png"))

        console.get_by_role("button", name="结束会话").click()
        expect(widget.locator(".tb-status")).to_contain_text("对话已结束")
        widget.get_by_role("button", name="5 / 5").click()
        widget.get_by_role("button", name="提交评价").click()  # the rating has a comment box: sent together
        expect(widget.locator(".tb-csat")).to_contain_text("感谢您的评价")
        widget.screenshot(path=str(tmp_path / "widget.png"))
    finally:
        agent_ctx.close()
        user_ctx.close()
