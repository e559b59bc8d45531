"""The widget in a real browser, against a real server."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis as sync_redis
import redis.asyncio as aredis
from playwright.sync_api import expect

from bot.store.conversations import ConversationStore
from bot.store.keys import Keys
from tests.browser.conftest import LiveServer
from tests.identity_tokens import identity_token


def send(page: Any, text: str) -> None:
    page.get_by_label("描述您遇到的问题…").fill(text)
    page.keyboard.press("Enter")


def state(page: Any) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate("() => window.Triagebot._state")
    return result


def test_kb_question_in_chinese_then_not_helpful(page: Any, live_server: LiveServer, tmp_path: Path) -> None:
    page.goto(live_server.url + "/")
    send(page, "发票查验失败，提示查验结果不一致")
    answer = page.locator(".tb-bot").filter(has_text="可以这样处理")
    expect(answer).to_be_visible()
    expect(answer.get_by_role("button", name="有帮助")).to_be_visible()
    expect(answer.locator("a.tb-card")).to_have_attribute("href", "/kb/zh-verify-info-mismatch")
    answer.get_by_role("button", name="没帮助").click()
    offer = page.locator(".tb-bot").filter(has_text="转接人工客服")
    expect(offer.get_by_role("button", name="转人工客服")).to_be_visible()
    page.screenshot(path=str(tmp_path / "kb-answer.png"))


def test_urgent_message_shows_queue_status(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    send(page, "系统打不开了，全公司都用不了，月底要结账！")
    status = page.locator(".tb-status.tb-queue")
    expect(status).to_contain_text("前面还有")
    expect(page.locator(".tb-system").filter(has_text="已为您转接人工客服")).to_be_visible()


def test_messages_render_as_text_not_html(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    hostile = '<img src=x onerror="window.pwned=1"><b>bold</b>'
    send(page, hostile)
    expect(page.locator(".tb-user").filter(has_text="<img src=x")).to_be_visible()
    expect(page.locator(".tb-bot").last).to_be_visible()
    assert page.locator(".tb-log img").count() == 0 and page.locator(".tb-log b").count() == 0
    assert page.evaluate("() => window.pwned") is None


def test_killed_websocket_resumes_without_gaps(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    send(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    conversation = state(page)["conversationId"]
    page.evaluate("() => { window.__old = window.Triagebot._socket(); window.__old.close(); }")
    expect(page.locator(".tb-status")).to_contain_text("重新连接")
    # While the socket is down an agent-side event is written; the reconnect must replay it once.
    # Playwright's sync API owns this thread's event loop: write from a thread of our own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            asyncio.run, _append_agent_message(live_server, conversation, "客服小王：您好，我来帮您看看")
        ).result()
    send(page, "谢谢")
    expect(page.locator(".tb-agent").filter(has_text="客服小王")).to_have_count(1)
    expect(page.locator(".tb-bot").filter(has_text="不客气")).to_be_visible()
    seq = [
        int(s) for s in page.locator(".tb-log [data-seq]").evaluate_all("els => els.map(e => e.dataset.seq)")
    ]
    assert seq == list(range(1, len(seq) + 1)), seq  # every event once, in order
    expect(page.locator(".tb-status")).not_to_contain_text("重新连接")


def test_conversation_survives_a_page_reload(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    send(page, "怎么导出报销明细")
    expect(page.locator(".tb-bot").first).to_be_visible()
    before = page.locator(".tb-msg").count()
    page.reload()
    expect(page.locator(".tb-msg")).to_have_count(before)


async def _append_agent_message(server: LiveServer, conversation_id: str, text: str) -> None:
    await _append(server, conversation_id, {"type": "message", "role": "agent", "text": text})


def test_csat_after_resolution(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/")
    send(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    conversation = state(page)["conversationId"]
    with ThreadPoolExecutor(1) as pool:
        for event in ({"type": "resolved", "role": "system"}, {"type": "csat_request", "role": "system"}):
            pool.submit(asyncio.run, _append(live_server, conversation, event)).result()
    expect(page.locator(".tb-status")).to_contain_text("对话已结束")
    page.get_by_role("button", name="4 / 5").click()
    page.get_by_label("还有什么想告诉我们的？（可选）").fill("客服很耐心")
    page.get_by_role("button", name="提交评价").click()
    expect(page.locator(".tb-csat")).to_contain_text("感谢您的评价")
    with ThreadPoolExecutor(1) as pool:
        events = pool.submit(asyncio.run, _events(live_server, conversation)).result()
    assert any(e["type"] == "csat" and e["score"] == 4 and e["comment"] == "客服很耐心" for e in events)


async def _append(server: LiveServer, conversation_id: str, event: dict[str, Any]) -> None:
    client = aredis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        await ConversationStore(client, server.prefix).append(conversation_id, event)
    finally:
        await client.aclose()


async def _events(server: LiveServer, conversation_id: str) -> list[dict[str, Any]]:
    client = aredis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        for _ in range(50):
            events = await ConversationStore(client, server.prefix).events_after(conversation_id)
            if any(e["type"] == "csat" for e in events):
                return events
            await asyncio.sleep(0.1)
        return events
    finally:
        await client.aclose()


# ------------------------------------------------------------------------------ identity tokens
def _host_page(page: Any, server: LiveServer, config: str) -> None:
    """A host SaaS page embedding the widget with its own config (served on the app's origin)."""
    html = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"></head><body>
<script>window.TriagebotConfig = {config};</script><script src="/static/widget.js" defer></script></body></html>"""
    # Written into a page the app really served: a document fulfilled by page.route has no address space
    # of its own, and Chromium's local-network-access checks then refuse its websocket to loopback.
    page.goto(server.url + "/healthz")
    page.set_content(html)


def _record(server: LiveServer, conversation_id: str) -> dict[str, str]:
    client = sync_redis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        record: dict[str, str] = client.hgetall(Keys(server.prefix).conversation(conversation_id))
        return record
    finally:
        client.close()


def test_expired_identity_token_is_refreshed_once(page: Any, live_server: LiveServer) -> None:
    expired = identity_token("host-user-1", tenant="acme", vip=2, expires_in=-3600)
    fresh = identity_token("host-user-1", tenant="acme", vip=2)
    _host_page(
        page,
        live_server,
        f"""{{server: "", lang: "zh", open: true, identityToken: {json.dumps(expired)},
            getIdentityToken: function () {{ window.__refreshes = (window.__refreshes || 0) + 1;
                                             return Promise.resolve({json.dumps(fresh)}); }}}}""",
    )
    send(page, "你好")
    expect(page.locator(".tb-bot").first).to_be_visible()
    assert page.evaluate("() => window.__refreshes") == 1
    record = _record(live_server, state(page)["conversationId"])
    assert (record["verified"], record["user"], record["tenant"], record["vip"]) == (
        "1",
        "host-user-1",
        "acme",
        "2",
    )


def test_without_a_refresh_callback_the_widget_asks_for_a_reload(page: Any, live_server: LiveServer) -> None:
    expired = identity_token("host-user-2", expires_in=-3600)
    _host_page(
        page, live_server, f'{{server: "", lang: "zh", open: true, identityToken: {json.dumps(expired)}}}'
    )
    send(page, "你好")
    expect(page.locator(".tb-status")).to_contain_text("请刷新页面后重试")
    assert state(page)["conversationId"] is None  # never silently anonymous


def test_a_stored_conversation_of_another_user_is_not_resumed(page: Any, live_server: LiveServer) -> None:
    def as_user(sub: str) -> str:
        token = json.dumps(identity_token(sub))
        _host_page(page, live_server, f'{{server: "", lang: "zh", open: true, identityToken: {token}}}')
        send(page, "你好")
        expect(page.locator(".tb-bot").first).to_be_visible()
        conversation: str = state(page)["conversationId"]
        return conversation

    alice = as_user("alice")
    assert as_user("alice") == alice  # the same user resumes
    bob = as_user("bob")
    assert bob != alice and _record(live_server, bob)["user"] == "bob"
