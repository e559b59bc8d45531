"""The analytics page in a real browser against a real server: a supervisor signs in and sees the figures
as charts, in Chinese and in English, and exports them as CSV; an agent is told the page is not for them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aredis
from playwright.sync_api import expect

from handoff_gateway.agents import AgentStore
from tests.browser.conftest import VIEWPORTS, LiveServer, overlap, start_server

expect.set_options(timeout=15_000)


async def _add(server: LiveServer, name: str, role: str) -> None:
    client = aredis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        await AgentStore(client, server.prefix).add(name, "password-123", role, ("zh", "en"), 3)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path) -> Iterator[LiveServer]:
    """Three conversations (two answered, one the bot did not understand), rolled up."""
    env = {"TRIAGE_ON_DUTY": "true", "TRIAGE_ANALYTICS_INTERVAL_SECONDS": "0.3"}
    for live in start_server(tmp_path_factory, redis_url, model_dir, env):
        with ThreadPoolExecutor(1) as pool:
            for name, role in (("boss", "supervisor"), ("wang", "agent")):
                pool.submit(asyncio.run, _add(live, name, role)).result()
        with httpx.Client(base_url=live.url, timeout=30) as http:
            for text in (
                "发票查验失败怎么办",
                "invoice verification failed, what should I do",
                "啊吧啊吧嗯嗯咕噜",
            ):
                conv = http.post("/api/v1/conversations", json={}).json()
                said = http.post(
                    f"/api/v1/conversations/{conv['conversation_id']}/messages",
                    headers={"Authorization": f"Bearer {conv['token']}"},
                    json={"text": text, "client_msg_id": "m1"},
                )
                assert said.status_code == 200
            token = http.post(
                "/api/v1/agents/login", json={"name": "boss", "password": "password-123"}
            ).json()
            headers = {"Authorization": f"Bearer {token['token']}"}
            deadline = time.monotonic() + 20
            while http.get("/api/v1/analytics", headers=headers).json()["conversations"] < 3:
                assert time.monotonic() < deadline, "the rollup did not count the conversations"
                time.sleep(0.2)
        yield live


def sign_in(page: Any, server: LiveServer, name: str) -> None:
    page.goto(server.url + "/console/analytics")
    page.locator("#login-name").fill(name)
    page.locator("#login-password").fill("password-123")
    page.locator("#login-form button[type=submit]").click()


def test_a_supervisor_sees_the_figures_in_both_languages(browser: Any, server: LiveServer) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    try:
        sign_in(page, server, "boss")
        cards = page.locator("#cards")
        expect(cards).to_contain_text("会话数")
        expect(cards.locator(".figure").first.locator("b")).to_have_text("3")
        expect(cards).to_contain_text("机器人解决率")
        expect(cards).to_contain_text("66.7%")
        expect(page.locator("figcaption").first).to_have_text("每日会话")
        expect(page.locator("#chart-daily svg rect.bar")).to_have_count(7)
        expect(page.locator("#chart-intents svg")).to_contain_text("invoice_verification_failed")
        expect(page.locator("#chart-fallbacks svg")).to_contain_text("啊吧啊吧嗯嗯咕噜")
        expect(page.locator("#table-dimensions")).to_contain_text("网页")
        expect(page.locator("#gaps")).to_contain_text("啊吧啊吧嗯嗯咕噜")

        page.get_by_role("button", name="English").click()
        expect(cards).to_contain_text("Bot-answered rate")
        expect(page.locator("figcaption").first).to_have_text("Conversations per day")
        expect(page.locator("#table-dimensions")).to_contain_text("Web")
        expect(page.locator("html")).to_have_attribute("lang", "en")

        page.locator("#language").select_option("en")
        page.get_by_role("button", name="Refresh").click()
        expect(cards.locator(".figure").first.locator("b")).to_have_text("1")

        with page.expect_download() as download:
            page.get_by_role("button", name="Export CSV").click()
        csv = Path(download.value.path()).read_text(encoding="utf-8")
        assert "summary,conversations,1" in csv and "summary,language,en" in csv
    finally:
        context.close()


def test_an_agent_is_told_analytics_are_for_supervisors(browser: Any, server: LiveServer) -> None:
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    try:
        sign_in(page, server, "wang")
        expect(page.locator("#status")).to_have_text("仅限主管查看数据分析。")
        expect(page.locator("#figures")).to_be_hidden()
    finally:
        context.close()


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_layout_in_both_languages(
    browser: Any, server: LiveServer, tmp_path: Path, locale: str, viewport: str
) -> None:
    """The figures, the charts and the filters fit the screen without overlapping, in both languages; a
    screenshot of each is kept for a person to look at."""
    size = VIEWPORTS[viewport]
    context = browser.new_context(locale=locale, viewport=size)
    page = context.new_page()
    try:
        sign_in(page, server, "boss")
        expect(page.locator("#chart-daily svg rect.bar")).to_have_count(7)
        expect(page.locator("#export")).to_have_text("导出 CSV" if locale == "zh-CN" else "Export CSV")
        page.screenshot(path=str(tmp_path / f"analytics-{locale}-{viewport}.png"), full_page=True)
        charts = page.locator("figure.chart")
        boxes = [charts.nth(i).bounding_box() for i in range(charts.count())]
        boxes += [page.locator(s).bounding_box() for s in ("#filters", "#cards")]
        for box in boxes:
            assert box is not None and box["width"] > 0 and box["height"] > 0
            assert box["x"] >= -1 and box["x"] + box["width"] <= size["width"] + 1, box
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a is not None and b is not None and not overlap(a, b), (a, b)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
