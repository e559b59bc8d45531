"""Tickets end to end: opened while nobody is on duty, listed, offered to the next agent on duty, answered,
resolved; the bot keeps answering while one waits; cancel; SLA escalation and breach; promises from the
rota; supervisors resolving queued conversations; accepts checked against the transition table.

Each test guards one defect of the old desk (named in its docstring)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import NormalSLA, Settings, SLATargets
from bot.sla import format_due
from bot.store.tickets import TICKET_ID
from tests.app.conftest import Chat
from tests.gateway.conftest import Agent
from tests.gateway.test_desk import offers, wait_for
from triagebot.app import create_app

MakeDesk = Callable[..., TestClient]


@pytest.fixture
def make_desk(desk_settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase) -> Iterator[MakeDesk]:
    """A desk app with some settings changed (``settings.model_copy(update=...)``)."""
    with ExitStack() as stack:

        def make(**update: Any) -> TestClient:
            app = create_app(desk_settings.model_copy(update=update), nlu=nlu, kb=knowledge_base)
            return stack.enter_context(TestClient(app))

        yield make


def gateway(desk: TestClient) -> Any:
    return desk.app.state.gateway  # type: ignore[attr-defined]


def call(desk: TestClient, fn: Any, *args: Any) -> Any:
    """Run one of the app's coroutines on the app's event loop."""
    return desk.portal.call(fn, *args)  # type: ignore[union-attr]


def tickets(desk: TestClient, agent: Agent, status: str) -> dict[str, dict[str, Any]]:
    response = desk.get("/api/v1/tickets", params={"status": status}, headers=agent.headers)
    assert response.status_code == 200, response.text
    return {t["ticket_id"]: t for t in response.json()["items"]}


def queue(desk: TestClient, agent: Agent) -> dict[str, dict[str, Any]]:
    items = desk.get("/api/v1/queue", headers=agent.headers).json()["items"]
    return {i["conversation_id"]: i for i in items}


def ticket_of(desk: TestClient, user: Chat, ticket_id: str) -> dict[str, Any]:
    response = desk.get(f"/api/v1/tickets/{ticket_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


def audit(desk: TestClient, cid: str) -> list[str]:
    return [e["action"] for e in call(desk, gateway(desk).desk.audit.entries, cid)]


def open_ticket(user: Chat) -> str:
    user.say("转人工")
    assert user.last["state"] == "waiting", user.last
    ticket_id: str = user.last["ticket_id"]
    assert TICKET_ID.fullmatch(ticket_id)
    return ticket_id


# --------------------------------------------------------------------------------- the ticket's life
def test_night_time_ticket_is_offered_to_the_next_agent_on_duty(
    desk: TestClient, user: Chat, make_agent: Any
) -> None:
    """Guards "Night-time tickets never reach anyone": a ticket opened while nobody was on duty waits in the
    queue, is listed, is offered to the next agent who comes on duty, and is answered and resolved like a
    live handoff."""
    agent: Agent = make_agent("night")  # signed in but offline: nobody is on duty
    ticket_id = open_ticket(user)
    due = user.last["handoff"]["sla"]["first_response_due"]
    assert ticket_id in user.text and format_due(due) in user.text and "UTC+08:00" in user.text

    item = tickets(desk, agent, "open")[ticket_id]
    assert item["conversation_id"] == user.id and item["status"] == "open"
    assert item["severity"] == "normal" and item["first_response_due"] == due and item["resolution_due"]
    assert item["customer"] == {"verified": False, "user": "", "name": "", "tenant": "", "vip_tier": 0}
    assert queue(desk, agent)[user.id]["state"] == "waiting"

    agent.online()  # the next agent on duty
    assert wait_for(lambda: offers(desk).get(user.id)) == agent.id
    assert queue(desk, agent)[user.id]["ticket_id"] == ticket_id
    accepted = agent.post(f"{user.id}/accept")
    assert accepted.status_code == 200 and accepted.json()["ticket_id"] == ticket_id
    assert ticket_of(desk, user, ticket_id)["status"] == "assigned"
    assert agent.post(f"{user.id}/agent_messages", {"text": "您好，工单已收到"}).status_code == 200
    assert "您好，工单已收到" in [e.get("text") for e in user.events() if e.get("role") == "agent"]

    assert agent.post(f"{user.id}/resolve").json()["ticket_id"] == ticket_id
    assert tickets(desk, agent, "resolved")[ticket_id]["status"] == "resolved"
    assert ticket_of(desk, user, ticket_id)["status"] == "resolved"
    assert ticket_id not in tickets(desk, agent, "open") and user.id not in queue(desk, agent)
    assert audit(desk, user.id) == ["ticket_opened", "offered", "accepted", "resolved"]


def test_tickets_show_in_the_supervisor_overview(desk: TestClient, user: Chat, make_agent: Any) -> None:
    """Guards "tickets are invisible to supervisors": the overview lists open tickets and the queue shows
    them waiting."""
    boss: Agent = make_agent("boss", role="supervisor")
    ticket_id = open_ticket(user)
    overview = desk.get("/api/v1/supervisor/overview", headers=boss.headers).json()
    assert [t["ticket_id"] for t in overview["tickets"]] == [ticket_id]
    assert [(i["conversation_id"], i["ticket_id"], i["state"]) for i in overview["queues"]["zh"]] == [
        (user.id, ticket_id, "waiting")
    ]


def test_the_bot_keeps_answering_while_a_ticket_waits(desk: TestClient, user: Chat, make_agent: Any) -> None:
    """Guards "While a ticket is open every new question gets only the ticket's status back": the bot answers
    other questions, tells the ticket's status on request, and "取消转人工" withdraws the ticket."""
    agent: Agent = make_agent("reader")
    ticket_id = open_ticket(user)

    user.say("发票查验失败怎么办")
    assert user.last["state"] == "waiting" and user.last["ticket_id"] == ticket_id
    assert any(r["text"].count("\n") >= 2 for r in user.last["replies"]), user.text  # an article's steps
    assert ticket_id not in user.text

    user.say(f"查询工单 {ticket_id}")
    assert ticket_id in user.text and "待处理" in user.text and "UTC+08:00" in user.text

    user.say("取消转人工")
    assert user.last["state"] == "bot" and ticket_id in user.text
    assert ticket_of(desk, user, ticket_id)["status"] == "cancelled"
    assert ticket_id not in tickets(desk, agent, "open") and user.id not in queue(desk, agent)
    user.say("转人工")  # a fresh request opens a new ticket
    assert user.last["state"] == "waiting" and user.last["ticket_id"] not in (None, ticket_id)


def test_an_overdue_ticket_is_escalated_and_its_breach_recorded(make_desk: MakeDesk) -> None:
    """Guards "ticket SLAs are never watched": the dispatcher escalates a waiting ticket near its
    first-response due time (ahead of a newer urgent one) and records the breach once it is due."""
    desk = make_desk(sla=SLATargets(normal=NormalSLA(first_response_seconds=2)))
    boss = Agent(desk, "boss", role="supervisor")
    early, urgent = Chat(desk), Chat(desk)
    early_ticket = open_ticket(early)
    urgent.say("系统打不开了，全公司都用不了")
    assert urgent.last["state"] == "waiting" and urgent.last["handoff"]["severity"] == "urgent"

    gw = gateway(desk)
    wait_for(lambda: "escalated" in audit(desk, early.id), timeout=8)
    assert list(queue(desk, boss)) == [early.id, urgent.id] and queue(desk, boss)[early.id]["escalated"]
    wait_for(lambda: call(desk, gw.desk.redis.zrange, gw.desk.keys.breaches, 0, -1), timeout=8)
    assert call(desk, gw.desk.redis.zrange, gw.desk.keys.breaches, 0, -1) == [f"{early.id}:first_response"]
    # One pass may find it already due: then the breach is written just before the escalation.
    assert sorted(audit(desk, early.id)) == ["breached", "escalated", "ticket_opened"]
    card = desk.get(f"/api/v1/conversations/{early.id}/context", headers=boss.headers).json()
    assert card["handoff"]["escalated"] and card["ticket_id"] == early_ticket


# ---------------------------------------------------------------------------------- the state machine
def test_a_supervisor_resolving_a_queued_conversation_takes_it_out_of_the_queue(
    desk: TestClient, make_agent: Any
) -> None:
    """Guards "Queue membership is kept by hand beside the state machine: a supervisor resolving a queued
    conversation leaves it in the queue and the dispatcher keeps offering it"."""
    agent: Agent = make_agent("busy", capacity=1)
    boss: Agent = make_agent("boss", role="supervisor")
    agent.online()
    first, second = Chat(desk), Chat(desk)
    first.say("转人工")
    assert wait_for(lambda: offers(desk).get(first.id)) == agent.id
    assert agent.post(f"{first.id}/accept").status_code == 200
    second.say("转人工")  # queued: its only agent is at capacity
    assert second.last["state"] == "queued"

    assert boss.post(f"{second.id}/resolve").json()["state"] == "resolved"
    assert second.id not in queue(desk, boss) and second.id not in offers(desk)
    assert agent.post(f"{first.id}/resolve").status_code == 200  # the agent has room again
    gw = gateway(desk)
    call(desk, gw.dispatcher.tick)  # a full dispatcher pass with the agent free and online
    assert second.id not in offers(desk)
    # A dispatcher that chose an agent before the resolve writes its offer after it: refused, atomically.
    assert not call(desk, gw.handoffs.offer, second.id, "zh", agent.id, time.time() + 30)
    assert second.id not in offers(desk)
    assert audit(desk, second.id) == ["queued", "resolved"]


@pytest.mark.parametrize("state", ["bot", "resolved"])
def test_accepting_outside_the_queue_is_refused_with_the_state(
    desk: TestClient, make_agent: Any, state: str
) -> None:
    """Guards "Accepting bypasses the transition table": only a queued or waiting conversation can be
    accepted; anything else is a 409 that names the state."""
    agent: Agent = make_agent("eager")
    user = Chat(desk)
    user.say("你好")
    if state == "resolved":
        open_ticket(user)
        assert agent.post(f"{user.id}/accept").status_code == 200
        assert agent.post(f"{user.id}/resolve").status_code == 200
    refused = agent.post(f"{user.id}/accept")
    detail = refused.json()["detail"]
    assert refused.status_code == 409 and f"is {state}" in detail and "already taken" not in detail, detail
    assert call(desk, gateway(desk).handoffs.state, user.id) == state


def test_exactly_one_agent_wins_a_ticket(desk: TestClient, user: Chat, make_agent: Any) -> None:
    """Guards "Accepting bypasses the transition table" for tickets: of agents racing for one, one wins."""
    agents: list[Agent] = [make_agent(f"racer{i}") for i in range(6)]
    ticket_id = open_ticket(user)
    with ThreadPoolExecutor(len(agents)) as pool:
        statuses = list(pool.map(lambda a: int(a.post(f"{user.id}/accept").status_code), agents))
    assert sorted(statuses) == [200] + [409] * 5
    winner = agents[statuses.index(200)]
    assert tickets(desk, winner, "open")[ticket_id]["assigned_to"] == winner.id
    assert "assigned_to" not in ticket_of(desk, user, ticket_id)  # the user's view has no agent ids
    opened = [call(desk, gateway(desk).agents.open_conversations, a.id) for a in agents]
    assert opened == [{user.id} if a is winner else set() for a in agents]


def test_a_transferred_ticket_names_its_current_agent(desk: TestClient, user: Chat, make_agent: Any) -> None:
    """Guards "a ticket keeps naming its first agent": after a transfer, ``assigned_to`` is whoever accepted
    it last, in the ticket and in the tickets list."""
    first: Agent = make_agent("first")
    second: Agent = make_agent("second")
    ticket_id = open_ticket(user)
    assert first.post(f"{user.id}/accept").status_code == 200
    assert first.post(f"{user.id}/transfer", {"note": "交给同事"}).status_code == 200
    assert ticket_of(desk, user, ticket_id)["status"] == "open"
    assert second.post(f"{user.id}/accept").status_code == 200
    assert tickets(desk, second, "open")[ticket_id]["assigned_to"] == second.id


# -------------------------------------------------------------------------------- schedule promises
def test_the_promise_comes_from_the_rota_when_nobody_is_on_duty(make_desk: MakeDesk, tmp_path: Path) -> None:
    """Guards "the promised response time ignores the on-duty schedule": with the only agent's shift
    starting later, the ticket promises a first response from that shift's start, not from now."""
    zone = ZoneInfo("Asia/Shanghai")
    start = (dt.datetime.now(zone) + dt.timedelta(hours=2)).replace(second=0, microsecond=0)
    end = start + dt.timedelta(hours=1)
    rota = tmp_path / "rota.yml"
    rota.write_text(
        "shifts:\n"
        "  - agents: [later]\n"
        "    days: [mon, tue, wed, thu, fri, sat, sun]\n"
        f'    start: "{start:%H:%M}"\n'
        f'    end: "{end:%H:%M}"\n',
        encoding="utf-8",
    )
    desk = make_desk(rota_file=rota)
    Agent(desk, "later").online()  # online, but off shift: not on duty
    user = Chat(desk)
    open_ticket(user)
    sla = user.last["handoff"]["sla"]
    assert dt.datetime.fromisoformat(sla["scheduled_from"]) == start
    due = start + dt.timedelta(seconds=NormalSLA().first_response_seconds)
    assert dt.datetime.fromisoformat(sla["first_response_due"]) == due
    assert format_due(start.isoformat()) in user.text and format_due(due.isoformat()) in user.text
    assert "UTC+08:00" in user.text
