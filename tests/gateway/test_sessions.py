"""Sessions end on the server: signing out deletes the session and closes its open consoles in every
process; an expired or revoked credential closes the socket it opened; API tokens expire, are listed and
revoked (REST and ``triage agents tokens``), and only their sha256 digests are stored."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis as sync_redis
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from bot.store.keys import Keys
from handoff_gateway.agents import token_hash
from tests.gateway.conftest import Agent
from tests.gateway.test_ws_agent_frames import signed_in
from triagebot.app import create_app
from triagebot.cli import app as cli

DAY = 86400


def closed(ws: WebSocketTestSession, timeout: float = 5.0) -> tuple[dict[str, Any] | None, int, str]:
    """Read until the server closes: the last error frame, the close code and reason. Heartbeats (every
    0.5 s here) keep frames coming, so an open socket fails this after ``timeout``."""
    error = None
    deadline = time.monotonic() + timeout
    with pytest.raises(WebSocketDisconnect) as info:
        while time.monotonic() < deadline:
            frame = ws.receive_json()
            if frame["type"] == "error":
                error = frame
    return error, info.value.code, info.value.reason


def still_open(ws: WebSocketTestSession) -> bool:
    ws.send_text(json.dumps({"type": "presence", "status": "online"}))
    while ws.receive_json()["type"] != "presence":
        pass
    return True


def readable(db: sync_redis.Redis, key: str) -> str:
    """Whatever a key holds, as text."""
    kind = db.type(key)
    reads: dict[str, Any] = {
        "string": db.get,
        "hash": db.hgetall,
        "set": db.smembers,
        "zset": lambda k: db.zrange(k, 0, -1),
        "list": lambda k: db.lrange(k, 0, -1),
        "stream": lambda k: db.xrange(k),
    }
    return str(reads[kind](key)) if kind in reads else ""


def sign_in(desk: TestClient, name: str) -> str:
    response = desk.post("/api/v1/agents/login", json={"name": name, "password": "password-123"})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


@pytest.fixture
def other_process(
    desk_settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> Iterator[TestClient]:
    """A second app on the same Redis and prefix: another process of the same deployment."""
    with TestClient(create_app(desk_settings, nlu=nlu, kb=knowledge_base)) as client:
        yield client


@pytest.fixture
def db(redis_url: str) -> Iterator[sync_redis.Redis]:
    client = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def test_signing_out_closes_that_sessions_consoles_in_every_process(
    desk: TestClient, other_process: TestClient, make_agent: Any
) -> None:
    agent: Agent = make_agent("leaving")
    second_session = sign_in(desk, "leaving")
    with desk.websocket_connect("/ws/agent") as first, desk.websocket_connect("/ws/agent") as second:
        signed_in(first, agent)
        second.send_text(json.dumps({"type": "hello", "token": second_session}))
        while second.receive_json()["type"] != "queue":
            pass
        out = other_process.post("/api/v1/agents/logout", headers=agent.headers)
        assert out.status_code == 204, out.text
        error, code, reason = closed(first)
        assert code == 4401 and "signed out" in reason
        assert error is not None and error["code"] == "signed_out"
        assert still_open(second)  # the agent's other session is untouched
    assert desk.get("/api/v1/queue", headers=agent.headers).status_code == 401
    assert desk.get("/api/v1/queue", headers={"Authorization": f"Bearer {second_session}"}).status_code == 200


def test_an_expired_session_closes_its_open_console(
    desk: TestClient, make_agent: Any, db: sync_redis.Redis
) -> None:
    agent: Agent = make_agent("expiring")
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    with desk.websocket_connect("/ws/agent") as ws:
        signed_in(ws, agent)
        db.delete(gw.agents.keys.session(token_hash(agent.token)))  # as if its TTL ran out
        error, code, reason = closed(ws)  # within a heartbeat (0.5 s in these tests)
    assert code == 4401 and "expired" in reason
    assert error is not None and error["code"] == "session_expired"


def test_api_tokens_expire_and_are_stored_as_digests(
    desk: TestClient, make_agent: Any, db: sync_redis.Redis, desk_settings: Settings
) -> None:
    agent: Agent = make_agent("scripted")
    keys = Keys(desk_settings.redis_prefix)
    ttl = db.ttl(keys.api_token(token_hash(agent.api_token)))
    assert 89 * DAY < ttl <= 90 * DAY
    stored = " ".join(f"{k} {readable(db, k)}" for k in db.scan_iter(f"{desk_settings.redis_prefix}*"))
    assert token_hash(agent.api_token) in stored
    assert agent.api_token not in stored and agent.token not in stored


def test_a_token_without_expiry_gets_one_when_used(
    desk: TestClient, make_agent: Any, db: sync_redis.Redis, desk_settings: Settings
) -> None:
    """Tokens issued before tokens expired: the first use starts their clock and lists them."""
    agent: Agent = make_agent("veteran")
    key = Keys(desk_settings.redis_prefix).api_token(token_hash(agent.api_token))
    db.persist(key)
    db.delete(Keys(desk_settings.redis_prefix).agent_tokens(agent.id))
    api = {"Authorization": f"Bearer {agent.api_token}"}
    assert desk.get("/api/v1/queue", headers=api).status_code == 200
    assert 89 * DAY < db.ttl(key) <= 90 * DAY
    listed = desk.get(f"/api/v1/agents/{agent.id}/tokens", headers=agent.headers).json()["items"]
    assert len(listed) == 1


def test_supervisors_list_and_revoke_tokens_and_the_console_closes(desk: TestClient, make_agent: Any) -> None:
    agent: Agent = make_agent("worker")
    boss: Agent = make_agent("chief", role="supervisor")
    outsider: Agent = make_agent("outsider")
    api = {"Authorization": f"Bearer {agent.api_token}"}
    listed = desk.get(f"/api/v1/agents/{agent.id}/tokens", headers=boss.headers)
    assert listed.status_code == 200, listed.text
    (token,) = listed.json()["items"]
    assert token["token_id"].startswith("tok_") and token["expires_at"] > token["created_at"]
    assert agent.api_token not in listed.text
    assert desk.get(f"/api/v1/agents/{agent.id}/tokens", headers=outsider.headers).status_code == 403
    refused = desk.delete(f"/api/v1/agents/tokens/{token['token_id']}", headers=outsider.headers)
    assert refused.status_code == 404  # another agent's token does not exist for them
    with desk.websocket_connect("/ws/agent") as ws:
        ws.send_text(json.dumps({"type": "hello", "token": agent.api_token}))
        while ws.receive_json()["type"] != "queue":
            pass
        revoked = desk.delete(f"/api/v1/agents/tokens/{token['token_id']}", headers=boss.headers)
        assert revoked.status_code == 204, revoked.text
        _, code, _ = closed(ws)
    assert code == 4401
    assert desk.get("/api/v1/queue", headers=api).status_code == 401
    assert desk.delete(f"/api/v1/agents/tokens/{token['token_id']}", headers=boss.headers).status_code == 404


def test_cli_lists_issues_and_revokes_tokens(
    desk: TestClient, make_agent: Any, desk_settings: Settings
) -> None:
    agent: Agent = make_agent("cli-user")
    env = {
        "TRIAGE_REDIS_URL": desk_settings.redis_url or "",
        "TRIAGE_REDIS_PREFIX": desk_settings.redis_prefix,
    }
    runner = CliRunner()
    listed = runner.invoke(cli, ["agents", "tokens", "list", "cli-user"], env=env)
    assert listed.exit_code == 0, listed.output
    token_id = "tok_" + token_hash(agent.api_token)[:12]
    assert token_id in listed.output and agent.api_token not in listed.output
    issued = runner.invoke(cli, ["agents", "tokens", "issue", "cli-user"], env=env)
    assert issued.exit_code == 0, issued.output
    fresh = issued.output.split("API token (shown once): ")[1].split()[0]
    revoked = runner.invoke(cli, ["agents", "tokens", "revoke", token_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert (
        desk.get("/api/v1/queue", headers={"Authorization": f"Bearer {agent.api_token}"}).status_code == 401
    )
    assert desk.get("/api/v1/queue", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    unknown = runner.invoke(cli, ["agents", "tokens", "revoke", token_id], env=env)
    assert unknown.exit_code == 1 and "no token" in unknown.output
    nobody = runner.invoke(cli, ["agents", "tokens", "list", "nobody"], env=env)
    assert nobody.exit_code == 1
