from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from tests.app.conftest import Chat
from triagebot.app import create_app


@pytest.fixture
def desk_settings(settings: Settings) -> Settings:
    """Presence decides who is on duty; short timers so the tests run quickly."""
    return settings.model_copy(
        update={"on_duty": None, "offer_timeout_seconds": 1.0, "presence_grace_seconds": 30.0}
    )


@pytest.fixture
def desk(desk_settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase) -> Iterator[TestClient]:
    with TestClient(create_app(desk_settings, nlu=nlu, kb=knowledge_base)) as client:
        yield client


class Agent:
    """An agent driving the REST API."""

    def __init__(
        self,
        client: TestClient,
        name: str,
        role: str = "agent",
        skills: tuple[str, ...] = ("zh", "en"),
        capacity: int = 3,
    ) -> None:
        gw = client.app.state.gateway  # type: ignore[attr-defined]
        self.client = client
        self.record, self.api_token = client.portal.call(
            gw.agents.add, name, "password-123", role, skills, capacity
        )  # type: ignore[union-attr]
        login = client.post("/api/v1/agents/login", json={"name": name, "password": "password-123"})
        assert login.status_code == 200, login.text
        self.token = login.json()["token"]

    @property
    def id(self) -> str:
        return str(self.record.id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def online(self) -> None:
        assert (
            self.client.put(
                "/api/v1/agents/me/presence", json={"status": "online"}, headers=self.headers
            ).status_code
            == 200
        )

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(f"/api/v1/conversations/{path}", json=body or {}, headers=self.headers)


@pytest.fixture
def make_agent(desk: TestClient) -> Any:
    return lambda name, **kw: Agent(desk, name, **kw)


@pytest.fixture
def user(desk: TestClient) -> Chat:
    return Chat(desk)
