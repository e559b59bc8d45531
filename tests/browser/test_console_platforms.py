"""The console with a WeCom user, in a real browser: the context card names the platform, corp and member,
an image the member sent opens from the transcript (fetched with the agent's token), and a reply that could
not be delivered is shown to the agent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer, start_server
from tests.browser.test_console import _add_agent
from tests.channels.wecom_client import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, WeComMember
from tests.fakes.wecom import FakeWeCom

IMAGE = b"\x89PNG\r\n\x1a\n a screenshot of the error"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom(corpid=CORP_ID, corpsecret=SECRET, agentid=AGENT_ID) as platform:
        yield platform


@pytest.fixture(scope="module")
def wecom_server(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path, fake: FakeWeCom
) -> Iterator[LiveServer]:
    env = {
        "TRIAGE_WECOM_TOKEN": TOKEN,
        "TRIAGE_WECOM_AES_KEY": AES_KEY,
        "TRIAGE_WECOM_CORP_ID": CORP_ID,
        "TRIAGE_WECOM_AGENT_ID": str(AGENT_ID),
        "TRIAGE_WECOM_SECRET": SECRET,
        "TRIAGE_WECOM_API_BASE": fake.url,
        "TRIAGE_OUTBOX_MAX_ATTEMPTS": "2",
        "TRIAGE_OUTBOX_BACKOFF_SECONDS": "0.05",
    }
    yield from start_server(tmp_path_factory, redis_url, model_dir, env)


def test_a_wecom_members_image_and_an_undelivered_reply_in_the_console(
    browser: Any, wecom_server: LiveServer, fake: FakeWeCom
) -> None:
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _add_agent(wecom_server, "zhou")).result()
    fake.add_media("IMG-1", IMAGE, "image/png", "error-screenshot.png")
    http = httpx.Client(base_url=wecom_server.url, timeout=10)
    member = WeComMember(http, "caiwu-li")
    console = browser.new_context(locale="zh-CN", accept_downloads=True).new_page()
    console.set_default_timeout(15_000)
    try:
        console.goto(wecom_server.url + "/console")
        console.get_by_label("账号").fill("zhou")
        console.get_by_label("密码").fill("password-123")
        console.get_by_role("button", name="登录").click()
        expect(console.locator("#me")).to_contain_text("客服小王")

        assert member.say("我要转人工客服").status_code == 200
        offer = console.locator(".offer")
        expect(offer).to_be_visible()
        offer.get_by_role("button", name="接入").click()
        expect(console.locator(".context")).to_contain_text(f"企业微信 · default · {CORP_ID} · caiwu-li")

        assert member.send("image", PicUrl="http://example.invalid/p.png", MediaId="IMG-1").status_code == 200
        link = console.locator("button.attachment").filter(has_text="error-screenshot.png")
        expect(link).to_be_visible()
        with console.expect_download() as download:
            link.click()
        assert Path(download.value.path()).read_bytes() == IMAGE

        fake.down()  # WeCom's API is unreachable: the agent must see that the reply did not arrive
        reply = console.get_by_label("输入回复…")
        reply.fill("请问是哪个页面报错？")
        reply.press("Enter")
        expect(console.locator(".ev").filter(has_text="消息未送达")).to_be_visible(timeout=30_000)
    finally:
        fake.up()
        console.context.close()
        http.close()
