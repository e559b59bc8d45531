"""DingTalk (钉钉) robot end to end: signed HTTP callbacks from members, the engine, and replies through the
message's session webhook, then the OpenAPI, of a fake DingTalk on loopback that speaks the real protocol
(tests/fakes/dingtalk.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis as sync_redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.channels.dingtalk import conversation_id
from bot.channels.platform import DingTalkApp
from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from bot.store.keys import Keys
from tests.fakes.dingtalk import FakeDingTalk
from tests.gateway.conftest import Agent
from triagebot.app import create_app

APP_KEY = "dingtestappkey000001"
APP_SECRET = "dingtalk-test-app-secret"
CALLBACK = "/channels/dingtalk/callback"
GROUP_ID = "cidFinanceTeamGroup0001=="
URGENT = "系统打不开了，全公司都用不了，月底结账来不及了"


@pytest.fixture
def fake() -> Iterator[FakeDingTalk]:
    with FakeDingTalk(app_key=APP_KEY, app_secret=APP_SECRET) as platform:
        yield platform


def dingtalk_settings(settings: Settings, fake: FakeDingTalk, **more: Any) -> Settings:
    return settings.model_copy(
        update={
            "dingtalk_app_key": APP_KEY,
            "dingtalk_app_secret": SecretStr(APP_SECRET),
            "dingtalk_api_base": fake.url,
            "dingtalk_tenant": "acme",
            "dingtalk_vip_tier": 2,
            "outbox_backoff_seconds": 0.05,
            "outbox_max_attempts": 3,
            **more,
        }
    )


@pytest.fixture
def client(
    settings: Settings, fake: FakeDingTalk, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> Iterator[TestClient]:
    with TestClient(create_app(dingtalk_settings(settings, fake), nlu=nlu, kb=knowledge_base)) as test_client:
        yield test_client


@pytest.fixture
def db(redis_url: str) -> Iterator[sync_redis.Redis]:
    connection = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


class Member:
    """A DingTalk member messaging the robot, one-to-one or (with ``group``) @-mentioning it in a group."""

    def __init__(self, client: TestClient, fake: FakeDingTalk, staff: str, group: str = "") -> None:
        self.client, self.fake, self.staff, self.group = client, fake, staff, group

    def message(self, text: str, **options: Any) -> tuple[dict[str, str], dict[str, Any]]:
        if self.group:
            options = {"conversation_type": "2", "conversation_id": self.group, **options}
        return self.fake.callback_message(text, sender_staff_id=self.staff, **options)

    def post(self, headers: dict[str, str], body: dict[str, Any] | bytes) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        return self.client.post(CALLBACK, headers=headers, content=content)

    def say(self, text: str, **options: Any) -> httpx.Response:
        response = self.post(*self.message(text, **options))
        assert response.status_code == 200, response.text
        return response

    @property
    def cid(self) -> str:
        payload = {
            "senderStaffId": self.staff,
            "conversationType": "2" if self.group else "1",
            "conversationId": self.group,
            "chatbotCorpId": self.fake.corp_id,
        }
        return conversation_id(DingTalkApp(app_key=APP_KEY, app_secret=SecretStr(APP_SECRET)), payload)


def transcript(db: sync_redis.Redis, prefix: str, cid: str) -> list[dict[str, Any]]:
    return [json.loads(f["e"]) for _, f in db.xrange(Keys(prefix).events(cid)) if f]


def said(db: sync_redis.Redis, prefix: str, cid: str) -> list[str]:
    return [e["text"] for e in transcript(db, prefix, cid) if e.get("role") == "user" and "text" in e]


def _exists(db: sync_redis.Redis, prefix: str, cid: str) -> str | None:
    return cid if db.exists(Keys(prefix).conversation(cid)) else None


def _nothing_stored(db: sync_redis.Redis, prefix: str) -> bool:
    return not db.xlen(Keys(prefix).inbox) and not list(db.scan_iter(f"{prefix}conv:*"))


# ------------------------------------------------------------------------------ messages
def test_a_message_is_acknowledged_at_once_and_answered_through_the_session_webhook(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = Member(client, fake, "zhangsan")
    started = time.monotonic()
    response = member.say("发票查验失败怎么办")
    assert time.monotonic() - started < 2 and response.json() == {}
    answer = fake.wait_for(lambda f: f.texts_to("zhangsan"))
    assert "查验" in answer[0]
    assert [m.route for m in fake.sent] == ["session_webhook"]
    record = db.hgetall(Keys(redis_prefix).conversation(member.cid))
    assert record["verified"] == "1" and record["tenant"] == "acme" and record["vip"] == "2"
    assert record["channel"] == "dingtalk" and record["user"] == "zhangsan"
    assert fake.token_fetches == 0  # the session webhook needs no access token


def test_a_retried_callback_is_handled_once(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = Member(client, fake, "lisi")
    headers, body = member.message("怎么导出报销单", msg_id="msgRetriedThreeTimes001")
    for _ in range(3):
        assert member.post(headers, body).status_code == 200
    fake.wait_for(lambda f: f.texts_to("lisi"))
    time.sleep(0.5)
    assert said(db, redis_prefix, member.cid) == ["怎么导出报销单"]
    assert len(fake.texts_to("lisi")) == 1


@pytest.mark.parametrize(
    ("question", "present", "absent"),
    [
        pytest.param("發票查驗失敗怎麼辦", "驗", "验", id="traditional"),
        pytest.param("How do I export an expense report?", "export", "报销", id="english"),
    ],
)
def test_the_answer_is_in_the_users_script(
    client: TestClient, fake: FakeDingTalk, question: str, present: str, absent: str
) -> None:
    Member(client, fake, "scripted").say(question)
    answer = fake.wait_for(lambda f: f.texts_to("scripted"))[0]
    assert present in answer.lower() and absent not in answer, answer


# --------------------------------------------------------------------------------- groups
def test_a_group_message_with_an_at_is_answered_in_the_group_at_the_sender(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = Member(client, fake, "wangwu", group=GROUP_ID)
    member.say("发票查验失败怎么办")
    answer = fake.wait_for(lambda f: f.texts_in(GROUP_ID))
    assert "查验" in answer[0]
    sent = fake.sent[0]
    assert sent.route == "session_webhook" and sent.at_user_ids == ("wangwu",)
    assert answer[0].startswith("@wangwu ")  # the @ in the text too, or DingTalk does not notify
    assert said(db, redis_prefix, member.cid) == ["发票查验失败怎么办"]  # the @'s leading space is gone


def test_a_group_message_not_at_the_robot_is_ignored(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    response = Member(client, fake, "chatter", group=GROUP_ID).say("中午吃什么", at_bot=False)
    assert response.json() == {}
    time.sleep(0.3)
    assert _nothing_stored(db, redis_prefix) and fake.sent == []


def test_two_members_of_one_group_are_two_conversations(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    first, second = (Member(client, fake, staff, group=GROUP_ID) for staff in ("member-a", "member-b"))
    first.say("怎么导出报销单")
    second.say("发票查验失败怎么办")
    fake.wait_for(lambda f: len(f.texts_in(GROUP_ID)) >= 2)
    assert first.cid != second.cid
    assert said(db, redis_prefix, first.cid) == ["怎么导出报销单"]
    assert said(db, redis_prefix, second.cid) == ["发票查验失败怎么办"]
    assert sorted(m.at_user_ids for m in fake.sent) == [("member-a",), ("member-b",)]


# ---------------------------------------------------------------------------- the OpenAPI
@pytest.mark.parametrize(
    ("group", "route"),
    [pytest.param("", "oto", id="one-to-one"), pytest.param(GROUP_ID, "group", id="group")],
)
def test_after_the_session_webhook_expires_the_openapi_delivers(
    client: TestClient, fake: FakeDingTalk, group: str, route: str
) -> None:
    member = Member(client, fake, "sessionless", group=group)
    headers, body = member.message("发票查验失败怎么办")
    fake.expire_sessions()  # the webhook the callback names now answers errcode 300001
    assert member.post(headers, body).status_code == 200
    delivered = fake.wait_for(lambda f: [m for m in f.sent if m.route == route])
    assert "查验" in delivered[0].content and delivered[0].robot_code == APP_KEY
    if group:
        assert delivered[0].conversation_id == GROUP_ID
    else:
        assert delivered[0].user_id == "sessionless"
    assert fake.token_fetches == 1
    assert [r.status for r in fake.requests_to("/robot/sendBySession")] == [200]  # refused with an errcode


def test_an_expired_token_is_refreshed_once_and_the_answer_arrives(
    client: TestClient, fake: FakeDingTalk
) -> None:
    member = Member(client, fake, "tokenuser")
    member.say("怎么导出报销单", session_expires_in_s=0)
    fake.wait_for(lambda f: f.texts_to("tokenuser"))
    fake.expire_tokens()
    member.say("发票查验失败怎么办", session_expires_in_s=0)
    answers = fake.wait_for(lambda f: f.texts_to("tokenuser")[1:])
    assert "查验" in answers[0]
    assert fake.token_fetches == 2
    refused = [r for r in fake.requests_to("/v1.0/robot/oToMessages/batchSend") if r.status == 400]
    assert len(refused) == 1  # the stale token, once


def test_an_undeliverable_answer_is_shown_to_the_agent_not_lost_silently(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = Member(client, fake, "downuser")
    headers, body = member.message("怎么导出报销单")
    fake.down()
    assert member.post(headers, body).status_code == 200
    fake.wait_for(lambda _: _exists(db, redis_prefix, member.cid))
    failed = fake.wait_for(
        lambda _: [e for e in transcript(db, redis_prefix, member.cid) if e.get("type") == "delivery_failed"],
        timeout=20,
    )
    assert failed[0]["channel"] == "dingtalk" and failed[0]["visibility"] == "internal"
    assert said(db, redis_prefix, member.cid) == ["怎么导出报销单"]  # the user's message is kept


# --------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"app_secret": "not-the-app-secret"}, id="wrong-sign"),
        pytest.param({"timestamp_ms": int((time.time() - 3700) * 1000)}, id="over-an-hour-old"),
    ],
)
def test_a_bad_sign_or_an_old_timestamp_is_refused_and_nothing_stored(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str, options: dict[str, Any]
) -> None:
    member = Member(client, fake, "mallory")
    response = member.post(*member.message("怎么导出报销单", **options))
    assert response.status_code == 401, response.text
    time.sleep(0.2)
    assert _nothing_stored(db, redis_prefix) and fake.sent == []


def test_missing_headers_are_refused(client: TestClient, fake: FakeDingTalk) -> None:
    _, body = fake.callback_message("hi", sender_staff_id="mallory")
    response = client.post(CALLBACK, json=body)
    assert response.status_code == 401 and "timestamp" in response.json()["detail"]


def test_malformed_json_is_refused_with_400(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = Member(client, fake, "mallory")
    headers, _ = member.message("hi")
    assert member.post(headers, b'{"msgtype": "text", "text": ').status_code == 400
    assert _nothing_stored(db, redis_prefix)


def test_a_body_over_the_limit_is_refused_with_413(
    client: TestClient, fake: FakeDingTalk, settings: Settings
) -> None:
    member = Member(client, fake, "mallory")
    headers, body = member.message("长" * settings.max_callback_bytes)
    assert member.post(headers, body).status_code == 413


def test_a_picture_gets_a_polite_reply_in_the_chat(client: TestClient, fake: FakeDingTalk) -> None:
    """The robot reads text only: the user is told so, in the chat (through the outbox, as every reply,
    so Stream mode gets it too), and the engine never sees the picture."""
    member = Member(client, fake, "snapper")
    headers, body = member.message("")
    del body["text"]
    body |= {"msgtype": "picture", "content": {"downloadCode": "dl-code-1", "pictureDownloadCode": "p-1"}}
    response = member.post(headers, body)
    assert response.status_code == 200 and response.json() == {}
    reply = fake.wait_for(lambda f: f.texts_to("snapper"))
    assert reply == ["暂不支持这类消息，请用文字描述您的问题。"]
    assert member.post(headers, body).status_code == 200  # a retry of the same msgId: no second reply
    time.sleep(0.3)
    assert len(fake.texts_to("snapper")) == 1


def test_the_channel_is_404_when_not_configured(
    settings: Settings, fake: FakeDingTalk, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    headers, body = fake.callback_message("hi", sender_staff_id="someone")
    with TestClient(create_app(settings, nlu=nlu, kb=knowledge_base)) as plain:
        response = plain.post(CALLBACK, headers=headers, json=body)
        assert response.status_code == 404 and "TRIAGE_DINGTALK_APP_KEY" in response.json()["detail"]


# ------------------------------------------------------------------------------- buttons
def test_buttons_become_a_numbered_list_answered_by_number(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = Member(client, fake, "zhaoliu")
    member.say("发票查验失败，提示查验结果不一致")
    answer = fake.wait_for(lambda f: f.texts_to("zhaoliu"))[0]
    assert answer.endswith("这个回答有帮助吗？\n1. 有帮助\n2. 没帮助")
    member.say("2")
    offer = fake.wait_for(lambda f: f.texts_to("zhaoliu")[1:])[0]
    assert offer.endswith("1. 转人工客服\n2. 先不用")
    assert said(db, redis_prefix, member.cid) == ["发票查验失败，提示查验结果不一致", "/not_helpful"]


# ---------------------------------------------------------------------------- the handoff
def test_handoff_end_to_end_in_dingtalk(
    settings: Settings,
    fake: FakeDingTalk,
    nlu: NLUPipeline,
    knowledge_base: KnowledgeBase,
    db: sync_redis.Redis,
    redis_prefix: str,
) -> None:
    desk_settings = dingtalk_settings(settings, fake, on_duty=None, offer_timeout_seconds=5.0)
    with TestClient(create_app(desk_settings, nlu=nlu, kb=knowledge_base)) as client:
        agent = Agent(client, "dingtalk-agent")
        agent.online()
        member = Member(client, fake, "urgentuser")
        member.say(URGENT)
        cid = fake.wait_for(lambda _: _exists(db, redis_prefix, member.cid))
        fake.wait_for(lambda _: db.hget(Keys(redis_prefix).handoff(cid), "state") in ("queued", "assigned"))
        accepted = agent.post(f"{cid}/accept")
        assert accepted.status_code == 200, accepted.text
        written = agent.post(f"{cid}/agent_messages", {"text": "您好，我是值班客服，马上为您处理"})
        assert written.status_code in (200, 201), written.text
        fake.wait_for(lambda f: any("值班客服" in t for t in f.texts_to("urgentuser")))
        before = len(fake.texts_to("urgentuser"))
        member.say("好的，谢谢，错误码是 E1001")
        fake.wait_for(lambda _: "好的，谢谢，错误码是 E1001" in said(db, redis_prefix, cid))
        time.sleep(0.5)
        assert len(fake.texts_to("urgentuser")) == before  # the bot stays silent: a human owns it
        card = client.get(f"/api/v1/conversations/{cid}/context", headers=agent.headers).json()
        assert card["channel"] == "dingtalk"
        assert card["platform"] == {"app": "default", "corp_id": fake.corp_id, "user_id": "urgentuser"}
        assert card["customer"]["verified"] and card["customer"]["tenant"] == "acme"
        assert card["customer"]["vip_tier"] == 2
        assert agent.post(f"{cid}/resolve").status_code == 200
        rating = fake.wait_for(lambda f: [t for t in f.texts_to("urgentuser") if "\n5. 5" in t])
        assert "打分" in rating[0]
        member.say("5")
        fake.wait_for(lambda _: [e for e in transcript(db, redis_prefix, cid) if e.get("type") == "csat"])
        assert [e["score"] for e in transcript(db, redis_prefix, cid) if e.get("type") == "csat"] == [5]


def test_a_ticket_opened_with_nobody_on_duty_is_answered_when_an_agent_comes(
    settings: Settings,
    fake: FakeDingTalk,
    nlu: NLUPipeline,
    knowledge_base: KnowledgeBase,
    db: sync_redis.Redis,
    redis_prefix: str,
) -> None:
    """Nobody on duty: the urgent message opens a ticket and the member is told so. The app restarts with
    presence deciding who is on duty; meanwhile the session webhook expired, so the agent's answer is pushed
    through the OpenAPI."""
    night = dingtalk_settings(settings, fake, on_duty=False)
    with TestClient(create_app(night, nlu=nlu, kb=knowledge_base)) as client:
        member = Member(client, fake, "nightowl")
        member.say(URGENT)
        told = fake.wait_for(lambda f: [t for t in f.texts_to("nightowl") if "T-" in t])
        ticket_id = db.hget(Keys(redis_prefix).handoff(member.cid), "ticket_id")
        assert ticket_id and ticket_id in told[0]
    fake.expire_sessions()
    morning = dingtalk_settings(settings, fake, on_duty=None, offer_timeout_seconds=5.0)
    with TestClient(create_app(morning, nlu=nlu, kb=knowledge_base)) as client:
        agent = Agent(client, "morning-agent")
        agent.online()
        member.client, cid = client, member.cid
        fake.wait_for(lambda _: agent.post(f"{cid}/accept").status_code == 200, timeout=15)
        assert (
            agent.post(f"{cid}/agent_messages", {"text": "早上好，工单已收到，正在处理"}).status_code == 200
        )
        pushed = fake.wait_for(lambda f: [m for m in f.sent if "工单已收到" in m.content])
        assert pushed[0].route == "oto" and pushed[0].user_id == "nightowl"


def test_a_member_dingtalk_does_not_know_is_reported_not_retried(
    settings: Settings,
    nlu: NLUPipeline,
    knowledge_base: KnowledgeBase,
    db: sync_redis.Redis,
    redis_prefix: str,
) -> None:
    with (
        FakeDingTalk(app_key=APP_KEY, app_secret=APP_SECRET, staff_ids={"someone-else"}) as fake,
        TestClient(create_app(dingtalk_settings(settings, fake), nlu=nlu, kb=knowledge_base)) as client,
    ):
        member = Member(client, fake, "left-the-company")
        member.say("怎么导出报销单", session_expires_in_s=0)
        failed = fake.wait_for(
            lambda _: [
                e for e in transcript(db, redis_prefix, member.cid) if e.get("type") == "delivery_failed"
            ]
        )
        assert "invalidStaffIdList" in failed[0]["error"]
        assert len(fake.requests_to("/v1.0/robot/oToMessages/batchSend")) == 1


def test_a_session_webhook_off_dingtalks_host_is_never_used(
    client: TestClient, fake: FakeDingTalk, db: sync_redis.Redis, redis_prefix: str
) -> None:
    """Regression: the sign covers only the timestamp, so a replayed header pair with a forged body could
    point a user's replies (and the agent's) at any URL. Off DingTalk's host, the OpenAPI is used."""
    member = Member(client, fake, "hijacked")
    headers, body = member.message("发票查验失败，提示查验结果不一致")
    body["sessionWebhook"] = "http://127.0.0.1:9/steal?session=x"
    assert member.post(headers, body).status_code == 200
    fake.wait_for(lambda f: f.texts_to("hijacked"))
    assert [m.route for m in fake.sent if m.user_id == "hijacked"] == ["oto"]


def test_a_sign_with_non_ascii_characters_is_401_not_500(client: TestClient, fake: FakeDingTalk) -> None:
    member = Member(client, fake, "oddsign")
    headers, body = member.message("hi")
    raw: dict[str, Any] = {**headers, "sign": "签名=".encode()}  # raw UTF-8 bytes in the header
    assert member.post(raw, body).status_code == 401
