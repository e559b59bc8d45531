from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from triagebot.app import create_app


@pytest.fixture
def client(settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase) -> Iterator[TestClient]:
    with TestClient(create_app(settings, nlu=nlu, kb=knowledge_base)) as test_client:
        yield test_client


class Chat:
    """A conversation that reads like a chat: ``chat.say("发票查验失败")`` then assert on the reply."""

    def __init__(self, client: TestClient, channel: str = "web", identity_token: str | None = None) -> None:
        """Anonymous, or the verified user a signed ``identity_token`` (tests/identity_tokens.py) names."""
        self.client = client
        body: dict[str, Any] = {"channel": channel}
        if identity_token is not None:
            body["identity_token"] = identity_token
        created = client.post("/api/v1/conversations", json=body)
        assert created.status_code == 201, created.text
        self.id = created.json()["conversation_id"]
        self.token = created.json()["token"]
        self.last: dict[str, Any] = {}

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, text: str, client_msg_id: str | None = None) -> Any:
        return self.client.post(
            f"/api/v1/conversations/{self.id}/messages",
            headers=self.headers,
            json={"text": text, "client_msg_id": client_msg_id or uuid.uuid4().hex},
        )

    def say(self, text: str, client_msg_id: str | None = None) -> dict[str, Any]:
        response = self.post(text, client_msg_id)
        assert response.status_code == 200, response.text
        self.last = response.json()
        return self.last

    @property
    def text(self) -> str:
        return "\n".join(r["text"] for r in self.last["replies"])

    @property
    def buttons(self) -> list[str]:
        return [b["title"] for r in self.last["replies"] for b in r["buttons"]]

    def click(self, title: str) -> dict[str, Any]:
        for reply in self.last["replies"]:
            for button in reply["buttons"]:
                if button["title"] == title:
                    return self.say(button["payload"])
        raise AssertionError(f"no button {title!r} in {self.buttons}")

    def events(self, after: int = 0) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/api/v1/conversations/{self.id}/events", params={"after": after}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events


@pytest.fixture
def chat(client: TestClient) -> Chat:
    return Chat(client)


@pytest.fixture
def new_chat(client: TestClient) -> Any:
    return lambda: Chat(client)


@pytest.fixture
def off_duty(settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase) -> Iterator[TestClient]:
    """Nobody on duty: every handoff opens a ticket."""
    with TestClient(
        create_app(settings.model_copy(update={"on_duty": False}), nlu=nlu, kb=knowledge_base)
    ) as c:
        yield c
