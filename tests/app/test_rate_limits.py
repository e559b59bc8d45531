"""Per-client limits on Redis: new conversations per client address, messages per conversation. A refusal
says when to retry (429 + Retry-After, or an error frame) and stores nothing; every accepted message is
answered and in the transcript."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.app.conftest import Chat
from tests.app.test_websocket import hello, receive_until
from tests.rasa_token import AUTH
from triagebot.app import create_app


@pytest.fixture
def strict(settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase) -> Iterator[TestClient]:
    tight = settings.model_copy(update={"conversations_per_minute": 5, "messages_per_minute": 3})
    with TestClient(create_app(tight, nlu=nlu, kb=knowledge_base)) as client:
        yield client


def test_new_conversations_are_limited_per_client_address(strict: TestClient) -> None:
    created = [strict.post("/api/v1/conversations", json={}) for _ in range(8)]
    assert [r.status_code for r in created] == [201] * 5 + [429] * 3
    refused = created[-1]
    assert refused.json()["error"] == "RateLimited" and refused.json()["retryable"] is True
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_rest_messages_are_limited_per_conversation(strict: TestClient) -> None:
    chat = Chat(strict)
    answered = [chat.post("你好", client_msg_id=f"m{i}") for i in range(5)]
    assert [r.status_code for r in answered] == [200, 200, 200, 429, 429]
    assert int(answered[-1].headers["Retry-After"]) >= 1
    users = [e["client_msg_id"] for e in chat.events() if e.get("role") == "user"]
    assert users == ["m0", "m1", "m2"]  # the refused ones were not stored
    other = Chat(strict)  # another conversation has its own allowance
    assert other.post("你好").status_code == 200


def test_a_websocket_flood_is_refused_with_error_frames_and_nothing_accepted_is_dropped(
    strict: TestClient,
) -> None:
    chat = Chat(strict)
    with strict.websocket_connect("/ws/chat") as ws:
        hello(ws, chat)
        for i in range(50):
            ws.send_text(json.dumps({"type": "message", "text": "你好", "client_msg_id": f"w{i}"}))
        frames = receive_until(ws, lambda f: f.get("client_msg_id") == "w49" and f["type"] == "error", 400)
    refused = [f for f in frames if f["type"] == "error"]
    assert {f["code"] for f in refused} == {"rate_limited"} and len(refused) == 47
    assert all(f["retryable"] and f["retry_after"] >= 1 for f in refused)
    accepted = [f["client_msg_id"] for f in chat.events() if f.get("role") == "user"]
    assert accepted == ["w0", "w1", "w2"]
    assert len([e for e in chat.events() if e.get("role") == "bot"]) >= 3  # each accepted one answered


def test_rasa_messages_are_limited_per_sender(strict: TestClient) -> None:
    sent = [
        strict.post("/webhooks/rest/webhook", headers=AUTH, json={"sender": "flood", "message": "你好"})
        for _ in range(4)
    ]
    assert [r.status_code for r in sent] == [200, 200, 200, 429]
