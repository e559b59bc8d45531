"""What `make run` prints first: the console's address beside the widget's, and — until an agent exists —
how to see the first handoff (a newcomer could not tell that /console existed or that an agent was needed)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from handoff_gateway.cli import has_agents
from tests.live import free_port
from triagebot.cli import app
from triagebot.serve import banner

runner = CliRunner()


@pytest.fixture
def env(redis_url: str, redis_prefix: str) -> dict[str, str]:
    return {"TRIAGE_REDIS_URL": redis_url, "TRIAGE_REDIS_PREFIX": redis_prefix}


def test_the_banner_names_the_console_and_how_to_create_the_first_agent(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert has_agents() is False
    first = banner("http://127.0.0.1:8000", has_agents())
    assert "http://127.0.0.1:8000/console" in first and "http://127.0.0.1:8000/docs" in first
    assert "triage agents add --name wang --password" in first and "转人工" in first

    added = runner.invoke(app, ["agents", "add", "--name", "wang", "--password", "s3cret-pass"], env=env)
    assert added.exit_code == 0, added.output

    assert has_agents() is True
    later = banner("http://127.0.0.1:8000", has_agents())
    assert "/console" in later and "agents add" not in later


def test_a_short_password_is_refused_saying_the_rule(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["agents", "add", "--name", "li", "--password", "short"], env=env)
    assert result.exit_code == 1
    assert "at least 8 characters" in result.output


def test_without_redis_the_banner_still_names_the_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAGE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert has_agents() is None
    text = banner("http://127.0.0.1:8000", None)
    assert "/console" in text and "agents add" not in text
