"""Nobody on duty: the user leaves an e-mail or phone for the answer (kept masked for show, sealed for the
agent — never raw in Redis) and sees "我的工单", their tickets and how far each has got."""

from __future__ import annotations

from typing import Any

import pytest
import redis as sync_redis
from fastapi.testclient import TestClient

from bot.contact import contact_seal
from bot.settings import Settings
from bot.store.keys import Keys
from tests.app.conftest import Chat
from tests.identity_tokens import identity_token


def ticket_of(chat: Chat) -> str:
    chat.say("转人工，发票一直上传失败")
    ticket_id: str = chat.last["handoff"]["ticket_id"]
    assert ticket_id
    return ticket_id


def contact(chat: Chat, **body: Any) -> Any:
    return chat.client.put(f"/api/v1/conversations/{chat.id}/contact", headers=chat.headers, json=body)


def tickets(chat: Chat, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token or chat.token}"}
    return chat.client.get(f"/api/v1/conversations/{chat.id}/tickets", headers=headers)


def test_an_email_left_on_the_ticket_is_masked_for_show_and_sealed_at_rest(
    off_duty: TestClient, settings: Settings
) -> None:
    chat = Chat(off_duty)
    ticket_id = ticket_of(chat)

    left = contact(chat, email="Wang.Li@Acme.com")

    assert left.status_code == 200, left.text
    assert left.json() == {"ticket_id": ticket_id, "kind": "email", "contact": "w***@acme.com"}
    stored = sync_redis.Redis.from_url(settings.redis_url, decode_responses=True).hgetall(
        Keys(settings.redis_prefix).ticket(ticket_id)
    )
    assert "wang.li@acme.com" not in repr(stored).lower()
    assert contact_seal("", settings.var_dir).open(stored["contact_sealed"]) == "wang.li@acme.com"
    shown = chat.client.get(f"/api/v1/tickets/{ticket_id}", headers=chat.headers).json()
    assert shown["contact_masked"] == "w***@acme.com" and "contact_sealed" not in shown


def test_a_phone_replaces_the_email_and_my_tickets_lists_the_ticket(off_duty: TestClient) -> None:
    chat = Chat(off_duty)
    ticket_id = ticket_of(chat)
    contact(chat, email="wang@acme.com")
    assert contact(chat, phone="138 1234 5678").json()["contact"] == "*******5678"

    listed = tickets(chat)

    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["ticket_id"] == ticket_id and item["status"] == "open" and item["this_conversation"]
    assert item["contact"] == "*******5678" and item["first_response_due"] and item["summary"]


def test_a_verified_user_sees_the_tickets_of_earlier_conversations(off_duty: TestClient) -> None:
    token = identity_token("li.na", name="李娜", tenant="acme")
    first = Chat(off_duty, identity_token=token)
    earlier = ticket_of(first)
    second = Chat(off_duty, identity_token=token)
    now = ticket_of(second)

    items = tickets(second).json()["items"]

    assert [i["ticket_id"] for i in items] == [now, earlier]
    assert [i["this_conversation"] for i in items] == [True, False]
    stranger = Chat(off_duty, identity_token=identity_token("zhao"))
    assert tickets(stranger).json()["items"] == []


def test_without_a_ticket_there_is_nothing_to_put_it_on(chat: Chat) -> None:
    refused = contact(chat, email="wang@acme.com")
    assert refused.status_code == 409 and refused.json()["error"] == "Conflict"
    assert tickets(chat).json() == {"items": []}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "wang@acme.com", "phone": "13812345678"},
        {"email": "not an address"},
        {"email": "wang@acme"},
        {"phone": "12345"},
        {"phone": "+0 123"},
        {"phone": "1381234567x"},
        {"email": "a" * 300 + "@acme.com"},
        {"email": "wang@acme.com", "note": "extra field"},
        {"email": 42},
    ],
)
def test_bad_contact_details_are_422_and_nothing_is_kept(
    off_duty: TestClient, settings: Settings, body: dict[str, Any]
) -> None:
    chat = Chat(off_duty)
    ticket_id = ticket_of(chat)
    refused = contact(chat, **body)
    assert refused.status_code == 422, refused.text
    assert "a" * 300 not in refused.text  # the input is not echoed
    stored = sync_redis.Redis.from_url(settings.redis_url, decode_responses=True).hgetall(
        Keys(settings.redis_prefix).ticket(ticket_id)
    )
    assert "contact_sealed" not in stored


def test_another_conversations_token_reads_and_writes_nothing(off_duty: TestClient) -> None:
    alice, mallory = Chat(off_duty), Chat(off_duty)
    ticket_of(alice)
    assert tickets(alice, token=mallory.token).status_code == 401
    wrong = off_duty.put(
        f"/api/v1/conversations/{alice.id}/contact", headers=mallory.headers, json={"email": "m@evil.com"}
    )
    assert wrong.status_code == 401
    assert off_duty.get(f"/api/v1/conversations/{alice.id}/tickets").status_code == 401
