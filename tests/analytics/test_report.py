"""The analytics numbers against a scripted set of conversations with known outcomes, through the real app
and a real Redis; and the SLA figures against events with known times."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from bot.analytics.gaps import read_gaps
from bot.analytics.report import percentile
from bot.analytics.rollup import Rollup
from tests.app.conftest import Chat
from tests.app.test_websocket import hello, receive_until
from tests.gateway.conftest import Agent
from tests.gateway.test_desk import offers, wait_for


def roll_up(desk: TestClient) -> int:
    rollup: Rollup = desk.app.state.rollup  # type: ignore[attr-defined]
    return int(desk.portal.call(rollup.run_once))  # type: ignore[union-attr]


def rate(desk: TestClient, chat: Chat, score: int) -> None:
    with desk.websocket_connect("/ws/chat") as ws:
        hello(ws, chat, last_seq=chat.events()[-1]["seq"])
        ws.send_text(json.dumps({"type": "csat", "score": score}))
        receive_until(ws, lambda f: f.get("type") == "csat")


def handled(desk: TestClient, chat: Chat, agent: Agent, reply: str) -> None:
    """The handed-off ``chat`` offered to ``agent``, accepted, answered and resolved."""
    assert wait_for(lambda: offers(desk).get(chat.id)) == agent.id
    assert agent.post(f"{chat.id}/accept").status_code == 200
    assert agent.post(f"{chat.id}/agent_messages", {"text": reply}).status_code == 200
    assert agent.post(f"{chat.id}/resolve").status_code == 200


@pytest.fixture
def scripted(desk: TestClient, make_agent: Any) -> dict[str, Any]:
    """Five conversations: two answered by the bot (one zh, one en), one answered then "not helpful" and
    handed off, one asking for a person (en), one the bot could not understand twice."""
    boss = make_agent("boss", role="supervisor")
    wang = make_agent("wang")
    wang.online()

    answered_zh = Chat(desk)
    answered_zh.say("发票查验失败怎么办")
    answered_zh.click("有帮助")

    answered_en = Chat(desk)
    answered_en.say("invoice verification failed, what should I do")

    not_helpful = Chat(desk)
    not_helpful.say("发票查验失败怎么办")
    not_helpful.click("没帮助")
    not_helpful.click("转人工客服")
    handled(desk, not_helpful, wang, "请在税务平台重新查验，有问题打 13812345678")
    rate(desk, not_helpful, 2)

    person = Chat(desk)
    person.say("I want to talk to a human agent")
    handled(desk, person, wang, "Hello, I can help with that.")
    rate(desk, person, 5)

    unclear = Chat(desk)
    unclear.say("啊吧啊吧嗯嗯咕噜")
    unclear.say("咕噜咕噜啊吧嗯")
    roll_up(desk)
    return {"boss": boss, "wang": wang, "not_helpful": not_helpful}


def numbers(desk: TestClient, boss: Agent, **params: str) -> dict[str, Any]:
    response = desk.get("/api/v1/analytics", params=params, headers=boss.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_the_numbers_of_a_scripted_day(desk: TestClient, scripted: dict[str, Any]) -> None:
    n = numbers(desk, scripted["boss"])
    assert n["conversations"] == 5
    assert n["answered"] == 3 and n["deflected"] == 2 and n["deflection_rate"] == 0.4
    assert n["handed_off"] == 2 and n["handoff_rate"] == 0.4
    assert n["handoffs"]["by_reason"] == {"not_helpful": 1, "user_request": 1}
    assert sum(n["handoffs"]["by_severity"].values()) == 2
    assert n["not_helpful"] == 1 and n["fallbacks"] == 2
    assert n["first_response"]["count"] == 2 and n["resolution"]["count"] == 2
    assert n["first_response"]["breaches"] == 0 and n["sla_breaches"] == 0
    assert n["first_response"]["p90_seconds"] < 60
    assert n["csat"]["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert n["csat"]["average"] == 3.5
    top = {row["intent"]: row["count"] for row in n["top_intents"]}
    assert top["invoice_verification_failed"] == 3
    assert [row["count"] for row in n["top_fallbacks"]] == [1, 1]
    assert n["by_language"]["zh"]["conversations"] == 3 and n["by_language"]["en"]["conversations"] == 2
    assert n["by_channel"] == {"web": n["by_channel"]["web"]} and n["by_channel"]["web"]["conversations"] == 5
    assert sum(day["conversations"] for day in n["daily"]) == 5 and len(n["daily"]) == 7


def test_filters_narrow_every_figure(desk: TestClient, scripted: dict[str, Any]) -> None:
    en = numbers(desk, scripted["boss"], language="en")
    assert en["conversations"] == 2 and en["handed_off"] == 1 and en["deflected"] == 1
    assert en["handoffs"]["by_reason"] == {"user_request": 1}
    assert en["csat"]["distribution"]["5"] == 1 and en["csat"]["count"] == 1
    assert numbers(desk, scripted["boss"], channel="wecom")["conversations"] == 0
    yesterday = (dt.datetime.now(ZoneInfo("Asia/Shanghai")).date() - dt.timedelta(days=1)).isoformat()
    assert numbers(desk, scripted["boss"], until=yesterday)["conversations"] == 0


def test_rolling_up_again_counts_nothing_twice(desk: TestClient, scripted: dict[str, Any]) -> None:
    before = numbers(desk, scripted["boss"])
    assert roll_up(desk) == 0
    fresh = Rollup(desk.app.state.services.store, "Asia/Shanghai", 400)  # type: ignore[attr-defined]
    assert desk.portal.call(fresh.run_once) == 0  # type: ignore[union-attr]
    assert numbers(desk, scripted["boss"]) == before


def test_failures_are_logged_for_review_masked(desk: TestClient, scripted: dict[str, Any]) -> None:
    """Every fallback, the "not helpful" (with the question answered), and both handoffs the agent
    answered without the KB — the agent's words masked as the transcript's are."""
    store = desk.app.state.services.store  # type: ignore[attr-defined]
    gaps = desk.portal.call(read_gaps, store.redis, store.keys, 0)  # type: ignore[union-attr]
    kinds = sorted(g.kind for g in gaps)
    assert kinds == ["fallback", "fallback", "handoff", "handoff", "not_helpful"]
    not_helpful = next(g for g in gaps if g.kind == "not_helpful")
    assert not_helpful.text == "发票查验失败怎么办" and not_helpful.language == "zh"
    handoff = next(g for g in gaps if g.kind == "handoff" and g.language == "zh")
    assert handoff.reply == "请在税务平台重新查验，有问题打 *******5678"
    assert {g.text for g in gaps if g.kind == "fallback"} == {"啊吧啊吧嗯嗯咕噜", "咕噜咕噜啊吧嗯"}


def test_csv_has_the_same_figures(desk: TestClient, scripted: dict[str, Any]) -> None:
    response = desk.get("/api/v1/analytics.csv", headers=scripted["boss"].headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = {(r.split(",")[0], r.split(",")[1]): r.split(",")[2] for r in response.text.splitlines()[1:]}
    assert rows[("summary", "conversations")] == "5"
    assert rows[("summary", "deflection_rate")] == "0.4"
    assert rows[("handoffs_by_reason", "not_helpful")] == "1"
    assert rows[("csat", "5")] == "1"


@pytest.mark.parametrize(
    ("values", "p50", "p90"),
    [([], None, None), ([7.0], 7.0, 7.0), ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5, 9), ([30, 10, 20], 20, 30)],
)
def test_percentiles_are_nearest_rank(values: list[float], p50: float | None, p90: float | None) -> None:
    assert (percentile(values, 50), percentile(values, 90)) == (p50, p90)


def _handoff(started: dt.datetime, severity: str, first_s: int, resolution_s: int) -> dict[str, Any]:
    sla = {
        "tier": severity,
        "first_response_seconds": first_s,
        "resolution_seconds": resolution_s,
        "first_response_due": (started + dt.timedelta(seconds=first_s)).isoformat(),
        "resolution_due": (started + dt.timedelta(seconds=resolution_s)).isoformat(),
        "started_at": started.isoformat(),
    }
    return {"type": "handoff", "reason": "urgent", "severity": severity, "sla": sla, "group": "zh"}


@pytest.mark.parametrize(
    ("first_after", "resolved_after", "first_breached", "resolution_breached"),
    [(60, 600, 0, 0), (400, 600, 1, 0), (100, 4000, 0, 1), (301, 3601, 1, 1)],
)
def test_sla_times_and_breaches_from_known_event_times(
    desk: TestClient,
    make_agent: Any,
    first_after: int,
    resolved_after: int,
    first_breached: int,
    resolution_breached: int,
) -> None:
    """An urgent handoff (5 min first response, 1 h resolution) answered and resolved at known times."""
    boss = make_agent("boss", role="supervisor")
    store = desk.app.state.services.store  # type: ignore[attr-defined]
    started = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0) - dt.timedelta(hours=2)
    at = int(started.timestamp() * 1000)
    cid = desk.portal.call(store.create, "web")["conversation_id"]  # type: ignore[union-attr]
    for event in (
        {"type": "message", "role": "user", "text": "系统崩了", "intent": "system_outage", "ts": at},
        {**_handoff(started, "urgent", 300, 3600), "ts": at},
        {"type": "message", "role": "agent", "text": "在处理", "agent": "a1", "ts": at + first_after * 1000},
        {"type": "resolved", "role": "system", "agent": "a1", "ts": at + resolved_after * 1000},
    ):
        desk.portal.call(store.append, cid, event)  # type: ignore[union-attr]
    roll_up(desk)
    n = numbers(desk, boss)
    first, resolution = n["first_response"], n["resolution"]
    assert (first["count"], first["p50_seconds"], first["breaches"]) == (1, first_after, first_breached)
    assert (resolution["p90_seconds"], resolution["breaches"]) == (resolved_after, resolution_breached)
    assert first["by_severity"]["urgent"]["within_sla"] == 1 - first_breached
    assert n["sla_breaches"] == first_breached + resolution_breached
