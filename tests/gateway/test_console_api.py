"""What the console reads and writes besides the desk's actions (issue 13): presence kept through a reconnect,
the context card about the handoff (not the last message), the rating, the conversation list with its
filters and search, tags, and the team's saved replies — each within the access rules of the card."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot.store import ratings
from tests.app.conftest import Chat
from tests.gateway.conftest import Agent
from tests.identity_tokens import identity_token


def hello(desk: TestClient, agent: Agent, then: dict[str, Any] | None = None) -> dict[str, Any]:
    """Open a console; its hello frame (after sending ``then`` and seeing it answered, when given)."""
    with desk.websocket_connect("/ws/agent") as ws:
        ws.send_text(json.dumps({"type": "hello", "token": agent.token}))
        first = ws.receive_json()
        assert first["type"] == "hello", first
        if then is not None:
            ws.send_text(json.dumps(then))
            while ws.receive_json()["type"] != then["type"]:
                pass
        return first


def stored_presence(desk: TestClient, agent: Agent) -> str:
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    return str(desk.portal.call(gw.agents.presence, agent.id)["status"])  # type: ignore[union-attr]


def listed(agent: Agent, **params: Any) -> list[str]:
    response = agent.client.get("/api/v1/agent/conversations", params=params, headers=agent.headers)
    assert response.status_code == 200, response.text
    return [row["conversation_id"] for row in response.json()["items"]]


def card(agent: Agent, cid: str) -> dict[str, Any]:
    response = agent.client.get(f"/api/v1/conversations/{cid}/context", headers=agent.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# ------------------------------------------------------------------------------------------- presence
def test_an_agent_who_chose_away_is_still_away_after_a_reconnect(desk: TestClient, make_agent: Any) -> None:
    wang = make_agent("wang")
    assert hello(desk, wang)["presence"] == "online"  # never chose: signed in to take chats
    hello(desk, wang, then={"type": "presence", "status": "away"})
    assert stored_presence(desk, wang) == "away"
    assert hello(desk, wang)["presence"] == "away"  # the reload
    assert stored_presence(desk, wang) == "away"


def test_an_automatic_away_does_not_outlive_a_reconnect(desk: TestClient, make_agent: Any) -> None:
    li = make_agent("li")
    li.online()
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    desk.portal.call(gw.agents.set_presence, li.id, "away")  # what the dispatcher does on missed heartbeats
    assert hello(desk, li)["presence"] == "online"
    assert stored_presence(desk, li) == "online"


def test_a_supervisor_opening_the_console_does_not_go_online(desk: TestClient, make_agent: Any) -> None:
    boss = make_agent("boss", role="supervisor")
    assert hello(desk, boss)["presence"] == "offline"
    assert stored_presence(desk, boss) == "offline"
    hello(desk, boss, then={"type": "presence", "status": "online"})  # chose to: stays so
    assert hello(desk, boss)["presence"] == "online"


# ------------------------------------------------------------------------------------------- the card
def test_the_card_is_about_the_handoff_not_the_last_message(desk: TestClient, make_agent: Any) -> None:
    agent = make_agent("zhao")
    user = Chat(desk, identity_token=identity_token("host-7", name="李雷", tenant="acme", vip=2))
    user.say("发票查验失败怎么办")
    user.say("系统打不开了，全公司都用不了，我要转人工")
    user.say("你好")  # after the handoff: "greet" must not become the card's intent
    c = card(agent, user.id)
    assert c["intent"]["name"] == "system_outage"
    assert c["intent"]["confidence"] > 0.5
    summary = c["summary"]
    assert summary["asked"][-1] == "系统打不开了，全公司都用不了，我要转人工"
    assert "发票查验失败怎么办" in summary["asked"]
    assert any("发票" in a["text"] for a in summary["answered"])  # the bot's answer before the handoff
    assert summary["reason"] == "user_request"
    assert summary["trigger"] == "系统打不开了，全公司都用不了，我要转人工"
    assert "全公司" in summary["trigger_words"]
    assert c["display_name"] == "李雷"
    assert c["rating"] is None


def test_an_anonymous_customer_has_no_name_and_the_rating_shows_once_given(
    desk: TestClient, make_agent: Any
) -> None:
    agent = make_agent("qian")
    user = Chat(desk)
    user.say("转人工")
    assert agent.post(f"{user.id}/accept").status_code == 200
    assert card(agent, user.id)["display_name"] is None
    assert agent.post(f"{user.id}/resolve").status_code == 200
    store = desk.app.state.gateway.desk.store  # type: ignore[attr-defined]
    desk.portal.call(ratings.rate, store, user.id, 4, "很快")  # type: ignore[union-attr]  # the widget's csat frame
    assert card(agent, user.id)["rating"]["score"] == 4  # the agent who resolved it reads it back
    assert card(agent, user.id)["rating"]["comment"] == "很快"


def test_the_card_lists_the_customers_earlier_conversations_by_what_they_were_about(
    desk: TestClient, make_agent: Any
) -> None:
    lead = make_agent("lead", role="supervisor")
    first = Chat(desk, identity_token=identity_token("host-9", name="韩梅梅", tenant="acme"))
    first.say("系统打不开了，全公司都用不了，我要转人工")
    again = Chat(desk, identity_token=identity_token("host-9", name="韩梅梅", tenant="acme"))
    again.say("你好")
    history = card(lead, again.id)["history"]
    assert [h["conversation_id"] for h in history] == [first.id]
    assert history[0]["intent"] == "system_outage"
    assert history[0]["state"] in ("queued", "waiting") and history[0]["created_at"] > 0


def test_kb_canned_answers_are_not_cut_at_five(desk: TestClient, make_agent: Any) -> None:
    agent = make_agent("sun")
    response = desk.get("/api/v1/kb/search/canned", params={"q": "发票", "limit": 8}, headers=agent.headers)
    assert response.status_code == 200
    assert len(response.json()["items"]) > 5


# ------------------------------------------------------------------------------------------- the list
@pytest.fixture
def floor(desk: TestClient, make_agent: Any) -> dict[str, Any]:
    """Two agents, a supervisor, and conversations in every state."""
    people = {
        "owner": make_agent("owner"),
        "other": make_agent("other"),
        "english": make_agent("english", skills=("en",)),
        "boss": make_agent("boss", role="supervisor"),
    }
    mine, waiting, done, bot = Chat(desk), Chat(desk), Chat(desk), Chat(desk)
    mine.say("我要转人工，报销单提交失败")
    waiting.say("转人工")
    done.say("转人工，发票抬头不对")
    bot.say("发票查验失败怎么办")
    for chat in (mine, done):
        assert people["owner"].post(f"{chat.id}/accept").status_code == 200
    assert people["owner"].post(f"{done.id}/resolve").status_code == 200
    return {**people, "mine": mine.id, "waiting": waiting.id, "done": done.id, "bot": bot.id}


def test_the_list_filters_within_the_access_rules(floor: dict[str, Any]) -> None:
    owner, other, english, boss = floor["owner"], floor["other"], floor["english"], floor["boss"]
    assert listed(owner, view="mine") == [floor["mine"]]
    assert floor["waiting"] in listed(owner, view="unassigned")
    assert floor["mine"] not in listed(owner, view="unassigned")
    assert listed(owner, view="resolved") == [floor["done"]]
    assert listed(other, view="resolved") == []  # someone else's resolved conversation
    assert floor["waiting"] in listed(other, view="tickets")  # nobody on duty: it is a ticket
    assert listed(english, view="unassigned") == []  # the zh queue is not theirs
    everything = listed(other)
    assert (
        floor["mine"] not in everything and floor["bot"] not in everything and floor["done"] not in everything
    )
    assert {floor["mine"], floor["waiting"], floor["done"], floor["bot"]} <= set(listed(boss))
    assert floor["done"] in listed(boss, view="resolved")


def test_search_finds_past_conversations_by_what_was_said(floor: dict[str, Any]) -> None:
    assert listed(floor["boss"], q="抬头") == [floor["done"]]
    assert listed(floor["owner"], q="抬头") == [floor["done"]]
    assert listed(floor["other"], q="抬头") == []
    assert listed(floor["boss"], q="报销单") == [floor["mine"]]


def test_tags_are_set_by_the_owner_and_shown_in_the_card_and_list(floor: dict[str, Any]) -> None:
    owner, other, cid = floor["owner"], floor["other"], floor["mine"]
    put = owner.client.put(
        f"/api/v1/conversations/{cid}/tags", json={"tags": ["报销", " 回访 ", "报销"]}, headers=owner.headers
    )
    assert put.status_code == 200, put.text
    assert put.json()["tags"] == ["报销", "回访"]
    assert card(owner, cid)["tags"] == ["报销", "回访"]
    assert listed(owner, q="回访") == [cid]
    refused = other.client.put(
        f"/api/v1/conversations/{cid}/tags", json={"tags": ["x"]}, headers=other.headers
    )
    assert refused.status_code == 403
    bad = owner.client.put(
        f"/api/v1/conversations/{cid}/tags", json={"tags": ["a\u202eb"]}, headers=owner.headers
    )
    assert bad.status_code == 422


# --------------------------------------------------------------------------------------- saved replies
def test_saved_replies_are_written_by_supervisors_and_used_by_agents(
    desk: TestClient, make_agent: Any
) -> None:
    agent, boss = make_agent("zhou"), make_agent("chief", role="supervisor")
    body = {"title": "问候", "text": "您好，我是客服，正在为您查看。", "language": "zh"}
    assert desk.post("/api/v1/replies", json=body, headers=agent.headers).status_code == 403
    created = desk.post("/api/v1/replies", json=body, headers=boss.headers)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    english = {"title": "Greeting", "text": "Hello, I'm looking into it.", "language": "en"}
    assert desk.post("/api/v1/replies", json=english, headers=boss.headers).status_code == 201

    items = desk.get("/api/v1/replies", params={"lang": "en"}, headers=agent.headers).json()["items"]
    assert [i["title"] for i in items] == ["Greeting", "问候"]  # the agent's language first
    found = desk.get("/api/v1/replies", params={"q": "查看"}, headers=agent.headers).json()["items"]
    assert [i["id"] for i in found] == [rid]

    changed = {**body, "text": "您好，已收到。"}
    assert desk.put(f"/api/v1/replies/{rid}", json=changed, headers=agent.headers).status_code == 403
    assert (
        desk.put(f"/api/v1/replies/{rid}", json=changed, headers=boss.headers).json()["text"]
        == "您好，已收到。"
    )
    assert desk.delete(f"/api/v1/replies/{rid}", headers=agent.headers).status_code == 403
    assert desk.delete(f"/api/v1/replies/{rid}", headers=boss.headers).status_code == 204
    assert desk.delete(f"/api/v1/replies/{rid}", headers=boss.headers).status_code == 404
    assert desk.put(f"/api/v1/replies/{rid}", json=changed, headers=boss.headers).status_code == 404


def test_the_labels_put_codes_into_words(desk: TestClient, make_agent: Any) -> None:
    agent = make_agent("wu")
    labels = desk.get("/api/v1/console/labels", headers=agent.headers).json()
    assert labels["intents"]["system_outage"]["zh"] == "系统无法访问"
    assert labels["reasons"]["user_request"]["zh"] == "用户要求人工服务"
    assert labels["channels"]["web"]["en"] == "Web"
    assert labels["states"]["queued"]["zh"] == "排队中"
    assert desk.get("/api/v1/console/labels").status_code == 401
