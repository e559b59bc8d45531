"""Hostile request bodies and parameters are refused with a 4xx that says why — never a 500, never a body
read whole, never an input echoed back or logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.app.conftest import Chat
from tests.rasa_token import AUTH
from triagebot.app import create_app

PHONE = "13800138000"  # PII that must appear in no response and no log line
SURROGATE_BODY = '{"text": "\\ud800 call me on ' + PHONE + '", "client_msg_id": "m1"}'


def json_endpoints() -> list[tuple[str, str]]:
    """Every (method, path) of the product's OpenAPI schema that takes a JSON body."""
    spec = create_app(Settings(redis_url="redis://unused")).openapi()
    return [
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


@pytest.fixture
def small_limits(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_body_bytes": 4096})


@pytest.fixture
def limited(small_limits: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase) -> Iterator[TestClient]:
    with TestClient(create_app(small_limits, nlu=nlu, kb=knowledge_base)) as client:
        yield client


def test_every_json_endpoint_is_enumerated() -> None:
    assert len(json_endpoints()) >= 10  # the nine of the report and the presence endpoint


@pytest.mark.parametrize(("method", "path"), json_endpoints())
def test_a_lone_surrogate_is_422_on_every_json_endpoint(
    client: TestClient, chat: Chat, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    caplog.set_level(logging.DEBUG)
    response = client.request(
        method,
        path.replace("{conversation_id}", chat.id),
        content=SURROGATE_BODY.encode(),
        headers={**chat.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert "surrogate" in response.json()["detail"][0]["msg"]
    assert PHONE not in response.text
    assert PHONE not in caplog.text


def test_a_message_with_a_lone_surrogate_is_not_stored(client: TestClient, chat: Chat) -> None:
    response = client.post(
        f"/api/v1/conversations/{chat.id}/messages",
        content=SURROGATE_BODY.encode(),
        headers={**chat.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert chat.events() == []
    # A surrogate pair is a character like any other.
    assert chat.say("emoji \ud83d\ude00 ok".encode("utf-16", "surrogatepass").decode("utf-16"))["replies"]


@pytest.mark.parametrize("after", [2**63, 18446744073709551615, -1])
def test_events_after_out_of_range_is_422(client: TestClient, chat: Chat, after: int) -> None:
    response = client.get(
        f"/api/v1/conversations/{chat.id}/events", params={"after": after}, headers=chat.headers
    )
    assert response.status_code == 422, response.text
    assert (
        client.get(
            f"/api/v1/conversations/{chat.id}/events", params={"after": 2**63 - 1}, headers=chat.headers
        ).json()["events"]
        == []
    )


def test_validation_errors_do_not_echo_the_input(client: TestClient, chat: Chat) -> None:
    response = client.post(
        f"/api/v1/conversations/{chat.id}/messages",
        headers=chat.headers,
        json={"text": f"my phone is {PHONE}", "client_msg_id": "m1", "note": f"call {PHONE}"},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert set(error) == {"loc", "msg", "type"} and error["loc"] == ["body", "note"]
    assert PHONE not in response.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/webhooks/rest/webhook", {"sender": "u1", "message": "你好", "unknown": 1}),
        ("/webhooks/callback/webhook", {"sender": "u1", "message": "你好", "unknown": 1}),
        ("/model/parse", {"text": "你好", "unknown": 1}),
        (
            "/webhooks/rest/webhook",
            {"sender": "u1", "message": "你好", "metadata": {"message_id": "x" * 10_000}},
        ),
        ("/webhooks/rest/webhook", {"sender": "u" * 200, "message": "你好"}),
    ],
    ids=["rest-extra", "callback-extra", "parse-extra", "rest-huge-message-id", "rest-huge-sender"],
)
def test_rasa_endpoints_refuse_unknown_fields_and_unbounded_ids(
    client: TestClient, path: str, body: dict[str, object]
) -> None:
    response = client.post(path, headers=AUTH, json=body)
    assert response.status_code == 422, response.text
    assert "x" * 200 not in response.text


def test_rasa_clients_keep_working(client: TestClient) -> None:
    sent = {
        "sender": "u1",
        "message": "你好",
        "input_channel": "rest",
        "metadata": {"message_id": 42, "k": 1},
    }
    assert client.post("/webhooks/rest/webhook", headers=AUTH, json=sent).status_code == 200
    assert (
        client.post("/model/parse", headers=AUTH, json={"text": "你好", "message_id": "m1"}).status_code
        == 200
    )


def test_a_declared_body_over_the_limit_is_413_before_it_is_read(limited: TestClient) -> None:
    response = limited.post(
        "/api/v1/conversations",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": str(100 * 1024 * 1024)},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "PayloadTooLarge"


def test_a_streamed_body_over_the_limit_is_413(limited: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked
        yield b'{"sender": "u1", "message": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    for path, kind in [("/webhooks/rest/webhook", "application/json"), ("/model/parse", "text/plain")]:
        response = limited.post(path, content=chunks(), headers={"Content-Type": kind, **AUTH})
        assert response.status_code == 413, response.text


def test_a_body_under_the_limit_passes(limited: TestClient) -> None:
    body = json.dumps({"sender": "u1", "message": "你好"}).encode()
    assert (
        limited.post(
            "/webhooks/rest/webhook", content=body, headers={"Content-Type": "application/json", **AUTH}
        ).status_code
        == 200
    )
