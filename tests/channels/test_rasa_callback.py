"""A Rasa client with a callback URL: what the REST response did not carry (an agent's reply, "agent
joined", the CSAT request) reaches the callback server once, with a stable idempotency key; the callback
channel answers "success" and POSTs every reply; retries, and a failure agents see."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.channels.rasa import conversation_id
from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.channels.conftest import CallbackServer
from tests.gateway.conftest import Agent
from tests.rasa_token import AUTH
from triagebot.app import create_app


@pytest.fixture
def push_settings(settings: Settings, callback_server: CallbackServer) -> Settings:
    return settings.model_copy(
        update={
            "rasa_callback_url": callback_server.url,
            "on_duty": None,  # presence decides: the agent below signs in
            "outbox_backoff_seconds": 0.02,
            "outbox_max_attempts": 3,
        }
    )


@pytest.fixture
def app(push_settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase) -> Iterator[TestClient]:
    with TestClient(create_app(push_settings, nlu=nlu, kb=knowledge_base)) as client:
        yield client


def transcript(client: TestClient, cid: str) -> list[dict[str, Any]]:
    store = client.app.state.services.store  # type: ignore[attr-defined]
    events: list[dict[str, Any]] = client.portal.call(store.events_after, cid)  # type: ignore[union-attr]
    return events


def rest(client: TestClient, sender: str, text: str, **metadata: str) -> list[dict[str, Any]]:
    response = client.post(
        "/webhooks/rest/webhook",
        headers=AUTH,
        json={"sender": sender, "message": text, "metadata": metadata or None},
    )
    assert response.status_code == 200, response.text
    replies: list[dict[str, Any]] = response.json()
    return replies


def test_agent_reply_reaches_a_rest_client_through_its_callback_url(
    app: TestClient, callback_server: CallbackServer
) -> None:
    agent = Agent(app, "wang")
    agent.online()
    cid = conversation_id("rest", "u1")
    inline = rest(app, "u1", "转人工")
    assert inline and inline[0]["recipient_id"] == "u1"  # the handoff notice, in the HTTP response
    assert agent.post(f"{cid}/accept").status_code == 200
    said = agent.post(f"{cid}/agent_messages", {"text": "您好，我是客服小王", "client_msg_id": "a1"})
    assert said.status_code == 200, said.text
    assert agent.post(f"{cid}/resolve").status_code == 200

    # The CSAT request comes after everything else: once it is there, the rest has been delivered.
    callback_server.wait_for(lambda s: any(r.body.get("buttons") for r in s.delivered))
    received = callback_server.delivered
    agent_posts = [r for r in received if r.body["text"] == "您好，我是客服小王"]
    assert len(agent_posts) == 1
    seq = said.json()["seq"]
    assert agent_posts[0].message_id == f"{cid}:{seq}" == agent_posts[0].idempotency_key
    assert agent_posts[0].body["recipient_id"] == "u1"
    assert [r.body["metadata"]["role"] for r in received] == ["system", "agent", "system", "system"]
    assert "小王" in received[0].body["text"] or "wang" in received[0].body["text"]  # "agent joined"
    assert [b["title"] for b in received[-1].body["buttons"]] == ["1", "2", "3", "4", "5"]
    # What the HTTP response carried is not pushed again; nothing is POSTed twice.
    assert not {r["text"] for r in inline} & set(callback_server.texts())
    assert len(callback_server.received) == len(callback_server.message_ids()) == 4


def test_a_retried_rest_message_is_answered_once_and_pushes_nothing(
    app: TestClient, callback_server: CallbackServer
) -> None:
    first = rest(app, "u2", "发票查验失败", message_id="m1")
    again = rest(app, "u2", "发票查验失败", message_id="m1")
    assert first == again
    rest(app, "u2", "谢谢")
    cid = conversation_id("rest", "u2")
    assert next(e["client_msg_id"] for e in transcript(app, cid) if e.get("role") == "user") == "m1"
    # A later system message (as the desk would write) is pushed: once it arrives, everything before it
    # has been read — and the inline replies were skipped.
    store = app.app.state.services.store  # type: ignore[attr-defined]
    fence = {"type": "message", "role": "system", "text": "fence"}
    app.portal.call(store.append, cid, fence)  # type: ignore[union-attr]
    callback_server.wait_for(lambda s: s.delivered)
    assert [r.body["text"] for r in callback_server.received] == ["fence"]


def test_callback_channel_answers_success_and_posts_the_replies(
    app: TestClient, callback_server: CallbackServer
) -> None:
    response = app.post(
        "/webhooks/callback/webhook", headers=AUTH, json={"sender": "c1", "message": "发票查验失败"}
    )
    assert response.status_code == 200 and response.text == "success"
    cid = conversation_id("callback", "c1")
    replies = [e for e in transcript(app, cid) if e.get("role") == "bot"]
    assert replies
    callback_server.wait_for(lambda s: len(s.delivered) == len(replies))
    assert [r.body["text"] for r in callback_server.delivered] == [e["text"] for e in replies]
    assert {r.body["recipient_id"] for r in callback_server.delivered} == {"c1"}
    assert [r.message_id for r in callback_server.delivered] == [f"{cid}:{e['seq']}" for e in replies]


def test_a_callback_url_that_fails_twice_still_gets_the_message_once(
    app: TestClient, callback_server: CallbackServer
) -> None:
    callback_server.fail_first = 2
    app.post("/webhooks/callback/webhook", headers=AUTH, json={"sender": "c2", "message": "你好"})
    callback_server.wait_for(lambda s: s.delivered)
    assert len(callback_server.received) == 3  # two 500s, then the 200
    assert len(callback_server.message_ids()) == 1
    assert not [
        e for e in transcript(app, conversation_id("callback", "c2")) if e["type"] == "delivery_failed"
    ]


def test_a_callback_url_that_always_fails_leaves_a_note_for_agents_only(
    app: TestClient, callback_server: CallbackServer
) -> None:
    callback_server.always_fail = True
    cid = conversation_id("callback", "c3")
    app.post("/webhooks/callback/webhook", headers=AUTH, json={"sender": "c3", "message": "你好"})
    app.post("/webhooks/callback/webhook", headers=AUTH, json={"sender": "c3", "message": "谢谢"})

    def failures() -> list[dict[str, Any]]:
        return [e for e in transcript(app, cid) if e["type"] == "delivery_failed"]

    callback_server.wait_for(lambda s: len(failures()) == 2)
    bot = [e["seq"] for e in transcript(app, cid) if e.get("role") == "bot"]
    assert [f["failed_seq"] for f in failures()] == bot
    assert all(f["visibility"] == "internal" and f["channel"] == "callback" for f in failures())
    assert "500" in failures()[0]["error"]
    # Three tries per reply, and the failure records themselves are never sent.
    assert len(callback_server.received) == 3 * len(bot)
    assert callback_server.message_ids() == {f"{cid}:{seq}" for seq in bot}


def test_the_callback_channel_is_off_without_a_callback_url(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    with TestClient(create_app(settings, nlu=nlu, kb=knowledge_base)) as client:
        response = client.post(
            "/webhooks/callback/webhook", headers=AUTH, json={"sender": "c4", "message": "你好"}
        )
        assert response.status_code == 404
        assert "TRIAGE_RASA_CALLBACK_URL" in response.json()["detail"]
        # The REST channel still answers synchronously, and follows nothing.
        assert rest(client, "u4", "你好")
        followed = client.portal.call(  # type: ignore[union-attr]
            client.app.state.services.store.redis.zcard,  # type: ignore[attr-defined]
            client.app.state.services.store.keys.push_conversations,  # type: ignore[attr-defined]
        )
        assert followed == 0
