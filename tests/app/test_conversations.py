"""Conversation tests that read like chats, in both languages, for every decision of the policy."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from bot.ownership import Owner
from bot.store.handoffs import Move
from tests.app.conftest import Chat


def test_greeting_then_a_kb_answer_in_chinese(chat: Chat) -> None:
    chat.say("你好")
    assert "助手" in chat.text
    chat.say("发票查验失败，提示查验结果不一致")
    assert chat.last["state"] == "bot"
    assert chat.last["parse"]["intent"] == "invoice_verification_failed"
    assert "查验结果不一致" in chat.text and "1." in chat.text
    assert chat.buttons == ["有帮助", "没帮助"]
    assert "**" not in chat.text


def test_kb_answer_in_english(chat: Chat) -> None:
    chat.say("I never receive the SMS verification code when I log in")
    assert chat.last["parse"]["language"] == "en"
    assert "Full article: /kb/en-login-sms-code" in chat.text
    assert chat.buttons == ["Helpful", "Not helpful"]


def test_traditional_chinese_users_get_traditional_replies(chat: Chat) -> None:
    chat.say("發票查驗失敗，提示查驗結果不一致")
    assert "處理" in chat.text or "查驗" in chat.text
    assert chat.buttons == ["有幫助", "沒幫助"]


def test_helpful_and_not_helpful(chat: Chat) -> None:
    chat.say("导出的excel打开是乱码")
    chat.click("有帮助")
    assert "太好了" in chat.text
    chat.say("导出的excel打开是乱码怎么办")  # after "helpful" the same topic is a fresh question
    assert chat.last["handoff"] is None
    chat.click("没帮助")
    assert "转接人工" in chat.text and chat.buttons == ["转人工客服", "先不用"]
    chat.say("好的")  # yes answers the bot's last question
    assert chat.last["state"] == "queued"
    assert chat.last["handoff"]["reason"] == "not_helpful"


def test_not_helpful_then_no_thanks_stays_with_the_bot(chat: Chat) -> None:
    chat.say("how do I reset my password")
    chat.click("Not helpful")
    chat.click("Not now")
    assert chat.last["state"] == "bot" and "human" in chat.text


def test_ambiguity_offers_buttons_and_a_click_continues(chat: Chat) -> None:
    for text in ("发票", "报销", "发票有问题", "invoice problem", "账号"):
        chat.say(text)
        if chat.text.startswith(("您是想问", "Did you mean")):
            break
    else:
        pytest.fail("no ambiguous message among the candidates")
    assert 2 <= len(chat.buttons) <= 3
    first = chat.last["replies"][0]["buttons"][0]
    chat.say(first["payload"])
    assert chat.last["parse"]["intent"] == first["payload"].lstrip("/")
    assert chat.last["parse"]["confidence"] == 1.0


def test_chit_chat_in_a_row_never_hands_off(chat: Chat) -> None:
    # Issue 10 changed this: two chit-chat fallbacks used to hand off and page an agent for a joke.
    chat.say("明天北京天气怎么样")
    assert chat.last["state"] == "bot" and "帮不上忙" in chat.text
    chat.say("给我讲个笑话")
    assert chat.last["state"] == "bot" and chat.last["handoff"] is None


def test_two_unclear_support_messages_offer_a_human(chat: Chat) -> None:
    chat.say("出了点状况")
    assert chat.last["state"] == "bot" and "换个说法" in chat.text
    chat.say("有点不对劲")
    assert chat.last["state"] == "bot" and chat.buttons == ["转人工客服", "先不用"]
    chat.say("好的")
    assert chat.last["state"] == "queued"
    assert chat.last["handoff"]["reason"] == "repeated_fallback"


def test_a_recognised_message_resets_the_fallback_count(chat: Chat) -> None:
    chat.say("出了点状况")
    chat.say("谢谢")
    chat.say("有点不对劲")
    assert chat.last["state"] == "bot" and "换个说法" in chat.text


@pytest.mark.parametrize(
    ("text", "reasons"),
    [
        ("转人工", {"user_request"}),
        ("I want to talk to a real person", {"user_request"}),
        ("系统打不开了，全公司都用不了，月底要结账", {"urgent"}),
        ("everyone in our company is locked out, the system is down", {"urgent"}),
        # a complaint is also negative: either rule may claim it, both hand off
        ("我要投诉，你们这服务太差了", {"complaint", "negative_sentiment"}),
        ("你们这什么破系统，浪费我一下午，气死了", {"complaint", "negative_sentiment"}),
        ("this is unacceptable, I am furious", {"complaint", "negative_sentiment"}),
    ],
)
def test_handoff_rules(chat: Chat, text: str, reasons: set[str]) -> None:
    chat.say(text)
    handoff = chat.last["handoff"]
    assert chat.last["state"] == "queued"
    assert handoff["reason"] in reasons
    assert handoff["position"] >= 1 and handoff["eta_seconds"] > 0
    first = {"urgent": 300, "important": 900, "normal": 1800}[handoff["severity"]]
    assert handoff["sla"]["first_response_seconds"] == first
    if reasons == {"urgent"}:
        assert handoff["severity"] == "urgent"


def test_urgent_sla_targets(chat: Chat) -> None:
    chat.say("数据全部丢失了，报销单都不见了")
    sla = chat.last["handoff"]["sla"]
    assert chat.last["handoff"]["severity"] == "urgent"
    assert (sla["first_response_seconds"], sla["resolution_seconds"]) == (300, 3600)


def test_same_problem_after_an_answer_hands_off(chat: Chat) -> None:
    chat.say("发票查验失败，提示查验结果不一致")
    assert chat.last["handoff"] is None
    chat.say("查验还是失败，提示不一致")
    assert chat.last["state"] == "queued"
    assert chat.last["handoff"]["reason"] in ("repeat_after_answer", "urgent")


def test_queue_position_orders_by_severity(new_chat: object) -> None:
    normal, urgent = new_chat(), new_chat()  # type: ignore[operator]
    normal.say("转人工")
    assert normal.last["handoff"]["position"] >= 1
    urgent.say("全公司都登不上系统了，马上要关账")
    assert urgent.last["handoff"]["position"] <= normal.last["handoff"]["position"]


def test_while_queued_the_bot_only_reports_the_queue(chat: Chat) -> None:
    chat.say("转人工")
    chat.say("发票查验失败")
    assert chat.last["state"] == "queued"
    assert [e for e in chat.last["replies"] if "队列" in e["text"]]
    assert chat.last["handoff"] is None


def move(client: TestClient, cid: str, target: Owner) -> None:
    """An agent's move, straight through the state machine."""
    handoffs = client.app.state.services.handoffs  # type: ignore[attr-defined]
    owner = "a-test" if target is Owner.ASSIGNED else ""
    client.portal.call(handoffs.transition, cid, target, Move("a-test", "test", owner=owner))  # type: ignore[union-attr]


def test_bot_is_silent_while_a_human_owns_the_chat(chat: Chat, client: TestClient) -> None:
    chat.say("转人工")
    move(client, chat.id, Owner.ASSIGNED)
    chat.say("你好，在吗？发票查验失败")
    assert chat.last["state"] == "assigned"
    assert chat.last["replies"] == []
    users = [e for e in chat.events() if e["type"] == "message" and e["role"] == "user"]
    assert users[-1]["text"] == "你好，在吗？发票查验失败"  # the agent still sees it


def test_after_resolution_the_bot_takes_over_again(chat: Chat, client: TestClient) -> None:
    chat.say("转人工")
    move(client, chat.id, Owner.ASSIGNED)
    move(client, chat.id, Owner.RESOLVED)
    chat.say("你好")
    assert chat.last["state"] == "bot" and chat.text


def test_no_agent_on_duty_opens_a_ticket_and_it_can_be_looked_up(client: TestClient) -> None:
    client.app.state.services.settings.on_duty = False  # type: ignore[attr-defined]
    chat = Chat(client)
    chat.say("我要找人工客服")
    ticket_id = chat.last["ticket_id"]
    assert ticket_id and ticket_id.startswith("T-") and len(ticket_id) == 15
    assert chat.last["handoff"]["ticket_id"] == ticket_id and chat.last["handoff"]["position"] is None
    assert ticket_id in chat.text and "前首次回复" in chat.text
    ticket = client.get(f"/api/v1/tickets/{ticket_id}", headers=chat.headers)
    assert ticket.status_code == 200 and ticket.json()["conversation_id"] == chat.id
    assert not {"customer_key", "created_ms", "assigned_to"} & ticket.json().keys()  # internal fields
    chat.say(f"查询工单 {ticket_id}")
    assert ticket_id in chat.text and "待处理" in chat.text and "UTC+08:00" in chat.text
    other = Chat(client)
    other.say(f"ticket status {ticket_id}")
    assert ticket_id in other.text
    assert client.get(f"/api/v1/tickets/{ticket_id}", headers=other.headers).status_code == 401
    other.say("ticket status T-20200101-9999")
    assert "couldn't find" in other.text


def test_retried_message_is_stored_and_answered_once(chat: Chat) -> None:
    first = chat.say("收不到短信验证码", client_msg_id="retry-1")
    again = chat.say("收不到短信验证码", client_msg_id="retry-1")
    assert again == first
    users = [e for e in chat.events() if e["type"] == "message" and e["role"] == "user"]
    assert len(users) == 1


def test_concurrent_duplicates_are_processed_once(chat: Chat, client: TestClient) -> None:
    engine = client.app.state.engine  # type: ignore[attr-defined]
    from bot.message import Message

    async def both() -> list[dict[str, object]]:
        message = Message("web", "", chat.id, "导出失败", "dup-1")
        return list(await asyncio.gather(engine.handle(message), engine.handle(message)))

    first, second = client.portal.call(both)  # type: ignore[union-attr]
    assert first == second
    assert len([e for e in chat.events() if e.get("role") == "user"]) == 1


def test_a_turn_written_by_a_process_that_died_before_answering_is_not_written_again(
    chat: Chat, client: TestClient
) -> None:
    """Regression: the turn (the user's message and the replies) and the response kept for retries were two
    writes. A process killed between them left an in-flight claim that expired after 30 s, and the client's
    retry processed the message again: the message and its replies were stored twice."""
    from bot.message import Message
    from bot.store.keys import Keys

    engine = client.app.state.engine  # type: ignore[attr-defined]
    store = engine.s.store
    message = Message("web", "", chat.id, "发票查验失败怎么办", "died-1")
    key = Keys(store.keys.prefix).idempotency(chat.id, "died-1")

    async def first_delivery_then_death() -> dict[str, object]:
        assert await store.claim(chat.id, "died-1") is None  # what handle() does first
        response: dict[str, object] = await engine._process(message)  # the turn is written…
        if await store.redis.get(key) == "":  # …and the process dies: its claim runs out
            await store.redis.delete(key)
        return response

    first = client.portal.call(first_delivery_then_death)  # type: ignore[union-attr]
    retried = client.portal.call(engine.handle, message)  # type: ignore[union-attr]
    users = [e for e in chat.events() if e.get("role") == "user"]
    assert len(users) == 1
    assert [r["seq"] for r in retried["replies"]] == [r["seq"] for r in first["replies"]]  # type: ignore[index, union-attr]
    assert retried["state"] == first["state"] and retried["conversation_id"] == chat.id


def test_a_second_run_of_a_message_whose_claim_lapsed_answers_with_the_first_turn(
    chat: Chat, client: TestClient
) -> None:
    """Two runs of one message (the first one's claim lapsed while it was still working): the turn is
    written once, and the second run answers with the first run's replies, not its own."""
    from bot.message import Message

    engine = client.app.state.engine  # type: ignore[attr-defined]
    message = Message("web", "", chat.id, "发票查验失败怎么办", "twice-1")

    async def twice() -> tuple[dict[str, object], dict[str, object]]:
        return await engine._process(message), await engine._process(message)

    first, second = client.portal.call(twice)  # type: ignore[union-attr]
    assert len([e for e in chat.events() if e.get("role") == "user"]) == 1
    assert second["replies"] == first["replies"] and second["state"] == first["state"]


def test_sensitive_numbers_are_masked_in_the_transcript(chat: Chat) -> None:
    chat.say("我手机13812345678收不到验证码，发票号码24442000000123456789")
    user = next(e for e in chat.events() if e.get("role") == "user")
    assert "13812345678" not in user["text"] and "5678" in user["text"]
    assert "24442000000123456789" in user["text"]
