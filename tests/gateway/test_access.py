"""Who may look at or act on a conversation: its owner; an agent it is offered to or who may accept it from
their skill group's queue; supervisors. Everything else is refused (403), over REST and the websocket."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import Chat
from tests.gateway.conftest import Agent
from tests.gateway.test_desk import offers, wait_for
from tests.gateway.test_ws_agent_frames import signed_in


def card(desk: TestClient, agent: Agent, cid: str) -> int:
    return int(desk.get(f"/api/v1/conversations/{cid}/context", headers=agent.headers).status_code)


def ws_reply(desk: TestClient, agent: Agent, frame: dict[str, Any]) -> dict[str, Any] | None:
    """Send ``frame``, then a presence frame; the error the first one got, None when it was taken."""
    with desk.websocket_connect("/ws/agent") as ws:
        signed_in(ws, agent)
        ws.send_text(json.dumps(frame))
        ws.send_text(json.dumps({"type": "presence", "status": "away"}))
        error = None
        while (reply := ws.receive_json())["type"] != "presence":
            if reply["type"] == "error" and reply.get("request") == frame["type"]:
                error = reply
        return error


@pytest.fixture
def team(make_agent: Any) -> dict[str, Agent]:
    return {
        "owner": make_agent("owner"),
        "other": make_agent("other"),
        "english": make_agent("english", skills=("en",)),
        "boss": make_agent("boss", role="supervisor"),
    }


def test_the_card_of_a_bot_state_conversation_is_for_supervisors(
    desk: TestClient, user: Chat, team: dict[str, Agent]
) -> None:
    user.say("发票查验失败怎么办")
    assert user.last["state"] == "bot"
    assert card(desk, team["other"], user.id) == 403
    assert card(desk, team["boss"], user.id) == 200


def test_the_card_of_a_resolved_conversation_is_not_for_other_agents(
    desk: TestClient, user: Chat, team: dict[str, Agent]
) -> None:
    user.say("转人工")
    assert team["owner"].post(f"{user.id}/accept").status_code == 200
    assert card(desk, team["owner"], user.id) == 200
    assert card(desk, team["other"], user.id) == 403  # assigned to someone else
    assert team["owner"].post(f"{user.id}/resolve").status_code == 200
    assert card(desk, team["other"], user.id) == 403
    assert card(desk, team["boss"], user.id) == 200


def test_a_queued_card_is_for_agents_who_may_accept_it(
    desk: TestClient, user: Chat, team: dict[str, Agent]
) -> None:
    user.say("转人工")  # Chinese: the zh queue
    assert user.last["state"] in ("queued", "waiting")
    assert card(desk, team["other"], user.id) == 200
    assert card(desk, team["english"], user.id) == 403  # not in their skill group


def test_typing_goes_only_into_ones_own_conversation(desk: TestClient, team: dict[str, Agent]) -> None:
    bot_state, assigned = Chat(desk), Chat(desk)
    bot_state.say("发票查验失败怎么办")
    assigned.say("转人工")
    assert team["owner"].post(f"{assigned.id}/accept").status_code == 200
    for cid in (bot_state.id, assigned.id):
        refused = ws_reply(desk, team["other"], {"type": "typing", "conversation_id": cid})
        assert refused is not None and refused["code"] == "403", cid
    assert ws_reply(desk, team["owner"], {"type": "typing", "conversation_id": assigned.id}) is None


def test_only_the_agent_offered_a_conversation_may_decline_it(
    desk: TestClient, user: Chat, team: dict[str, Agent]
) -> None:
    team["owner"].online()
    user.say("转人工")
    assert wait_for(lambda: offers(desk).get(user.id)) == team["owner"].id
    assert team["other"].post(f"{user.id}/decline").status_code == 403
    refused = ws_reply(desk, team["other"], {"type": "decline", "conversation_id": user.id})
    assert refused is not None and refused["code"] == "403"
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    skipped = desk.portal.call(gw.desk.redis.smembers, gw.desk.keys.skipped(user.id))  # type: ignore[union-attr]
    assert team["other"].id not in skipped

    bot_state = Chat(desk)
    bot_state.say("发票查验失败怎么办")
    assert team["other"].post(f"{bot_state.id}/decline").status_code == 403
    assert team["owner"].post(f"{user.id}/decline").status_code == 200
