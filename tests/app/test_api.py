"""The HTTP API: shapes, auth, bad input, long-poll, Rasa compatibility, health and metrics."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import Chat
from tests.rasa_token import AUTH


def test_create_conversation_returns_id_and_token(client: TestClient) -> None:
    response = client.post("/api/v1/conversations", json={"channel": "web"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"conversation_id", "token"} and len(body["token"]) >= 32


def test_message_response_shape(chat: Chat) -> None:
    body = chat.say("收不到短信验证码")
    assert set(body) == {"conversation_id", "state", "replies", "parse", "handoff", "ticket_id"}
    assert body["state"] in ("bot", "queued", "assigned", "resolved")
    assert set(body["parse"]) >= {"intent", "confidence", "severity", "sentiment"}
    reply = body["replies"][0]
    assert set(reply) == {"seq", "text", "buttons"} and reply["seq"] >= 2
    assert all(set(b) == {"title", "payload"} for b in reply["buttons"])


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Basic abc"}, 401),
        ({"Authorization": "Bearer "}, 401),
    ],
)
def test_a_conversation_needs_its_own_token(
    chat: Chat, client: TestClient, headers: dict[str, str], status: int
) -> None:
    url = f"/api/v1/conversations/{chat.id}"
    assert (
        client.post(f"{url}/messages", json={"text": "hi", "client_msg_id": "1"}, headers=headers).status_code
        == status
    )
    assert client.get(f"{url}/events", headers=headers).status_code == status


def test_another_conversations_token_is_refused(chat: Chat, client: TestClient) -> None:
    other = Chat(client)
    response = client.get(f"/api/v1/conversations/{chat.id}/events", headers=other.headers)
    assert response.status_code == 401 and "does not open" in response.json()["detail"]


def test_unknown_conversation_is_401_like_a_wrong_token(client: TestClient, chat: Chat) -> None:
    """Existence is not told apart (tests/app/test_probing.py)."""
    response = client.post(
        "/api/v1/conversations/nope/messages", headers=chat.headers, json={"text": "hi", "client_msg_id": "1"}
    )
    assert response.status_code == 401 and "does not open" in response.json()["detail"]


def test_oversized_text_is_413_and_nothing_is_stored(chat: Chat, client: TestClient) -> None:
    response = chat.post("发" * 4001)
    assert response.status_code == 413
    assert "4,000" in response.json()["detail"]
    assert chat.events() == []
    assert client.post("/model/parse", headers=AUTH, json={"text": "x" * 4001}).status_code == 413


@pytest.mark.parametrize(
    "body",
    [
        '{"text": "hi"',
        '{"text": "hi"}',
        '{"client_msg_id": "1"}',
        '{"text": 5, "client_msg_id": "1"}',
        '{"text": "hi", "client_msg_id": "1", "extra": true}',
        "[]",
        "\xff\xfe",
    ],
)
def test_malformed_bodies_are_422(chat: Chat, client: TestClient, body: str) -> None:
    response = client.post(
        f"/api/v1/conversations/{chat.id}/messages",
        content=body.encode("utf-8", "surrogateescape"),
        headers={**chat.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422


@pytest.mark.parametrize("text", ["", "   ", "😀😀😀", "\x00\x01", "?!。，", "a" * 4000])
def test_odd_messages_get_a_reply_not_a_crash(chat: Chat, text: str) -> None:
    body = chat.say(text)
    assert body["state"] in ("bot", "queued")


def test_events_after_and_long_poll(chat: Chat, client: TestClient) -> None:
    chat.say("你好")
    events = chat.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["role"] == "user" and events[1]["role"] == "bot"
    last = events[-1]["seq"]
    assert chat.events(after=last) == []

    def later() -> None:
        time.sleep(0.3)
        Chat.say(chat, "谢谢")

    thread = threading.Thread(target=later)
    started = time.monotonic()
    thread.start()
    response = client.get(
        f"/api/v1/conversations/{chat.id}/events", params={"after": last, "wait": 5}, headers=chat.headers
    )
    thread.join()
    assert response.status_code == 200
    assert response.json()["events"][0]["seq"] == last + 1
    assert time.monotonic() - started < 5
    assert (
        client.get(
            f"/api/v1/conversations/{chat.id}/events", params={"wait": 31}, headers=chat.headers
        ).status_code
        == 422
    )


def test_rasa_rest_webhook(client: TestClient) -> None:
    sender = "rasa-" + uuid.uuid4().hex[:6]
    response = client.post(
        "/webhooks/rest/webhook",
        headers=AUTH,
        json={"sender": sender, "message": "how do I reset my password"},
    )
    assert response.status_code == 200
    messages = response.json()
    assert messages and all(m["recipient_id"] == sender and m["text"] for m in messages)
    assert messages[0]["buttons"][0] == {"title": "Helpful", "payload": "/helpful"}
    again = client.post(
        "/webhooks/rest/webhook", headers=AUTH, json={"sender": sender, "message": "/not_helpful"}
    ).json()
    assert "agent" in again[0]["text"]  # same conversation: the button answered the last answer
    assert client.post("/webhooks/rest/webhook", headers=AUTH, json={"message": "hi"}).status_code == 422


def test_rasa_model_parse(client: TestClient) -> None:
    body = client.post(
        "/model/parse", headers=AUTH, json={"text": "发票查验失败 24442000000123456789"}
    ).json()
    assert body["intent"]["name"] == "invoice_verification_failed"
    assert body["entities"][0]["entity"] == "invoice_number"
    assert {"text", "intent", "entities", "intent_ranking"} <= set(body)


def test_health_ready_metrics(chat: Chat, client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"nlu": True, "kb": True, "redis": True}
    chat.say("转人工")
    text = client.get("/metrics").text
    assert "triage_messages_total" in text
    assert 'triage_handoffs_total{reason="user_request",severity="normal"}' in text
    assert "triage_reply_seconds_bucket" in text


def test_openapi_declares_every_model(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    components = set(schema["components"]["schemas"])
    assert {
        "MessageIn",
        "MessageOut",
        "CreateConversationOut",
        "EventsOut",
        "TicketOut",
        "RasaReplyOut",
        "HandoffOut",
        "ErrorOut",
    } <= components
    post = schema["paths"]["/api/v1/conversations/{conversation_id}/messages"]["post"]
    assert {"200", "401", "404", "413", "422", "503"} <= set(post["responses"])


def test_demo_page_widget_and_article(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "/static/widget.js" in page.text
    assert client.get("/static/widget.js").status_code == 200
    article = client.get("/api/v1/kb/zh-verify-not-found").json()
    assert article["steps"]
    assert client.get("/kb/zh-verify-not-found").status_code == 200
    assert client.get("/kb/nope").status_code == 404
    assert client.get("/api/v1/kb/nope").status_code == 404
