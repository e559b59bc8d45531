"""WeCom (企业微信) end to end: encrypted callbacks from a member, the engine, and replies through the active
send API of a fake WeCom on loopback that speaks the real protocol (tests/fakes/wecom.py)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot.channels.platform import WeComApp
from bot.channels.wecom import conversation_id
from bot.channels.wecom_crypto import WeComCrypto
from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from bot.store.keys import Keys
from tests.channels.wecom_client import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, WeComMember, plaintext
from tests.fakes.wecom import FakeWeCom
from tests.gateway.conftest import Agent
from triagebot.app import create_app


@pytest.fixture
def fake() -> Iterator[FakeWeCom]:
    with FakeWeCom(corpid=CORP_ID, corpsecret=SECRET, agentid=AGENT_ID) as platform:
        yield platform


def wecom_settings(settings: Settings, fake: FakeWeCom, **more: Any) -> Settings:
    return settings.model_copy(
        update={
            "wecom_token": SecretStr(TOKEN),
            "wecom_aes_key": SecretStr(AES_KEY),
            "wecom_corp_id": CORP_ID,
            "wecom_agent_id": AGENT_ID,
            "wecom_secret": SecretStr(SECRET),
            "wecom_api_base": fake.url,
            "wecom_tenant": "acme",
            "wecom_vip_tier": 2,
            "outbox_backoff_seconds": 0.05,
            "outbox_max_attempts": 3,
            **more,
        }
    )


@pytest.fixture
def client(
    settings: Settings, fake: FakeWeCom, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> Iterator[TestClient]:
    with TestClient(create_app(wecom_settings(settings, fake), nlu=nlu, kb=knowledge_base)) as test_client:
        yield test_client


@pytest.fixture
def db(redis_url: str) -> Iterator[sync_redis.Redis]:
    connection = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def transcript(db: sync_redis.Redis, prefix: str, cid: str) -> list[dict[str, Any]]:
    return [json.loads(f["e"]) for _, f in db.xrange(Keys(prefix).events(cid)) if f]


def conversation_of(db: sync_redis.Redis, prefix: str, user: str) -> str:
    app = WeComApp(
        corp_id=CORP_ID,
        agent_id=AGENT_ID,
        token=SecretStr(TOKEN),
        aes_key=SecretStr(AES_KEY),
        secret=SecretStr(SECRET),
    )
    cid = conversation_id(app, user)
    if not db.exists(Keys(prefix).conversation(cid)):
        raise AssertionError(f"no WeCom conversation for {user}")
    return cid


# ------------------------------------------------------------------------------- URL check
def test_url_verification_answers_the_decrypted_echostr(client: TestClient) -> None:
    crypto = WeComCrypto(TOKEN, AES_KEY, CORP_ID)
    echostr = crypto.encrypt("1616140317555161061", random=b"+/=" * 5 + b"x")
    params = {
        "msg_signature": crypto.signature("1409659589", "263014780", echostr),
        "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": echostr,
    }
    response = client.get("/channels/wecom/callback", params=params)  # httpx encodes + / = as %2B %2F %3D
    assert response.status_code == 200 and response.text == "1616140317555161061"
    params["msg_signature"] = "0" * 40
    refused = client.get("/channels/wecom/callback", params=params)
    assert refused.status_code == 401 and "TRIAGE_WECOM_TOKEN" in refused.json()["detail"]


# ------------------------------------------------------------------------------ messages
def test_a_question_is_acknowledged_at_once_and_answered_through_the_send_api(
    client: TestClient, fake: FakeWeCom, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = WeComMember(client, "zhangsan")
    response = member.say("发票查验失败怎么办")
    assert response.status_code == 200 and response.content == b""
    answer = fake.wait_for(lambda f: f.texts_to("zhangsan"))
    assert "查验" in answer[0]
    cid = conversation_of(db, redis_prefix, "zhangsan")
    record = db.hgetall(Keys(redis_prefix).conversation(cid))
    assert record["verified"] == "1" and record["tenant"] == "acme" and record["vip"] == "2"
    assert fake.token_fetches == 1


def test_a_retried_callback_is_handled_once(
    client: TestClient, fake: FakeWeCom, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = WeComMember(client, "lisi")
    for _ in range(3):  # WeCom's three tries of one MsgId
        assert member.say("怎么导出报销单", msg_id="7000000000000000001").status_code == 200
    fake.wait_for(lambda f: f.texts_to("lisi"))
    time.sleep(0.5)
    cid = conversation_of(db, redis_prefix, "lisi")
    users = [e for e in transcript(db, redis_prefix, cid) if e.get("role") == "user"]
    assert len(users) == 1
    assert len(fake.texts_to("lisi")) == 1


def test_traditional_in_traditional_out(client: TestClient, fake: FakeWeCom) -> None:
    WeComMember(client, "wangwu").say("發票查驗失敗怎麼辦")
    answer = fake.wait_for(lambda f: f.texts_to("wangwu"))[0]
    assert "驗" in answer and "验" not in answer


def test_buttons_become_a_numbered_list_answered_by_number_or_words(
    client: TestClient, fake: FakeWeCom, db: sync_redis.Redis, redis_prefix: str
) -> None:
    member = WeComMember(client, "zhaoliu")
    member.say("发票查验失败，提示查验结果不一致")
    answer = fake.wait_for(lambda f: f.texts_to("zhaoliu"))[0]
    assert answer.endswith("这个回答有帮助吗？\n1. 有帮助\n2. 没帮助")
    member.say("２")  # a full-width digit, as Chinese keyboards type it
    offer = fake.wait_for(lambda f: f.texts_to("zhaoliu")[1:])[0]
    assert "转接人工" in offer and offer.endswith("1. 转人工客服\n2. 先不用")
    member.say("先不用")
    fake.wait_for(lambda f: f.texts_to("zhaoliu")[2:])
    cid = conversation_of(db, redis_prefix, "zhaoliu")
    said = [e["text"] for e in transcript(db, redis_prefix, cid) if e.get("role") == "user"]
    assert said[1:] == ["/not_helpful", "/no_human"], said
    assert db.hget(Keys(redis_prefix).handoff(cid), "state") in (None, "bot")


def test_a_long_answer_is_split_under_the_byte_limit(client: TestClient, fake: FakeWeCom) -> None:
    WeComMember(client, "longread").say("数电发票怎么开具和交付，详细步骤")
    fake.wait_for(lambda f: f.texts_to("longread"))
    time.sleep(0.3)
    assert all(not m.truncated for m in fake.sent)
    assert all(len(m.content.encode()) <= 2048 for m in fake.sent)


# ------------------------------------------------------------------------- events, media
def test_entering_the_app_gets_an_encrypted_passive_welcome(client: TestClient, fake: FakeWeCom) -> None:
    member = WeComMember(client, "newbie")
    response = member.event("enter_agent")
    assert response.status_code == 200
    reply = member.passive(response)
    assert reply["ToUserName"] == "newbie" and reply["FromUserName"] == CORP_ID
    assert reply["MsgType"] == "text" and "发票" in reply["Content"]
    assert fake.sent == []


def test_an_unsupported_type_gets_a_polite_passive_reply(client: TestClient) -> None:
    member = WeComMember(client, "mapper")
    response = member.send("location", Location_X="23.1", Location_Y="113.3", Scale="20", Label="广州")
    assert "暂不支持" in member.passive(response)["Content"]


def test_an_image_is_kept_for_the_agent(
    client: TestClient, fake: FakeWeCom, db: sync_redis.Redis, redis_prefix: str
) -> None:
    fake.add_media("MEDIA1", b"\x89PNG fake image bytes", "image/png", "screenshot.png")
    WeComMember(client, "snapper").send("image", PicUrl="http://example.invalid/p.png", MediaId="MEDIA1")
    notice = fake.wait_for(lambda f: f.texts_to("snapper"))[0]
    assert "图片" in notice
    cid = conversation_of(db, redis_prefix, "snapper")
    kept = [e for e in transcript(db, redis_prefix, cid) if e.get("type") == "attachment"]
    assert kept and kept[0]["kind"] == "image" and kept[0]["size"] == len(b"\x89PNG fake image bytes")
    path = f"/api/v1/conversations/{cid}/attachments/{kept[0]['attachment_id']}"
    assert client.get(path).status_code == 401  # agents only
    bystander = Agent(client, "media-agent")  # the conversation is the bot's: not queued, not theirs
    assert client.get(path, headers=bystander.headers).status_code == 403
    agent = Agent(client, "media-supervisor", role="supervisor")
    opened = client.get(path, headers=agent.headers)
    assert opened.status_code == 200 and opened.content == b"\x89PNG fake image bytes"
    assert (
        opened.headers["content-type"] == "image/png"
        and "screenshot.png" in opened.headers["content-disposition"]
    )
    missing = client.get(f"/api/v1/conversations/{cid}/attachments/0123456789abcdef", headers=agent.headers)
    assert missing.status_code == 404


def test_an_image_that_cannot_be_fetched_is_reported_to_the_user(
    client: TestClient, fake: FakeWeCom, db: sync_redis.Redis, redis_prefix: str
) -> None:
    WeComMember(client, "lostpic").send(
        "image", PicUrl="http://example.invalid/p.png", MediaId="NO-SUCH-MEDIA"
    )
    notice = fake.wait_for(lambda f: f.texts_to("lostpic"))[0]
    assert "没能接收成功" in notice
    cid = conversation_of(db, redis_prefix, "lostpic")
    assert any(e.get("type") == "attachment_failed" for e in transcript(db, redis_prefix, cid))


# ---------------------------------------------------------------------------- the send API
def test_an_expired_token_is_refreshed_and_the_reply_still_arrives(
    client: TestClient, fake: FakeWeCom
) -> None:
    member = WeComMember(client, "tokenuser")
    member.say("怎么导出报销单")
    fake.wait_for(lambda f: f.texts_to("tokenuser"))
    fake.expire_tokens()
    member.say("发票查验失败")
    fake.wait_for(lambda f: len(f.texts_to("tokenuser")) >= 2)
    assert fake.token_fetches == 2


def test_errcodes_and_a_down_api_are_retried_until_delivered(client: TestClient, fake: FakeWeCom) -> None:
    fake.errcode_next(1, -1, "system busy", path="/cgi-bin/message/send")
    fake.fail_next(1, 502, path="/cgi-bin/message/send")
    WeComMember(client, "retryuser").say("怎么导出报销单")
    assert fake.wait_for(lambda f: f.texts_to("retryuser"))


def test_an_undeliverable_reply_is_shown_to_the_agent_not_lost_silently(
    client: TestClient, fake: FakeWeCom, db: sync_redis.Redis, redis_prefix: str
) -> None:
    fake.down()
    WeComMember(client, "downuser").say("怎么导出报销单")
    cid = fake.wait_for(lambda _: _find(db, redis_prefix, "downuser"))
    failed = fake.wait_for(
        lambda _: [e for e in transcript(db, redis_prefix, cid) if e.get("type") == "delivery_failed"],
        timeout=20,
    )
    assert failed[0]["channel"] == "wecom" and failed[0]["visibility"] == "internal"
    user = [e for e in transcript(db, redis_prefix, cid) if e.get("role") == "user"]
    assert user and user[0]["text"] == "怎么导出报销单"  # the user's message is kept


def _find(db: sync_redis.Redis, prefix: str, user: str) -> str | None:
    try:
        return conversation_of(db, prefix, user)
    except AssertionError:
        return None


def test_a_burst_is_merged_and_paced_under_the_per_member_limit(
    settings: Settings,
    fake: FakeWeCom,
    nlu: NLUPipeline,
    knowledge_base: KnowledgeBase,
    db: sync_redis.Redis,
    redis_prefix: str,
) -> None:
    with TestClient(create_app(wecom_settings(settings, fake), nlu=nlu, kb=knowledge_base)) as client:
        member = WeComMember(client, "burst")
        member.say("怎么导出报销单")
        fake.wait_for(lambda f: f.texts_to("burst"))
        cid = conversation_of(db, redis_prefix, "burst")
        store = client.app.state.services.store  # type: ignore[attr-defined]
        for n in range(60):
            client.portal.call(
                store.append, cid, {"type": "message", "role": "agent", "text": f"第 {n} 条说明"}
            )  # type: ignore[union-attr]
        fake.wait_for(lambda f: any("第 59 条" in t for t in f.texts_to("burst")), timeout=20)
        assert fake.dropped == []
        assert len(fake.texts_to("burst")) < 30
        joined = "\n".join(fake.texts_to("burst"))
        assert all(f"第 {n} 条说明" in joined for n in range(60))


# --------------------------------------------------------------------------------- bad input
def _nothing_stored(db: sync_redis.Redis, prefix: str) -> bool:
    return not db.xlen(Keys(prefix).inbox) and not list(db.scan_iter(f"{prefix}conv:*"))


def test_a_wrong_signature_is_refused_and_nothing_stored(
    client: TestClient, db: sync_redis.Redis, redis_prefix: str
) -> None:
    response = WeComMember(client, "mallory").post_plain(
        plaintext("mallory", "text", "1", Content="hi"), signature="f" * 40
    )
    assert response.status_code == 401
    assert _nothing_stored(db, redis_prefix)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"<xml><Encrypt>abc", id="malformed"),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
            b"<xml><ToUserName>&lol2;</ToUserName><Encrypt>x</Encrypt></xml>",
            id="entity-expansion",
        ),
        pytest.param(
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Encrypt>&e;</Encrypt></xml>',
            id="external-entity",
        ),
    ],
)
def test_malformed_or_hostile_xml_is_refused_with_400(
    client: TestClient, body: bytes, db: sync_redis.Redis, redis_prefix: str
) -> None:
    response = client.post(
        "/channels/wecom/callback",
        params={"msg_signature": "a", "timestamp": "1", "nonce": "n"},
        content=body,
    )
    assert response.status_code == 400, response.text
    assert _nothing_stored(db, redis_prefix)


def test_a_message_for_another_corp_is_refused(
    client: TestClient, db: sync_redis.Redis, redis_prefix: str
) -> None:
    other = WeComCrypto(TOKEN, AES_KEY, "wwsomeoneelse000001")
    response = WeComMember(client, "mallory").post_plain(
        plaintext("mallory", "text", "2", Content="hi"), crypto=other
    )
    assert response.status_code == 403
    assert _nothing_stored(db, redis_prefix)


def test_a_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    response = client.post(
        "/channels/wecom/callback",
        params={"msg_signature": "a", "timestamp": "1", "nonce": "n"},
        content=b"<xml>" + b"x" * 70_000 + b"</xml>",
    )
    assert response.status_code == 413


def test_a_correctly_signed_old_callback_is_accepted(client: TestClient, fake: FakeWeCom) -> None:
    member = WeComMember(client, "oldstamp")
    crypto = member.crypto
    encrypt = crypto.encrypt(plaintext("oldstamp", "text", "42", Content="怎么导出报销单"))
    old = "1409659589"  # 2014: WeCom sets no freshness window; replays are stopped by MsgId
    params = {"msg_signature": crypto.signature(old, "n1", encrypt), "timestamp": old, "nonce": "n1"}
    from tests.channels.wecom_client import envelope

    assert (
        client.post("/channels/wecom/callback", params=params, content=envelope(encrypt)).status_code == 200
    )
    assert fake.wait_for(lambda f: f.texts_to("oldstamp"))


def test_the_channel_is_404_when_not_configured(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    with TestClient(create_app(settings, nlu=nlu, kb=knowledge_base)) as plain:
        response = plain.post(
            "/channels/wecom/callback", params={"msg_signature": "a", "timestamp": "1", "nonce": "n"}
        )
        assert response.status_code == 404 and "TRIAGE_WECOM" in response.json()["detail"]


# ---------------------------------------------------------------------------- the handoff
def test_handoff_end_to_end_in_wecom(
    settings: Settings,
    fake: FakeWeCom,
    nlu: NLUPipeline,
    knowledge_base: KnowledgeBase,
    db: sync_redis.Redis,
    redis_prefix: str,
) -> None:
    desk_settings = wecom_settings(settings, fake, on_duty=None, offer_timeout_seconds=5.0)
    with TestClient(create_app(desk_settings, nlu=nlu, kb=knowledge_base)) as client:
        agent = Agent(client, "wecom-agent")
        agent.online()
        member = WeComMember(client, "urgentuser")
        member.say("系统打不开了，全公司都用不了，月底结账来不及了")
        cid = fake.wait_for(lambda _: _find(db, redis_prefix, "urgentuser"))
        fake.wait_for(lambda _: db.hget(Keys(redis_prefix).handoff(cid), "state") in ("queued", "assigned"))
        accepted = agent.post(f"{cid}/accept")
        assert accepted.status_code == 200, accepted.text
        assert agent.post(
            f"{cid}/agent_messages", {"text": "您好，我是值班客服，马上为您处理"}
        ).status_code in (
            200,
            201,
        )
        fake.wait_for(lambda f: any("值班客服" in t for t in f.texts_to("urgentuser")))
        before = len(fake.texts_to("urgentuser"))
        member.say("好的，谢谢，错误码是 E1001")
        fake.wait_for(
            lambda _: any(
                e.get("text") == "好的，谢谢，错误码是 E1001" for e in transcript(db, redis_prefix, cid)
            )
        )
        time.sleep(0.5)
        assert len(fake.texts_to("urgentuser")) == before  # the bot stays silent: a human owns it
        card = client.get(f"/api/v1/conversations/{cid}/context", headers=agent.headers).json()
        assert card["channel"] == "wecom"
        assert card["platform"] == {"app": "default", "corp_id": CORP_ID, "user_id": "urgentuser"}
        assert card["customer"]["verified"] and card["customer"]["tenant"] == "acme"
        assert card["customer"]["vip_tier"] == 2
        assert agent.post(f"{cid}/resolve").status_code == 200
        rating = fake.wait_for(lambda f: [t for t in f.texts_to("urgentuser") if "\n5. 5" in t])
        assert "打分" in rating[0]
        member.say("5")
        fake.wait_for(lambda _: [e for e in transcript(db, redis_prefix, cid) if e.get("type") == "csat"])
        assert [e["score"] for e in transcript(db, redis_prefix, cid) if e.get("type") == "csat"] == [5]


def test_a_ticket_opened_at_night_is_answered_in_wecom_the_next_morning(
    settings: Settings,
    fake: FakeWeCom,
    nlu: NLUPipeline,
    knowledge_base: KnowledgeBase,
    db: sync_redis.Redis,
    redis_prefix: str,
) -> None:
    """Nobody on duty: the urgent message opens a ticket and the member is told so in WeCom; the agent who
    comes on duty accepts it and the answer is pushed to the member."""
    night = wecom_settings(settings, fake, on_duty=None, offer_timeout_seconds=5.0)
    with TestClient(create_app(night, nlu=nlu, kb=knowledge_base)) as client:
        agent = Agent(client, "morning-agent")  # signed in, not online: nobody is on duty
        member = WeComMember(client, "nightowl")
        member.say("系统打不开了，全公司都用不了，月底结账来不及了")
        told = fake.wait_for(lambda f: [t for t in f.texts_to("nightowl") if "T-" in t])
        cid = conversation_of(db, redis_prefix, "nightowl")
        ticket_id = db.hget(Keys(redis_prefix).handoff(cid), "ticket_id")
        assert ticket_id and ticket_id in told[0]
        agent.online()
        fake.wait_for(lambda _: agent.post(f"{cid}/accept").status_code == 200, timeout=15)
        assert (
            agent.post(f"{cid}/agent_messages", {"text": "早上好，工单已收到，正在处理"}).status_code == 200
        )
        assert fake.wait_for(lambda f: [t for t in f.texts_to("nightowl") if "工单已收到" in t])


def test_no_secret_or_token_reaches_the_logs(
    client: TestClient, fake: FakeWeCom, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        member = WeComMember(client, "logwatch")
        member.say("怎么导出报销单")
        fake.wait_for(lambda f: f.texts_to("logwatch"))
        fake.expire_tokens()
        member.say("发票查验失败")
        fake.wait_for(lambda f: len(f.texts_to("logwatch")) >= 2)
    logged = caplog.text + repr(client.app.state.channels)  # type: ignore[attr-defined]
    assert "cgi-bin/gettoken" in caplog.text  # the requests were logged, with their credentials hidden
    for secret in (SECRET, AES_KEY, fake.token()):
        assert secret not in logged


def test_a_named_app_has_its_own_callback_url(
    settings: Settings, fake: FakeWeCom, nlu: NLUPipeline, knowledge_base: KnowledgeBase, tmp_path: Path
) -> None:
    channels = tmp_path / "channels.yml"
    channels.write_text(
        f"wecom:\n  - name: finance\n    corp_id: {CORP_ID}\n    agent_id: {AGENT_ID}\n    token: finance-token\n"
        f"    aes_key: {AES_KEY}\n    secret: {SECRET}\n    api_base: {fake.url}\n",
        encoding="utf-8",
    )
    configured = settings.model_copy(update={"channels_file": channels})
    with TestClient(create_app(configured, nlu=nlu, kb=knowledge_base)) as app_client:
        crypto = WeComCrypto("finance-token", AES_KEY, CORP_ID)
        echostr = crypto.encrypt("42")
        params = {
            "msg_signature": crypto.signature("1", "n", echostr),
            "timestamp": "1",
            "nonce": "n",
            "echostr": echostr,
        }
        assert app_client.get("/channels/wecom/finance/callback", params=params).text == "42"
        assert app_client.get("/channels/wecom/callback", params=params).text == "42"  # found by its token
        assert app_client.get("/channels/wecom/payroll/callback", params=params).status_code == 403
        member = WeComMember(app_client, "fin-user", path="/channels/wecom/finance/callback")
        member.crypto = crypto
        assert member.say("怎么导出报销单").status_code == 200
        assert fake.wait_for(lambda f: f.texts_to("fin-user"))
