"""The agent console of issue 13, in a real browser against a real server: typing is an indicator both ways,
presence survives a reload, the context card is about the handoff and in words, KB answers and saved replies
paste at the cursor, the conversation list, tabs, tags, rating, notifications, shortcuts and the supervisor's
board — and hostile text stays text."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aredis
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from handoff_gateway.agents import AgentStore
from tests.browser.conftest import VIEWPORTS, LiveServer, overlap, start_server
from tests.identity_tokens import SECRET as IDENTITY_SECRET
from tests.identity_tokens import identity_token

PASSWORD = "password-123"
LONG_WORD = "长" * 10_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis_url: str, model_dir: Path) -> Iterator[LiveServer]:
    """Presence decides who is on duty; messages may be long enough for the 10,000-character word."""
    env = {"TRIAGE_IDENTITY_SECRET": IDENTITY_SECRET, "TRIAGE_MAX_MESSAGE_CHARS": "12000"}
    yield from start_server(tmp_path_factory, redis_url, model_dir, env)


async def _add(server: LiveServer, name: str, role: str, skills: tuple[str, ...], display: str) -> None:
    client = aredis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        await AgentStore(client, server.prefix).add(name, PASSWORD, role, skills, 3, display)
    finally:
        await client.aclose()


def add_agent(
    server: LiveServer, role: str = "agent", skills: tuple[str, ...] = ("zh",), display: str = ""
) -> str:
    """A new agent (a unique name, so tests do not share one); returns the name."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _add(server, name, role, skills, display or name)).result()
    return name


def sign_in(
    browser: Any, server: LiveServer, name: str, locale: str = "zh-CN", init_script: str = "", **context: Any
) -> Page:
    ctx = browser.new_context(locale=locale, **context)
    if init_script:
        ctx.add_init_script(init_script)
    page: Page = ctx.new_page()
    page.set_default_timeout(15_000)
    page.goto(server.url + "/console")
    page.locator("#login-name").fill(name)
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator("#me")).to_contain_text("(")
    return page


class Customer:
    """A user talking over the REST API (verified when ``claims`` are given)."""

    def __init__(self, server: LiveServer, **claims: Any) -> None:
        self.url = server.url
        body: dict[str, Any] = {"channel": "web"}
        if claims:
            body["identity_token"] = identity_token(
                claims.pop("sub", f"host-{uuid.uuid4().hex[:6]}"), **claims
            )
        created = httpx.post(f"{self.url}/api/v1/conversations", json=body, timeout=30)
        assert created.status_code == 201, created.text
        self.id, self.token = created.json()["conversation_id"], created.json()["token"]

    def say(self, text: str) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/api/v1/conversations/{self.id}/messages",
            json={"text": text, "client_msg_id": uuid.uuid4().hex},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def take(console: Page, cid: str) -> None:
    """Take the conversation from the queue and wait for its tab's card."""
    console.locator(f'#queue-list li[data-conversation="{cid}"] .take').click()
    expect(
        console.locator(f'.pane[data-conversation="{cid}"] .context [data-section="summary"]')
    ).to_be_visible()


def pane(console: Page, cid: str) -> Any:
    return console.locator(f'.pane[data-conversation="{cid}"]')


def close(*pages: Page) -> None:
    for page in pages:
        page.context.close()


# ---------------------------------------------------------------------------------------------- bugs
def test_typing_is_a_transient_indicator_both_ways(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server))
    widget = browser.new_context(locale="zh-CN").new_page()
    widget.set_default_timeout(15_000)
    try:
        widget.goto(server.url + "/")
        box = widget.get_by_label("描述您遇到的问题…")
        box.fill("转人工")
        box.press("Enter")
        expect(widget.locator(".tb-status")).to_be_visible()
        cid = widget.evaluate(
            "() => Object.values(localStorage).map(v => { try { return JSON.parse(v).conversationId } "
            "catch (e) { return null } }).find(Boolean)"
        )
        take(console, cid)
        expect(widget.locator(".tb-status")).to_contain_text("已接入")

        # Typing, not sending — for longer than the widget's 3 s between two typing signals.
        box.press_sequentially("我的发票一直查验失败", delay=400)
        indicator = pane(console, cid).locator(".typing-indicator")
        expect(indicator).to_be_visible()
        expect(indicator).to_have_text("用户正在输入…")
        expect(pane(console, cid).locator(".ev").filter(has_text="typing")).to_have_count(0)
        expect(indicator).to_be_hidden(timeout=8_000)  # it goes away by itself
        expect(pane(console, cid).locator(".ev").filter(has_text="typing")).to_have_count(0)

        pane(console, cid).get_by_label("输入回复…").press_sequentially("您好", delay=30)
        expect(widget.locator(".tb-typing")).to_have_class(
            "tb-typing tb-visible"
        )  # the user sees the agent typing
    finally:
        close(console, widget)


def test_presence_chosen_in_the_console_survives_a_reload(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server))
    try:
        expect(console.locator("#presence")).to_have_value("online")  # signed in to take chats
        console.locator("#presence").select_option("away")
        console.wait_for_timeout(300)
        console.reload()
        expect(console.locator("#me")).to_contain_text("(")
        expect(console.locator("#presence")).to_have_value("away")
    finally:
        close(console)


def test_a_supervisor_stays_offline_and_sees_the_board_first(
    browser: Any, server: LiveServer, tmp_path: Path
) -> None:
    console = sign_in(browser, server, add_agent(server, role="supervisor", display="主管老陈"))
    waiting = Customer(server)
    waiting.say("系统打不开了，全公司都用不了，我要转人工")
    try:
        expect(console.locator("#presence")).to_have_value("offline")
        board = console.locator("#board")
        expect(board).to_be_visible()
        expect(board.locator(".board-grid th").first).to_have_text("排队")
        expect(board.locator(".board-grid")).to_contain_text("紧急")
        expect(board.locator(".agent-row").filter(has_text="主管老陈")).to_contain_text("离线")
        board_box, layout_box = board.bounding_box(), console.locator(".layout").bounding_box()
        assert (
            board_box["y"] + board_box["height"] <= layout_box["y"] + 1
        )  # above the work, not below the fold
        assert board_box["y"] < 200
        urgent = board.locator('td[data-group="zh"][data-severity="urgent"]')
        expect(urgent.locator(".sla").first).to_have_text(re.compile(r"^-?\d+:\d\d$"))  # a live SLA countdown
        console.screenshot(path=str(tmp_path / "board.png"))
    finally:
        close(console)


def test_the_context_card_is_about_the_handoff_and_in_words(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server))
    sub = f"host-{uuid.uuid4().hex[:6]}"
    earlier = Customer(server, sub=sub, name="李雷", tenant="Acme 财务部", vip=2, email="lilei@acme.example")
    earlier.say("系统打不开了，我要转人工")  # an earlier conversation of the same customer
    user = Customer(server, sub=sub, name="李雷", tenant="Acme 财务部", vip=2, email="lilei@acme.example")
    user.say("发票查验失败怎么办")
    user.say("系统打不开了，全公司都用不了，我要转人工")
    user.say("你好")  # the last message is a greeting: not what the handoff was about
    try:
        take(console, user.id)
        card = pane(console, user.id).locator(".context")
        summary = card.locator('[data-section="summary"]')
        expect(summary.locator('[data-fact="intent"]')).to_contain_text("系统无法访问")
        expect(summary.locator('[data-fact="severity"]')).to_have_text("紧急")
        expect(summary.locator('[data-fact="reason"]')).to_have_text("用户要求人工服务")
        expect(summary.locator(".trigger")).to_have_text("系统打不开了，全公司都用不了，我要转人工")
        expect(summary.locator(".trigger-words mark").filter(has_text="全公司")).to_be_visible()
        expect(summary).to_contain_text("发票查验失败怎么办")  # what the user asked before
        customer = card.locator('[data-section="customerPanel"]')
        expect(customer.locator(".customer-name")).to_contain_text("李雷")
        expect(customer.locator('[data-fact="company"]')).to_have_text("Acme 财务部")
        expect(customer.locator('[data-fact="vip"]')).to_have_text("VIP 2")
        expect(customer.locator('[data-fact="email"]')).to_have_text("l***@acme.example")
        expect(customer.locator('[data-fact="channel"]')).to_have_text("网页")
        expect(customer.locator('[data-fact="language"]')).to_have_text("中文")
        expect(customer.locator(".history li")).to_have_count(1)
        expect(customer.locator(".history li")).to_contain_text("系统无法访问")
        expect(customer.locator(".history li")).to_contain_text(re.compile("排队中|工单待处理"))
        expect(console.locator(f'#tabs [data-conversation="{user.id}"]')).to_have_text("李雷")  # not a hex id
        text = card.inner_text()
        for code in ("greet", "system_outage", "user_request", "urgent", "web", "zh"):
            assert code not in text, code
        expect(card).not_to_contain_text("0.9")  # confidence as a percentage, not a raw float

        console.locator("#desk-lang").click()  # English, the same card
        expect(summary.locator('[data-fact="intent"]')).to_contain_text("System unavailable")
        expect(summary.locator('[data-fact="reason"]')).to_have_text("The user asked for a person")
        expect(customer.locator('[data-fact="channel"]')).to_have_text("Web")
        expect(console.locator(".topbar")).to_contain_text("Sign out")
        expect(console.locator("#filters")).to_contain_text("Unassigned")
        # the presence choices are the server's presence table (handoff_gateway/labels.py), not a second copy
        expect(console.locator('#presence option[value="away"]')).to_have_text("Away")
        console.locator("#desk-lang").click()
        expect(console.locator('#presence option[value="away"]')).to_have_text("离开")
    finally:
        close(console)


def test_kb_answers_are_all_listed_and_paste_at_the_cursor(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server))
    user = Customer(server)
    user.say("我要转人工")
    try:
        take(console, user.id)
        draft = pane(console, user.id).get_by_label("输入回复…")
        draft.fill("您好，\n谢谢")
        draft.evaluate("ta => ta.setSelectionRange(4, 4)")  # the cursor between the two lines
        kb = pane(console, user.id).get_by_label("知识库快捷回复")
        kb.fill("发票")
        kb.press("Enter")
        results = pane(console, user.id).locator("ul.canned li")
        expect(results.nth(5)).to_be_visible()  # not cut off after four
        title = results.first.inner_text()
        assert title
        results.first.get_by_role("button").click()
        value = draft.input_value()
        assert value.startswith("您好，\n1. "), value
        assert value.endswith("谢谢"), value
    finally:
        close(console)


# ------------------------------------------------------------------------------------------ features
def test_saved_replies_from_the_supervisor_paste_into_the_agents_draft(
    browser: Any, server: LiveServer
) -> None:
    boss = add_agent(server, role="supervisor")
    token = httpx.post(f"{server.url}/api/v1/agents/login", json={"name": boss, "password": PASSWORD}).json()[
        "token"
    ]
    reply = {"title": "排查中（团队）", "text": "已为您提交技术排查，预计 2 小时内回复。", "language": "zh"}
    created = httpx.post(
        f"{server.url}/api/v1/replies", json=reply, headers={"Authorization": f"Bearer {token}"}
    )
    assert created.status_code == 201, created.text
    console = sign_in(browser, server, add_agent(server))
    user = Customer(server)
    user.say("我要转人工")
    try:
        take(console, user.id)
        saved = pane(console, user.id).locator('[data-section="saved"]')
        saved.get_by_label("团队快捷回复").fill("排查")
        saved.get_by_role("button", name="排查中（团队）").click()
        expect(pane(console, user.id).get_by_label("输入回复…")).to_have_value(
            "已为您提交技术排查，预计 2 小时内回复。"
        )
    finally:
        close(console)


def test_list_filters_search_tabs_unread_tags_and_rating(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server))
    marker = uuid.uuid4().hex[:8]
    first, second = Customer(server, name="王芳"), Customer(server, name="赵强")
    first.say(f"转人工，报销单 {marker} 提交失败")
    second.say("转人工")
    try:
        take(console, first.id)
        take(console, second.id)  # the second tab is active now
        mine = console.locator("#conv-list")
        console.locator('#filters [data-view="mine"]').click()
        expect(mine.locator(".conv-row .row-name").filter(has_text="王芳")).to_be_visible()
        expect(mine.locator(".conv-row .row-name").filter(has_text="赵强")).to_be_visible()

        first.say("还在吗？")  # into the tab that is not active: an unread count
        expect(console.locator(f'#tabs [data-conversation="{first.id}"] .unread')).to_have_text("1")
        console.locator(f'#tabs [data-conversation="{first.id}"]').click()
        expect(console.locator(f'#tabs [data-conversation="{first.id}"] .unread')).to_be_hidden()
        expect(pane(console, first.id).locator(".ev.user time").last).to_have_text(re.compile(r"^\d\d:\d\d$"))

        tag_input = pane(console, first.id).get_by_label("添加标签（回车）")
        tag_input.fill("回访")
        tag_input.press("Enter")
        expect(pane(console, first.id).locator('[data-section="tags"] .tag')).to_have_text("回访×")

        pane(console, first.id).get_by_role("button", name="结束会话").click()
        expect(console.locator(f'#tabs [data-conversation="{first.id}"]')).to_have_count(0)
        ws_rate(server, first)
        console.locator('#filters [data-view="resolved"]').click()
        row = console.locator("#conv-list .conv-row").filter(has_text="王芳")
        expect(row).to_contain_text("★4")
        expect(row.locator(".tag")).to_have_text("回访")
        row.click()
        expect(pane(console, first.id).locator('[data-section="rating"] .stars')).to_contain_text("4/5")
        expect(pane(console, first.id).locator(".read-only")).to_be_visible()

        console.locator("#list-search").fill(marker)  # search over past conversations, by what was said
        expect(console.locator("#conv-list .conv-row")).to_have_count(1)
        expect(console.locator("#conv-list .conv-row .row-name")).to_have_text("王芳")
    finally:
        close(console)


def ws_rate(server: LiveServer, customer: Customer, score: int = 4) -> None:
    """The user rates over the widget's websocket (its csat frame)."""
    with connect(server.url.replace("http", "ws", 1) + "/ws/chat") as ws:
        ws.send(json.dumps({"type": "hello", "conversation_id": customer.id, "token": customer.token}))
        ws.send(json.dumps({"type": "csat", "score": score, "comment": "很快"}))
        for _ in range(50):
            frame = json.loads(ws.recv(timeout=10))
            if frame.get("type") == "csat":
                return
    raise AssertionError("the rating was not stored")


NOTIFICATION_STUB = """
window.__notes = []; window.__asked = 0;
window.Notification = function (title, options) { window.__notes.push({ title: title, body: options.body }); };
window.Notification.permission = "default";
window.Notification.requestPermission = function () {
  window.__asked++; window.Notification.permission = "granted"; return Promise.resolve("granted");
};
"""


def test_offers_sound_and_notify_once_alerts_are_turned_on(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server, skills=("en",)), init_script=NOTIFICATION_STUB)
    try:
        assert console.evaluate("() => window.__asked") == 0  # never asked without a gesture
        console.locator("#notify-toggle").click()
        expect(console.locator("#notify-toggle")).to_have_text("提醒已开启")
        assert console.evaluate("() => window.__asked") == 1
        Customer(server).say(
            "I need to talk to a human agent please"
        )  # the en queue: only this agent reads it
        expect(console.locator(".offer")).to_be_visible()
        notes = console.evaluate("() => window.__notes")
        assert notes and notes[0]["title"] == "新会话分配给您", notes
        assert "紧急" in notes[0]["body"] or "一般" in notes[0]["body"] or "重要" in notes[0]["body"]
        assert console.evaluate("() => window.TriageConsole.sounds") >= 1
    finally:
        close(console)


def test_keyboard_shortcuts_and_their_help(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server))
    users = [Customer(server), Customer(server)]
    for user in users:
        user.say("我要转人工")
    try:
        console.keyboard.press("?")
        help_box = console.locator("#help")
        expect(help_box).to_be_visible()
        expect(help_box).to_contain_text("Alt+A")
        expect(help_box).to_contain_text("结束当前会话")
        console.keyboard.press("Escape")
        expect(help_box).to_be_hidden()

        for count in (1, 2):
            expect(console.locator("#queue-list .take").first).to_be_visible()
            console.keyboard.press("Alt+A")
            expect(console.locator("#tabs [role=tab]")).to_have_count(count)
        tabs = console.locator("#tabs [role=tab]")
        expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
        console.keyboard.press("Alt+N")
        expect(tabs.nth(0)).to_have_attribute("aria-selected", "true")
        cid = tabs.nth(0).get_attribute("data-conversation")
        draft = pane(console, cid).get_by_label("输入回复…")
        draft.fill("马上为您处理")
        draft.press("Control+Enter")
        expect(pane(console, cid).locator(".ev.agent").filter(has_text="马上为您处理")).to_be_visible()
        console.keyboard.press("Alt+R")
        expect(console.locator(f'#tabs [data-conversation="{cid}"]')).to_have_count(0)
    finally:
        close(console)


REGIONS = (".topbar", ".side", ".transcript", ".compose textarea", ".context")


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_layout_in_both_languages(
    browser: Any, server: LiveServer, tmp_path: Path, locale: str, viewport: str
) -> None:
    size = VIEWPORTS[viewport]
    console = sign_in(browser, server, add_agent(server), locale=locale, viewport=size)
    user = Customer(server, name="布局测试")
    user.say("我要转人工")
    try:
        take(console, user.id)
        expect(console.locator("#logout")).to_have_text("退出" if locale == "zh-CN" else "Sign out")
        console.screenshot(path=str(tmp_path / f"console-{locale}-{viewport}.png"), full_page=True)
        boxes = {}
        for selector in REGIONS:
            region = console.locator(f'.pane[data-conversation="{user.id}"] {selector}').or_(
                console.locator(f"#desk > {selector}, .layout > {selector}")
            )
            expect(region.first).to_be_visible()
            box = region.first.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0, selector
            assert box["x"] >= -1 and box["x"] + box["width"] <= size["width"] + 1, (selector, box)
            boxes[selector] = box
        for i, a in enumerate(REGIONS):
            for b in REGIONS[i + 1 :]:
                assert not overlap(boxes[a], boxes[b]), (a, boxes[a], b, boxes[b])
        assert console.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        close(console)


HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">\u202eexe.txt' + "名" * 200
HOSTILE_COMPANY = "<script>window.__pwned=2</script>"
HOSTILE_TEXTS = ['<img src=x onerror="window.__pwned=3">', "\u202egnp.exe 转人工", LONG_WORD]


def test_hostile_text_is_rendered_as_text(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server))
    dialogs: list[str] = []
    console.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    user = Customer(server, name=HOSTILE_NAME, tenant=HOSTILE_COMPANY)
    user.say("转人工 <script>window.__pwned=4</script>")
    try:
        take(console, user.id)
        for text in HOSTILE_TEXTS:
            user.say(text)
        talk = pane(console, user.id)
        for text in HOSTILE_TEXTS:
            expect(talk.locator(".ev.user .text").filter(has_text=text[:30])).to_have_count(1)
        shown = talk.locator(".ev.user .text").evaluate_all("els => els.map(e => e.textContent)")
        assert set(HOSTILE_TEXTS) <= set(shown)
        expect(talk.locator(".customer-name bdi").first).to_have_text(HOSTILE_NAME)
        expect(talk.locator('[data-fact="company"]')).to_have_text(HOSTILE_COMPANY)
        expect(talk.locator(".trigger")).to_have_text("转人工 <script>window.__pwned=4</script>")
        expect(console.locator(f'#tabs [data-conversation="{user.id}"] .tab-name')).to_have_text(HOSTILE_NAME)
        console.locator('#filters [data-view="mine"]').click()
        row = console.locator(f'#conv-list .conv-row[data-conversation="{user.id}"]')
        expect(row.locator(".row-name")).to_have_text(HOSTILE_NAME)
        expect(row.locator(".row-company")).to_have_text(HOSTILE_COMPANY)

        assert console.evaluate("() => window.__pwned") is None
        assert dialogs == []
        expect(console.locator("#desk img, #desk script")).to_have_count(0)
        transcript = talk.locator(".transcript")
        assert transcript.evaluate("t => t.scrollWidth <= t.clientWidth + 1")  # the long word wraps inside
        long_box = talk.locator(".ev.user").filter(has_text="长长长").bounding_box()
        t_box = transcript.bounding_box()
        assert long_box["x"] + long_box["width"] <= t_box["x"] + t_box["width"] + 1
        isolated = talk.locator(".ev.user .text").first.evaluate("e => getComputedStyle(e).unicodeBidi")
        assert isolated == "isolate"  # an RTL override stays inside its own message
        assert console.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        close(console)


def test_an_agents_own_reply_can_be_made_an_article(browser: Any, server: LiveServer) -> None:
    console = sign_in(browser, server, add_agent(server))
    user = Customer(server)
    user.say("我要转人工")
    try:
        take(console, user.id)
        talk = pane(console, user.id)
        draft = talk.get_by_label("输入回复…")
        draft.fill("电子发票请在「发票夹」里点「重新查验」，每天最多五次。")
        draft.press("Enter")
        reply = talk.locator(".ev.agent").filter(has_text="重新查验")
        reply.get_by_role("button", name="做成文章").click()
        expect(reply.locator(".make-article")).to_have_text("已提交为文章建议")
        expect(reply.locator(".make-article")).to_be_disabled()
        # The suggestion is an internal event in the stream: the console shows it as a note, the bot's and
        # user's rows do not get the button.
        expect(talk.locator(".ev.note").filter(has_text="已提交为文章建议")).to_be_visible()
        expect(talk.locator(".ev.user .make-article, .ev.system .make-article")).to_have_count(0)
    finally:
        close(console)


def test_an_unassigned_conversation_opens_read_only_and_can_be_taken(
    browser: Any, server: LiveServer
) -> None:
    console = sign_in(browser, server, add_agent(server))
    user = Customer(server, name="孙悦")
    user.say("转人工，审批流程卡住了")
    try:
        console.locator('#filters [data-view="unassigned"]').click()
        console.locator(f'#conv-list .conv-row[data-conversation="{user.id}"]').click()
        talk = pane(console, user.id)
        expect(talk.locator(".read-only")).to_contain_text("只读")
        expect(talk.get_by_label("输入回复…")).to_have_count(0)  # not theirs yet: nothing to send with
        talk.locator(".read-only").get_by_role("button", name="接入").click()
        expect(pane(console, user.id).get_by_label("输入回复…")).to_be_visible()
        expect(console.locator(f'#tabs [data-conversation="{user.id}"]')).to_have_text("孙悦")
    finally:
        close(console)
