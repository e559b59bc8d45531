"""Agent accounts, sign-in, sessions, rate limiting, presence and the CLI."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from bot.errors import AuthError
from bot.settings import Settings
from handoff_gateway.agents import hash_password, verify_password
from tests.gateway.conftest import Agent
from triagebot.cli import app as cli


def test_scrypt_hashes() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("wrong", stored)
    assert not verify_password("x", "garbage")


def test_login_session_and_api_token(desk: TestClient, make_agent: object) -> None:
    agent: Agent = make_agent("li")  # type: ignore[operator]
    assert desk.get("/api/v1/queue", headers=agent.headers).status_code == 200
    api = {"Authorization": f"Bearer {agent.api_token}"}
    assert desk.get("/api/v1/queue", headers=api).status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}):
        assert desk.get("/api/v1/queue", headers=headers).status_code == 401


def test_expired_session_is_refused(desk: TestClient, make_agent: object) -> None:
    agent: Agent = make_agent("zhao")  # type: ignore[operator]
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    from handoff_gateway.agents import token_hash

    desk.portal.call(gw.agents.redis.delete, f"{gw.agents.prefix}session:{token_hash(agent.token)}")  # type: ignore[union-attr]
    response = desk.get("/api/v1/queue", headers=agent.headers)
    assert response.status_code == 401 and "sign in again" in response.json()["detail"]


def test_sign_in_is_rate_limited(desk: TestClient, make_agent: object) -> None:
    make_agent("sun")  # type: ignore[operator]
    for _ in range(5):
        assert (
            desk.post("/api/v1/agents/login", json={"name": "sun", "password": "bad-guess"}).status_code
            == 401
        )
    blocked = desk.post("/api/v1/agents/login", json={"name": "sun", "password": "password-123"})
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert desk.post("/api/v1/agents/login", json={"name": "nobody", "password": "x"}).status_code == 401


def test_bad_accounts_are_refused(desk: TestClient) -> None:
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="at least 8"):
        desk.portal.call(gw.agents.add, "short", "pw")  # type: ignore[union-attr]
    with pytest.raises(Exception, match="role must be"):
        desk.portal.call(gw.agents.add, "x", "password-123", "boss")  # type: ignore[union-attr]
    with pytest.raises(AuthError):
        desk.portal.call(gw.agents.authenticate, "nope")  # type: ignore[union-attr]


def test_presence_and_grace_period(desk: TestClient, make_agent: object) -> None:
    agent: Agent = make_agent("qian")  # type: ignore[operator]
    agent.online()
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    assert desk.portal.call(gw.agents.presence, agent.id)["status"] == "online"  # type: ignore[union-attr]
    gw.dispatcher.config.presence_grace_s = 0.0
    desk.portal.call(gw.dispatcher.mark_away)  # type: ignore[union-attr]
    assert desk.portal.call(gw.agents.presence, agent.id)["status"] == "away"  # type: ignore[union-attr]
    bad = desk.put("/api/v1/agents/me/presence", json={"status": "busy"}, headers=agent.headers)
    assert bad.status_code == 422


def test_cli_adds_agents(settings: Settings) -> None:
    env = {"TRIAGE_REDIS_URL": settings.redis_url or "", "TRIAGE_REDIS_PREFIX": settings.redis_prefix}
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "agents",
            "add",
            "--name",
            "zhou",
            "--password",
            "password-123",
            "--role",
            "supervisor",
            "--skills",
            "zh,en,invoice",
            "--capacity",
            "5",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "supervisor zhou" in result.output and "API token" in result.output
    again = runner.invoke(cli, ["agents", "add", "--name", "zhou", "--password", "password-123"], env=env)
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(
        cli, ["agents", "add", "--name", "x", "--password", "password-123", "--role", "boss"], env=env
    )
    assert bad.exit_code == 1 and "--role" in bad.output
    listed = runner.invoke(cli, ["agents", "list"], env=env)
    assert "zhou  supervisor  zh,en,invoice  offline" in listed.output
