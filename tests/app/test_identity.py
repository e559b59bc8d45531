"""Verified identity from the host SaaS: who the user is comes only from a signed identity token.

Regression tests for two defects: anyone could send ``vip: 9`` (or any ``user``/``tenant``) in the unsigned
create-conversation body and jump the queue, and every anonymous web user shared one ticket history, so
agents saw strangers' tickets as "earlier tickets"."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis as sync_redis
from fastapi.testclient import TestClient

from bot.identity import Identity, IdentityExpired, IdentityInvalid, verify_identity_token
from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from bot.store.keys import Keys
from tests.app.conftest import Chat
from tests.gateway.conftest import Agent
from tests.identity_tokens import (
    SECRET,
    foreign_alg_token,
    identity_token,
    tampered_token,
    unsigned_token,
)
from triagebot.app import create_app


@pytest.fixture
def agent(client: TestClient) -> Agent:
    """A supervisor: the cards read here are of conversations still with the bot (agents may not)."""
    return Agent(client, "agent-" + uuid.uuid4().hex[:6], role="supervisor")


@pytest.fixture
def db(redis_url: str) -> Iterator[sync_redis.Redis]:
    connection = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    yield connection
    connection.close()


def card(client: TestClient, agent: Agent, conversation_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/conversations/{conversation_id}/context", headers=agent.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def create(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post("/api/v1/conversations", json=body)


# ------------------------------------------------------------------------------ bad tokens → 401
@pytest.mark.parametrize(
    ("token", "says"),
    [
        pytest.param(tampered_token(vip=3), "signature does not match", id="tampered-payload"),
        pytest.param(identity_token(expires_in=-3600), "expired: ask the host page", id="expired"),
        pytest.param(unsigned_token(vip=3), "must be signed with HS256", id="alg-none"),
        pytest.param(unsigned_token(), "must be signed with HS256", id="alg-none-no-vip"),
        pytest.param(
            identity_token(secret="another-secret-of-enough-length-123456"), "signature", id="wrong-secret"
        ),
        pytest.param(identity_token(algorithm="HS512"), "must be signed with HS256", id="hs512"),
        pytest.param(foreign_alg_token("RS256"), "must be signed with HS256", id="rs256"),
        pytest.param(identity_token(sub=None), "'sub' is required", id="missing-sub"),
        pytest.param(identity_token(expires_in=None), "'exp' is required", id="missing-exp"),
        pytest.param(identity_token(sub=""), "'sub'", id="empty-sub"),
        pytest.param(identity_token(vip=7), "'vip' must be an integer from 0 to 3", id="vip-7"),
        pytest.param(identity_token(vip=-1), "'vip'", id="vip-negative"),
        pytest.param(identity_token(vip="3"), "'vip'", id="vip-string"),
        pytest.param("not-a-jwt", "not a well-formed JWT", id="garbage"),
    ],
)
def test_untrustworthy_identity_tokens_are_refused(client: TestClient, token: str, says: str) -> None:
    response = create(client, {"identity_token": token})
    assert response.status_code == 401, response.text
    body = response.json()
    assert set(body) == {"error", "detail", "retryable"} and body["retryable"] is False
    assert body["detail"].startswith("identity token") and says in body["detail"], body
    assert "host page" in body["detail"]  # and what to do about it


def test_a_token_while_no_secret_is_configured_is_refused(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    unconfigured = settings.model_copy(update={"identity_secret": None})
    with TestClient(create_app(unconfigured, nlu=nlu, kb=knowledge_base)) as client:
        response = create(client, {"identity_token": identity_token()})
        assert response.status_code == 401
        assert "TRIAGE_IDENTITY_SECRET" in response.json()["detail"]
        assert create(client, {}).status_code == 201  # anonymous users still get help


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (identity_token(expires_in=-60), IdentityExpired),
        (identity_token(secret="x" * 40), IdentityInvalid),
        (unsigned_token(), IdentityInvalid),
    ],
)
def test_verify_raises_auth_errors(token: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        verify_identity_token(token, SECRET, leeway=0)


def test_leeway_tolerates_a_little_clock_skew() -> None:
    token = identity_token(expires_in=-5)
    assert verify_identity_token(token, SECRET, leeway=30).user == "alice"
    with pytest.raises(IdentityExpired):
        verify_identity_token(token, SECRET, leeway=0)


# ------------------------------------------------------------------- unsigned identity → 422
@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"vip": 9}, "vip"),
        ({"user": "ceo@acme"}, "user"),
        ({"tenant": "acme"}, "tenant"),
        ({"channel": "web", "user": "a", "tenant": "acme", "vip": 3}, "user, tenant, vip"),
        ({"identity_token": identity_token(), "vip": 3}, "vip"),  # not even next to a valid token
    ],
)
def test_unsigned_identity_fields_are_refused(client: TestClient, body: dict[str, Any], fields: str) -> None:
    response = create(client, body)
    assert response.status_code == 422, response.text
    assert f"{fields} cannot be set in the request body" in response.text
    assert "signed identity_token" in response.text


def test_a_message_cannot_name_its_sender(client: TestClient, chat: Chat) -> None:
    response = client.post(
        f"/api/v1/conversations/{chat.id}/messages",
        headers=chat.headers,
        json={"text": "你好", "client_msg_id": "m1", "user": "someone-else"},
    )
    assert response.status_code == 422 and "identity_token" in response.text


# ------------------------------------------------------------------------ verified customers
def test_a_verified_user_is_on_the_record_and_the_card(
    client: TestClient, agent: Agent, db: sync_redis.Redis, settings: Settings
) -> None:
    token = identity_token(
        "u-1001",
        tenant="acme",
        name="张伟",
        email="zhang.wei@acme.com",
        phone="13812345678",
        vip=2,
        locale="zh-CN",
    )
    chat = Chat(client, identity_token=token)
    record = db.hgetall(Keys(settings.redis_prefix).conversation(chat.id))
    key = Identity(verified=True, user="u-1001", tenant="acme").customer_key
    assert key and len(key) == 24 and "u-1001" not in key  # opaque
    assert {k: record[k] for k in ("user", "verified", "tenant", "vip", "locale", "customer_key")} == {
        "user": "u-1001",
        "verified": "1",
        "tenant": "acme",
        "vip": "2",
        "locale": "zh-CN",
        "customer_key": key,
    }
    chat.say("你好")
    customer = card(client, agent, chat.id)["customer"]
    assert customer == {
        "verified": True,
        "user": "u-1001",
        "name": "张伟",
        "email": "z***@acme.com",
        "phone": "*******5678",
        "tenant": "acme",
        "vip_tier": 2,
        "earlier_tickets": [],
        "earlier_conversations": [],
    }
    assert "13812345678" not in str(card(client, agent, chat.id)["customer"])


def test_anonymous_users_share_no_history(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    """The regression: every anonymous web user's tickets were filed under one ``user:web::tickets`` list."""
    off_duty = settings.model_copy(update={"on_duty": False})  # handoffs open tickets
    with TestClient(create_app(off_duty, nlu=nlu, kb=knowledge_base)) as client:
        agent = Agent(client, "night-" + uuid.uuid4().hex[:6])
        first, second = Chat(client), Chat(client)
        first.say("转人工")
        second.say("转人工")
        assert first.last["ticket_id"] and second.last["ticket_id"]
        seen = card(client, agent, second.id)
        assert seen["earlier_tickets"] == []  # was [first's ticket]: a stranger's
        assert first.last["ticket_id"] not in str(seen)
        assert seen["customer"]["verified"] is False and seen["customer"]["user"] is None
        assert seen["customer"]["vip_tier"] == 0
        assert seen["customer"]["earlier_tickets"] == [] and seen["customer"]["earlier_conversations"] == []


def test_a_verified_users_history_is_their_own(
    client: TestClient, agent: Agent, db: sync_redis.Redis, settings: Settings
) -> None:
    first = Chat(client, identity_token=identity_token("u-7", tenant="acme"))
    again = Chat(client, channel="wecom", identity_token=identity_token("u-7", tenant="acme"))
    stranger = Chat(client, identity_token=identity_token("u-8", tenant="acme"))
    namesake = Chat(client, identity_token=identity_token("u-7", tenant="globex"))  # same id, other tenant
    anonymous = Chat(client)

    assert card(client, agent, again.id)["customer"]["earlier_conversations"] == [first.id]
    assert card(client, agent, first.id)["customer"]["earlier_conversations"] == [again.id]
    for other in (stranger, namesake, anonymous):
        assert card(client, agent, other.id)["customer"]["earlier_conversations"] == []

    # Tickets come from the customer's ticket index (filled by the ticket store), never the current one.
    keys = Keys(settings.redis_prefix)
    key = Identity(verified=True, user="u-7", tenant="acme").customer_key
    assert key
    db.zadd(keys.customer(key, "tickets"), {"T-20261120-0001": 1, "T-20261122-0002": 2})
    assert card(client, agent, again.id)["customer"]["earlier_tickets"] == [
        "T-20261122-0002",
        "T-20261120-0001",
    ]
    assert card(client, agent, stranger.id)["customer"]["earlier_tickets"] == []
    history = keys.customer(key, "conversations")
    assert 0 < db.pttl(history) <= settings.transcript_retention_days * 86400 * 1000


def test_a_customers_history_keeps_the_50_newest(
    db: sync_redis.Redis, settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> None:
    token = identity_token("busy", tenant="acme")
    unlimited = settings.model_copy(update={"conversations_per_minute": 0})  # 52 from one address
    with TestClient(create_app(unlimited, nlu=nlu, kb=knowledge_base)) as client:
        created = [create(client, {"identity_token": token}).json()["conversation_id"] for _ in range(52)]
    key = Identity(verified=True, user="busy", tenant="acme").customer_key
    assert key
    kept = db.zrange(Keys(settings.redis_prefix).customer(key, "conversations"), 0, -1)
    assert len(kept) == 50 and set(kept) <= set(created) and created[-1] in kept


def test_a_vip_token_queues_ahead(client: TestClient) -> None:
    normal = Chat(client)
    normal.say("转人工")
    vip = Chat(client, identity_token=identity_token("vip-user", vip=3))
    vip.say("转人工")
    assert vip.last["handoff"]["position"] == 1
