"""Probing for what exists: a user-facing route answers "no such conversation" and "not your conversation"
alike (401, the same body), and a ticket — by REST or by asking the bot — shows its status only to the
conversation that opened it or to the verified customer it belongs to. Ticket ids are sequential per day:
knowing one must not be enough."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from tests.app.conftest import Chat
from tests.identity_tokens import identity_token

UNKNOWN = "0123456789abcdef01234567"  # shaped like a conversation id


def answer(response: Any) -> tuple[int, dict[str, Any]]:
    return response.status_code, response.json()


def test_no_such_conversation_and_a_wrong_token_look_the_same(client: TestClient, chat: Chat) -> None:
    stranger = Chat(client)
    for path, method in (("messages", "post"), ("events", "get")):
        kwargs: dict[str, Any] = {"headers": stranger.headers}
        if method == "post":
            kwargs["json"] = {"text": "hi", "client_msg_id": "probe-1"}
        unknown = answer(getattr(client, method)(f"/api/v1/conversations/{UNKNOWN}/{path}", **kwargs))
        someone_elses = answer(getattr(client, method)(f"/api/v1/conversations/{chat.id}/{path}", **kwargs))
        assert unknown == someone_elses, path
        assert unknown[0] == 401


def test_the_chat_socket_refuses_unknown_and_foreign_conversations_alike(
    client: TestClient, chat: Chat
) -> None:
    stranger = Chat(client)
    seen = []
    for cid in (UNKNOWN, chat.id):
        with client.websocket_connect("/ws/chat") as ws:
            ws.send_text(json.dumps({"type": "hello", "conversation_id": cid, "token": stranger.token}))
            error = ws.receive_json()
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_json()
            seen.append((error["code"], error["message"].replace(cid, "<cid>"), info.value.code))
    assert seen[0] == seen[1]
    assert seen[0][2] == 4401


def test_a_ticket_number_alone_reveals_nothing(off_duty: TestClient) -> None:
    owner, stranger = Chat(off_duty), Chat(off_duty)
    owner.say("转人工")
    ticket_id = owner.last["ticket_id"]
    assert ticket_id
    day, number = ticket_id.rsplit("-", 1)
    never_issued = f"{day}-{int(number) + 500:04d}"
    probes = [
        answer(off_duty.get(f"/api/v1/tickets/{tid}", headers=stranger.headers))
        for tid in (ticket_id, never_issued)
    ]
    assert probes[0][0] == probes[1][0] == 401
    assert probes[0][1]["detail"].replace(ticket_id, "<t>") == probes[1][1]["detail"].replace(
        never_issued, "<t>"
    )
    assert off_duty.get(f"/api/v1/tickets/{ticket_id}", headers=owner.headers).status_code == 200

    # Asking the bot: the owner hears the status, a stranger what an unknown number gets.
    owner.say(f"查询工单 {ticket_id}")
    assert "待处理" in owner.text
    stranger.say(f"查询工单 {ticket_id}")
    real = stranger.text.replace(ticket_id, "<t>")
    stranger.say(f"查询工单 {never_issued}")
    assert real == stranger.text.replace(never_issued, "<t>")
    assert "待处理" not in real


def test_a_verified_customer_reads_their_tickets_from_another_conversation(off_duty: TestClient) -> None:
    first = Chat(off_duty, identity_token=identity_token("probe-u1", tenant="acme"))
    first.say("转人工")
    ticket_id = first.last["ticket_id"]
    later = Chat(off_duty, identity_token=identity_token("probe-u1", tenant="acme"))
    later.say(f"查询工单 {ticket_id}")
    assert "待处理" in later.text
    namesake = Chat(off_duty, identity_token=identity_token("probe-u1", tenant="globex"))
    namesake.say(f"查询工单 {ticket_id}")
    assert "待处理" not in namesake.text
