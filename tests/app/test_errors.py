"""Errors map to HTTP statuses and websocket close codes by their class hierarchy, in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis.exceptions import (
    ClusterDownError,
    ClusterError,
    MasterDownError,
    MaxConnectionsError,
    ReadOnlyError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.app import errors
from bot.errors import (
    AlreadyExists,
    AuthError,
    ConfigError,
    Conflict,
    EmptyMessage,
    Forbidden,
    InputError,
    MessageTooLarge,
    NotFound,
    RateLimited,
    StillProcessing,
    TriageError,
    Unavailable,
)
from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.ownership import Owner, TransitionError
from bot.realtime.failures import STATUS, classify
from bot.settings import Settings
from bot.store.conversations import ConversationStore
from handoff_gateway.agents import AgentExists, TooManyAttempts
from tests.app.conftest import Chat
from tests.gateway.conftest import Agent
from triagebot.app import create_app


class SeatTaken(Conflict):
    """A subclass with no entry of its own: it inherits its parent's mapping."""


class Gone(NotFound):
    """A subclass given its own entry (at the end of the table) in the test below."""


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TriageError("x"), (500, 1011, False)),
        (ConfigError("x"), (500, 1011, False)),
        (InputError("x"), (422, 4400, False)),
        (EmptyMessage(), (422, 4400, False)),
        (MessageTooLarge(5000, 4000), (413, 1009, False)),
        (AuthError("x"), (401, 4401, False)),
        (RateLimited("x", 3), (429, 4429, True)),
        (TooManyAttempts(3), (429, 4429, True)),
        (Forbidden("x"), (403, 4403, False)),
        (NotFound("x"), (404, 4404, False)),
        (Conflict("x"), (409, 4409, False)),
        (AlreadyExists("x"), (409, 4409, False)),
        (AgentExists("x"), (409, 4409, False)),
        (SeatTaken("x"), (409, 4409, False)),
        (TransitionError("c1", Owner.BOT, Owner.RESOLVED), (409, 4409, False)),
        (Unavailable("x"), (503, 1013, True)),
        (StillProcessing("x"), (503, 1013, True)),
        (RedisConnectionError("down"), (503, 1013, True)),
        (RedisTimeoutError("slow"), (503, 1013, True)),
        (ConnectionRefusedError(), (503, 1013, True)),
        # A Redis failing over (cluster or Sentinel): the same request succeeds once a replica is promoted.
        # Regression: "The cluster is down" reached a widget as a final, non-retryable failure.
        (ClusterDownError("The cluster is down"), (503, 1013, True)),
        (MasterDownError("MASTERDOWN Link with MASTER is down"), (503, 1013, True)),
        (TryAgainError("TRYAGAIN"), (503, 1013, True)),
        (ClusterError("TTL exhausted."), (503, 1013, True)),
        (SlotNotCoveredError("slot 42 is not covered"), (503, 1013, True)),
        (ReadOnlyError("You can't write against a read only replica."), (503, 1013, True)),
        (MaxConnectionsError("Too many connections"), (503, 1013, True)),
        (ValueError("a bug"), (500, 1011, False)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_classify(exc: BaseException, expected: tuple[int, int, bool]) -> None:
    assert classify(exc) == expected


def test_the_most_specific_class_wins_whatever_the_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # Added last, after NotFound: a first-match list would still answer 404.
    monkeypatch.setitem(STATUS, Gone, (410, 4410))
    assert list(STATUS)[-1] is Gone
    assert classify(Gone("x")) == (410, 4410, False)
    assert classify(NotFound("x")) == (404, 4404, False)


def test_errors_reach_http_clients_with_status_and_retry_after() -> None:
    app = FastAPI()
    errors.install(app)
    raised: dict[str, Exception] = {
        "empty": EmptyMessage(),
        "exists": AlreadyExists("conversation 'c1' already exists"),
        "busy": StillProcessing("message 'm1' is still being processed; retry shortly"),
    }

    @app.get("/{name}")
    async def fail(name: str) -> None:
        raise raised[name]

    with TestClient(app) as client:
        empty, exists, busy = (client.get(f"/{name}") for name in raised)
    assert empty.status_code == 422 and "type something" in empty.json()["detail"]
    assert exists.status_code == 409 and exists.json()["error"] == "AlreadyExists"
    assert busy.status_code == 503 and busy.json()["retryable"] and busy.headers["Retry-After"] == "2"


def test_a_blank_agent_message_is_422_not_500(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    with TestClient(create_app(settings.model_copy(update={"on_duty": None}), nlu, knowledge_base)) as desk:
        agent = Agent(desk, "blank")
        user = Chat(desk)
        user.say("我要转人工客服")
        assert agent.post(f"{user.id}/accept").status_code == 200
        response = agent.post(f"{user.id}/agent_messages", {"text": "   \n\t "})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "EmptyMessage"


@pytest.fixture
async def store(redis_url: str, redis_prefix: str) -> AsyncIterator[ConversationStore]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield ConversationStore(client, redis_prefix, retention_seconds=60)
    await client.aclose()


async def test_a_conversation_created_twice_already_exists(store: ConversationStore) -> None:
    await store.create("web", "u1", "conv-twice")
    with pytest.raises(AlreadyExists, match="already exists"):
        await store.create("web", "u1", "conv-twice")
    assert (await store.get_or_create("conv-twice", "web"))["conversation_id"] == "conv-twice"


async def test_a_message_still_being_processed_asks_for_a_retry(store: ConversationStore) -> None:
    cid = (await store.create("web", "u1"))["conversation_id"]
    assert await store.claim(cid, "m1") is None  # the first delivery, not finished
    with pytest.raises(StillProcessing) as caught:
        await store.claim(cid, "m1", wait_s=0.1)
    assert classify(caught.value) == (503, 1013, True)
