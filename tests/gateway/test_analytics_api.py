"""Who may see analytics (supervisors; agents 403, anonymous 401) and mark an agent reply "make this an
article" (its author, the conversation's owner, supervisors; anyone else 403 whether or not the seq exists)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.analytics.gaps import read_gaps
from bot.analytics.rollup import Rollup
from tests.app.conftest import Chat
from tests.gateway.conftest import Agent
from tests.gateway.test_desk import offers, wait_for

ANALYTICS = ("/api/v1/analytics", "/api/v1/analytics.csv", "/api/v1/analytics/gaps")
UNKNOWN = "0123456789abcdef01234567"


@pytest.fixture
def team(make_agent: Any) -> dict[str, Agent]:
    return {
        "owner": make_agent("owner"),
        "other": make_agent("other"),
        "boss": make_agent("boss", role="supervisor"),
    }


@pytest.mark.parametrize("path", ANALYTICS)
def test_analytics_are_for_supervisors(desk: TestClient, team: dict[str, Agent], path: str) -> None:
    assert desk.get(path).status_code == 401
    assert desk.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert desk.get(path, headers=team["owner"].headers).status_code == 403
    assert desk.get(path, headers=team["boss"].headers).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-11-30", "until": "2026-11-01"},
        {"since": "2024-01-01", "until": "2026-01-01"},
        {"since": "x"},
        {"until": "9999-12-31"},
        {"since": "0001-01-01", "until": "0001-01-02"},
    ],
)
def test_a_reversed_overlong_or_malformed_period_is_422(
    desk: TestClient, team: dict[str, Agent], params: dict[str, str]
) -> None:
    assert desk.get("/api/v1/analytics", params=params, headers=team["boss"].headers).status_code == 422


def test_the_page_is_served_without_a_cdn(desk: TestClient) -> None:
    page = desk.get("/console/analytics")
    assert page.status_code == 200 and "/console-static/analytics.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")
    assert desk.get("/console-static/analytics.js").status_code == 200


def _assigned_with_reply(desk: TestClient, owner: Agent) -> tuple[Chat, int]:
    owner.online()
    chat = Chat(desk)
    chat.say("发票上传一直失败，转人工")
    assert wait_for(lambda: offers(desk).get(chat.id)) == owner.id
    assert owner.post(f"{chat.id}/accept").status_code == 200
    said = owner.post(f"{chat.id}/agent_messages", {"text": "请把发票压缩到 5MB 以内，再在电脑端上传"})
    assert said.status_code == 200
    return chat, int(said.json()["seq"])


def suggest(desk: TestClient, agent: Agent, cid: str, seq: int) -> Any:
    return desk.post(
        f"/api/v1/agent/conversations/{cid}/article-suggestions", json={"seq": seq}, headers=agent.headers
    )


def test_marking_a_reply_for_an_article(desk: TestClient, team: dict[str, Agent]) -> None:
    chat, seq = _assigned_with_reply(desk, team["owner"])
    marked = suggest(desk, team["owner"], chat.id, seq)
    assert marked.status_code == 201, marked.text
    assert marked.json()["seq"] == seq
    assert suggest(desk, team["boss"], chat.id, seq).status_code == 201
    # The user never sees the mark.
    assert not [e for e in chat.events() if e["type"] == "article_suggestion"]
    rollup: Rollup = desk.app.state.rollup  # type: ignore[attr-defined]
    desk.portal.call(rollup.run_once)  # type: ignore[union-attr]
    store = desk.app.state.services.store  # type: ignore[attr-defined]
    gaps = desk.portal.call(read_gaps, store.redis, store.keys, 0)  # type: ignore[union-attr]
    articles = [g for g in gaps if g.kind == "article"]
    assert len(articles) == 2 and {g.agent for g in articles} == {team["owner"].id, team["boss"].id}
    assert articles[0].text == "发票上传一直失败，转人工"
    assert articles[0].reply == "请把发票压缩到 5MB 以内，再在电脑端上传"


def test_others_cannot_mark_or_probe(desk: TestClient, team: dict[str, Agent]) -> None:
    chat, seq = _assigned_with_reply(desk, team["owner"])
    other = team["other"]
    # Another agent: 403 for a real reply, for a seq that is no reply, and for one that does not exist.
    assert suggest(desk, other, chat.id, seq).status_code == 403
    assert suggest(desk, other, chat.id, 1).status_code == 403
    assert suggest(desk, other, chat.id, 999).status_code == 403
    # Those who may: 404 for what is not an agent reply; unknown conversations are 404 for everyone.
    assert suggest(desk, team["owner"], chat.id, 1).status_code == 404
    assert suggest(desk, team["boss"], chat.id, 999).status_code == 404
    assert suggest(desk, team["boss"], UNKNOWN, 1).status_code == 404
    assert suggest(desk, other, UNKNOWN, 1).status_code == 404
    no_token = desk.post(f"/api/v1/agent/conversations/{chat.id}/article-suggestions", json={"seq": seq})
    assert no_token.status_code == 401
    assert suggest(desk, team["owner"], chat.id, 0).status_code == 422


def test_the_author_may_mark_after_resolving(desk: TestClient, team: dict[str, Agent]) -> None:
    chat, seq = _assigned_with_reply(desk, team["owner"])
    assert team["owner"].post(f"{chat.id}/resolve").status_code == 200
    assert suggest(desk, team["owner"], chat.id, seq).status_code == 201
    assert suggest(desk, team["other"], chat.id, seq).status_code == 403
