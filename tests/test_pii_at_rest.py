"""No personal identifier rests raw in Redis or in the logs. A full scenario — a user writing a phone
number, an ID card number, tax ids, a bank card number and an email address, a handoff, an agent's reply,
the same over the Rasa REST channel — then every key under the test's prefix is read back (GET, HGETALL,
LRANGE, SMEMBERS, ZRANGE, XRANGE and DUMP) and grepped, with every captured log record, for each value."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as sync_redis
from fastapi.testclient import TestClient

from bot.contracts.parse import Entity, Intent, Parse
from bot.kb.search import KnowledgeBase
from bot.nlu.backend import ParseContext
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from bot.store.keys import Keys
from tests.app.conftest import Chat
from tests.gateway.conftest import Agent
from tests.rasa_token import AUTH
from triagebot.app import create_app

PHONE = "13812345678"
ID_CARD = "11010519491231002X"
OLD_TAX_ID = "110108123456789"  # the 15-character 纳税人识别号
USCC = "91350100M000100Y43"
BANK_CARD = "6222021234567890128"
EMAIL = "alice.wang@example.com"
RAW = {
    "phone": PHONE,
    "phone, spaced": "138 1234 5678",
    "id card": ID_CARD,
    "old tax id": OLD_TAX_ID,
    "uscc": USCC,
    "bank card": BANK_CARD,
    "email": EMAIL,
}

FIRST = (
    f"发票开不出来，我的手机号是{PHONE}，身份证{ID_CARD}，税号是{OLD_TAX_ID}，"
    f"统一社会信用代码{USCC}，邮箱{EMAIL}"
)
HANDOFF = f"我要转人工，退款请打到银行卡{BANK_CARD}，电话 138 1234 5678"
WHILE_ASSIGNED = f"对，税号 {OLD_TAX_ID}，信用代码 {USCC.lower()}，邮箱 {EMAIL.upper()}"


@pytest.fixture
def desk(settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase) -> Iterator[TestClient]:
    """Presence decides who is on duty: the agent below signs in and is offered the handoff."""
    on_duty_by_presence = settings.model_copy(update={"on_duty": None, "offer_timeout_seconds": 5.0})
    with TestClient(create_app(on_duty_by_presence, nlu=nlu, kb=knowledge_base)) as client:
        yield client


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "not true within the deadline"
        time.sleep(0.05)
    return value


READ: dict[str, Callable[[Any, bytes], Any]] = {
    "string": lambda r, key: r.get(key),
    "hash": lambda r, key: r.hgetall(key),
    "list": lambda r, key: r.lrange(key, 0, -1),
    "set": lambda r, key: r.smembers(key),
    "zset": lambda r, key: r.zrange(key, 0, -1, withscores=True),
    "stream": lambda r, key: r.xrange(key),
}


def everything_under(redis_url: str, prefix: str) -> dict[str, str]:
    """Every key under ``prefix`` with its whole value, read by type (and its DUMP)."""
    dumped: dict[str, str] = {}
    with sync_redis.Redis.from_url(redis_url) as r:
        for key in r.scan_iter(f"{prefix}*", count=1000):
            kind = r.type(key).decode()
            value: Any = READ[kind](r, key)
            text = repr(value) + repr(r.dump(key))
            # Values are UTF-8 JSON with non-ASCII kept: decode them to grep the text itself.
            text += json.dumps(_decode(value), ensure_ascii=False)
            dumped[key.decode()] = text
    return dumped


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {_decode(k): _decode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_decode(v) for v in value]
    return value


def found_in(text: str) -> list[str]:
    lowered = text.lower()
    return [name for name, raw in RAW.items() if raw.lower() in lowered]


def test_no_personal_identifier_rests_raw_in_redis_or_the_logs(
    desk: TestClient, redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = Agent(desk, "wang")
    agent.online()
    user = Chat(desk)
    user.say(FIRST)
    user.say(FIRST, client_msg_id="retry-1")
    user.say(FIRST, client_msg_id="retry-1")  # a retry: the stored response comes back
    user.say(HANDOFF)
    assert user.last["state"] == "queued", user.last
    wait_for(lambda: agent.post(f"{user.id}/accept").status_code == 200)
    card = desk.get(f"/api/v1/conversations/{user.id}/context", headers=agent.headers)
    assert card.status_code == 200 and found_in(card.text) == []
    reply = agent.post(
        f"{user.id}/agent_messages", {"text": "您好，我是客服小王，正在为您查询", "client_msg_id": "a1"}
    )
    assert reply.status_code == 200, reply.text
    user.say(WHILE_ASSIGNED)
    assert user.last["state"] == "assigned"
    for text in (FIRST, HANDOFF):
        sent = desk.post(
            "/webhooks/rest/webhook",
            headers=AUTH,
            json={"sender": "rasa-user-1", "message": text, "metadata": {"message_id": text[:8]}},
        )
        assert sent.status_code == 200, sent.text

    stored = everything_under(redis_url, redis_prefix)
    assert any(":events" in key for key in stored) and any(":idem:" in key for key in stored)
    leaks = {key: found_in(key + value) for key, value in stored.items() if found_in(key + value)}
    assert leaks == {}
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert found_in(logged) == []
    # Masked, not dropped: the agent still reads the last four characters of each.
    transcript = json.dumps(card.json()["transcript"], ensure_ascii=False)
    assert "5678" in transcript and "002X" in transcript and "0Y43" in transcript


class AmbiguousBackend:
    """An NLU backend that cannot decide between two invoice topics and reports a ``bank_card`` entity
    the built-in patterns would not find (16 digits failing Luhn): the bot asks which topic, and remembers
    the question (``pending``) with what the user wrote."""

    name = "ambiguous"
    intents = ("invoice_archive", "invoice_duplicate")

    async def parse(self, text: str, context: ParseContext | None = None) -> Parse:
        return self.parse_now(text, context)

    def parse_now(self, text: str, context: ParseContext | None = None) -> Parse:
        card = text.index(ODD_CARD)
        return Parse(
            text,
            Intent("invoice_archive", 0.5),
            (Entity("bank_card", card, card + len(ODD_CARD), ODD_CARD, ODD_CARD),),
            (Intent("invoice_archive", 0.5), Intent("invoice_duplicate", 0.45)),
            ambiguous=True,
        )


ODD_CARD = "6222021234567891"  # fails Luhn: only the NLU's entity says it is a card


def test_the_pending_question_and_entity_spans_are_stored_masked(
    settings: Settings, knowledge_base: KnowledgeBase, redis_url: str, redis_prefix: str
) -> None:
    with TestClient(create_app(settings, nlu=AmbiguousBackend(), kb=knowledge_base)) as client:
        chat = Chat(client)
        chat.say(f"发票 {PHONE} 卡 {ODD_CARD}")
        assert chat.buttons, chat.last  # the bot asked which topic
    with sync_redis.Redis.from_url(redis_url, decode_responses=True) as r:
        record = r.hgetall(Keys(redis_prefix).conversation(chat.id))
    pending = json.loads(record["pending"])
    assert pending["type"] == "clarify" and "发票" in pending["text"]
    assert PHONE not in pending["text"] and ODD_CARD not in pending["text"]
    stored = everything_under(redis_url, redis_prefix)
    assert [key for key, value in stored.items() if PHONE in value or ODD_CARD in value] == []
