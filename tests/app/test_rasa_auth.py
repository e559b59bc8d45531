"""The Rasa endpoints take a shared secret (``TRIAGE_RASA_WEBHOOK_TOKEN``), as Rasa's own server does:
``?token=`` or ``Authorization: Bearer``. Without one configured they are off; a wrong or missing token
stores nothing and echoes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis as sync_redis
from fastapi.testclient import TestClient

from bot.channels.rasa import conversation_id
from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from bot.store.keys import Keys
from tests.rasa_token import AUTH, TOKEN
from triagebot.app import create_app

ENDPOINTS: list[tuple[str, dict[str, Any]]] = [
    ("/webhooks/rest/webhook", {"sender": "alice@acme.com", "message": "我的工单处理到哪了"}),
    ("/webhooks/callback/webhook", {"sender": "alice@acme.com", "message": "你好"}),
    ("/model/parse", {"text": "发票查验失败"}),
]


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {}),
        ({"token": "wrong"}, {}),
        ({}, {"Authorization": "Bearer wrong"}),
        ({}, {"Authorization": TOKEN}),  # not a Bearer credential
        ({"token": TOKEN[:-1]}, {}),
        ({"token": ""}, {}),
    ],
)
def test_without_the_token_the_rasa_endpoints_answer_401_and_store_nothing(
    client: TestClient,
    redis_url: str,
    redis_prefix: str,
    path: str,
    body: dict[str, Any],
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    response = client.post(path, params=params, headers=headers, json=body)
    assert response.status_code == 401, response.text
    assert "TRIAGE_RASA_WEBHOOK_TOKEN" in response.json()["detail"]
    assert "alice" not in response.text and "发票" not in response.text
    with sync_redis.Redis.from_url(redis_url) as r:
        # no conversation, no rate bucket, no idempotency record
        assert list(r.scan_iter(f"{redis_prefix}conv*")) == []


@pytest.mark.parametrize(("path", "body"), ENDPOINTS[::2])  # the callback channel needs a callback URL
@pytest.mark.parametrize("how", ["query", "bearer"])
def test_the_token_as_query_parameter_or_bearer_is_accepted(
    client: TestClient, path: str, body: dict[str, Any], how: str
) -> None:
    credential: dict[str, Any] = {"params": {"token": TOKEN}} if how == "query" else {"headers": AUTH}
    response = client.post(path, json=body, **credential)
    assert response.status_code == 200, response.text


def test_a_bad_body_without_the_token_is_401_not_422(client: TestClient) -> None:
    response = client.post("/webhooks/rest/webhook", json={"sender": "x", "message": "hi", "secret": "p4ss"})
    assert response.status_code == 401 and "p4ss" not in response.text


@pytest.mark.parametrize(("path", "body"), ENDPOINTS)
def test_with_no_token_configured_the_rasa_endpoints_are_off_and_say_how_to_enable_them(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase, path: str, body: dict[str, Any]
) -> None:
    off = settings.model_copy(update={"rasa_webhook_token": None})
    with TestClient(create_app(off, nlu=nlu, kb=knowledge_base)) as client:
        for credential in ({}, {"token": TOKEN}, {"token": ""}):
            response = client.post(path, params=credential, json=body)
            assert response.status_code == 404, response.text
            assert "TRIAGE_RASA_WEBHOOK_TOKEN" in response.json()["detail"]


def test_a_replayed_message_id_returns_the_stored_reply_only_to_its_sender(
    client: TestClient, redis_url: str, redis_prefix: str
) -> None:
    """The idempotency record lives in the sender's own conversation (its id is a digest of the sender), so
    another sender reusing the message id gets a reply of its own, never alice's."""
    message_id = uuid.uuid4().hex
    alice = client.post(
        "/webhooks/rest/webhook",
        headers=AUTH,
        json={
            "sender": "alice@acme.com",
            "message": "how do I reset my password",
            "metadata": {"message_id": message_id},
        },
    ).json()
    replayed = client.post(
        "/webhooks/rest/webhook",
        headers=AUTH,
        json={"sender": "mallory", "message": "你好", "metadata": {"message_id": message_id}},
    ).json()
    assert replayed and all(m["recipient_id"] == "mallory" for m in replayed)
    assert [m["text"] for m in replayed] != [m["text"] for m in alice]
    again = client.post(
        "/webhooks/rest/webhook",
        headers=AUTH,
        json={
            "sender": "alice@acme.com",
            "message": "how do I reset my password",
            "metadata": {"message_id": message_id},
        },
    ).json()
    assert again == alice  # her own retry still gets her first reply
    keys = Keys(redis_prefix)
    with sync_redis.Redis.from_url(redis_url) as r:
        assert r.exists(keys.idempotency(conversation_id("rest", "alice@acme.com"), message_id))
        assert r.exists(keys.idempotency(conversation_id("rest", "mallory"), message_id))
