"""The desk end to end: handoff → offer → accept (atomic) → talk both ways → notes, transfer, resolve,
hand back; permissions; no agent on duty → ticket; SLA escalation with a webhook alert."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

from fastapi.testclient import TestClient

from handoff_gateway.alerts import Robot
from tests.app.conftest import Chat
from tests.gateway.conftest import Agent
from tests.identity_tokens import identity_token


def wait_for(predicate: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def offers(desk: TestClient) -> dict[str, Any]:
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    raw = desk.portal.call(gw.desk.redis.hgetall, gw.desk.keys.offers)  # type: ignore[union-attr]
    return {cid: json.loads(v)["agent"] for cid, v in raw.items()}


def test_no_agent_on_duty_opens_a_ticket(user: Chat) -> None:
    user.say("转人工")
    assert user.last["ticket_id"] and user.last["handoff"]["position"] is None


def test_handoff_offer_accept_and_relay(desk: TestClient, user: Chat, make_agent: Any) -> None:
    agent: Agent = make_agent("wang")
    agent.online()
    user.say("我要转人工客服")
    assert user.last["state"] == "queued" and user.last["handoff"]["position"] == 1
    assert wait_for(lambda: offers(desk).get(user.id)) == agent.id
    queue = desk.get("/api/v1/queue", headers=agent.headers).json()["items"]
    assert queue[0]["conversation_id"] == user.id and queue[0]["offered_to"] == agent.id
    card = desk.get(f"/api/v1/conversations/{user.id}/context", headers=agent.headers).json()
    assert card["handoff"]["reason"] == "user_request" and card["transcript"]

    assert agent.post(f"{user.id}/accept").status_code == 200
    assert desk.get("/api/v1/queue", headers=agent.headers).json()["items"] == []
    assert (
        agent.post(
            f"{user.id}/agent_messages", {"text": "您好，我是客服小王", "client_msg_id": "a1"}
        ).status_code
        == 200
    )
    assert (
        agent.post(
            f"{user.id}/agent_messages", {"text": "您好，我是客服小王", "client_msg_id": "a1"}
        ).status_code
        == 200
    )
    agent.post(f"{user.id}/notes", {"text": "客户手机 13812345678，VIP"})
    user.say("好的，发票号码24442000000123456789")
    assert user.last["state"] == "assigned" and user.last["replies"] == []  # the bot is silent
    events = user.events()
    assert [e["text"] for e in events if e.get("role") == "agent"] == ["您好，我是客服小王"]  # once
    assert not [e for e in events if e["type"] == "note"]  # the user never sees notes
    assert any(e["type"] == "assigned" for e in events)
    transcript = desk.get(f"/api/v1/conversations/{user.id}/context", headers=agent.headers).json()[
        "transcript"
    ]
    note = next(e for e in transcript if e["type"] == "note")
    assert "13812345678" not in note["text"]

    resolved = agent.post(f"{user.id}/resolve")
    assert resolved.json()["state"] == "resolved"
    types = [e["type"] for e in user.events()]
    assert types[-2:] == ["resolved", "csat_request"]
    audit = desk.portal.call(desk.app.state.gateway.desk.audit.entries, user.id)  # type: ignore[attr-defined,union-attr]
    assert [a["action"] for a in audit] == ["queued", "offered", "accepted", "resolved"]


def test_exactly_one_of_many_simultaneous_accepts_wins(desk: TestClient, user: Chat, make_agent: Any) -> None:
    agents = [make_agent(f"racer{i}") for i in range(8)]
    user.say("转人工")

    def accept(agent: Agent) -> int:
        return int(agent.post(f"{user.id}/accept").status_code)

    with ThreadPoolExecutor(len(agents)) as pool:
        statuses = list(pool.map(accept, agents))
    assert sorted(statuses) == [200] + [409] * 7
    loser = agents[statuses.index(409)]
    assert "already taken" in loser.post(f"{user.id}/accept").json()["detail"]


def test_capacity_and_permissions(desk: TestClient, make_agent: Any) -> None:
    small: Agent = make_agent("small", capacity=1)
    other: Agent = make_agent("other")
    boss: Agent = make_agent("boss", role="supervisor")
    first, second = Chat(desk), Chat(desk)
    first.say("转人工")
    second.say("转人工")
    assert small.post(f"{first.id}/accept").status_code == 200
    full = small.post(f"{second.id}/accept")
    assert full.status_code == 409 and "capacity" in full.json()["detail"]
    assert other.post(f"{first.id}/agent_messages", {"text": "hi"}).status_code == 403
    assert desk.get(f"/api/v1/conversations/{first.id}/context", headers=other.headers).status_code == 403
    assert boss.post(f"{first.id}/agent_messages", {"text": "主管介入"}).status_code == 200
    assert desk.get("/api/v1/supervisor/overview", headers=other.headers).status_code == 403
    overview = desk.get("/api/v1/supervisor/overview", headers=boss.headers).json()
    assert {a["name"] for a in overview["agents"]} >= {"small", "other", "boss"}
    assert other.post("nope/accept").status_code == 404


def test_decline_and_offer_timeout_pass_to_the_next_agent(
    desk: TestClient, user: Chat, make_agent: Any
) -> None:
    a: Agent = make_agent("first")
    b: Agent = make_agent("second")
    a.online()
    b.online()
    user.say("转人工")
    offered = wait_for(lambda: offers(desk).get(user.id))
    first, second = (a, b) if offered == a.id else (b, a)
    assert first.post(f"{user.id}/decline").status_code == 200
    assert wait_for(lambda: offers(desk).get(user.id) == second.id)
    # The second lets the offer time out (1 s in these tests): nobody is left who has not passed.
    wait_for(lambda: user.id not in offers(desk), timeout=4)
    time.sleep(0.6)
    assert user.id not in offers(desk)
    audit = desk.portal.call(desk.app.state.gateway.desk.audit.entries, user.id)  # type: ignore[attr-defined,union-attr]
    assert [x["action"] for x in audit if x["action"] != "queued"] == [
        "offered",
        "declined",
        "offered",
        "offer_expired",
    ]
    # Anyone can still take it from the list.
    assert second.post(f"{user.id}/accept").status_code == 200


def test_transfer_and_handback(desk: TestClient, user: Chat, make_agent: Any) -> None:
    a: Agent = make_agent("alpha", skills=("zh",))
    b: Agent = make_agent("beta", skills=("en",))
    user.say("我要转人工客服")
    assert a.post(f"{user.id}/accept").status_code == 200
    moved = a.post(f"{user.id}/transfer", {"note": "英文客户，转英文组", "to_group": "en"})
    assert moved.json() == {"conversation_id": user.id, "state": "queued", "group": "en"}
    assert a.post(f"{user.id}/agent_messages", {"text": "还在吗"}).status_code == 403  # no longer theirs
    en_queue = [i for i in desk.get("/api/v1/queue", headers=b.headers).json()["items"] if i["group"] == "en"]
    assert [i["conversation_id"] for i in en_queue] == [user.id]
    assert b.post(f"{user.id}/accept").status_code == 200
    assert b.post(f"{user.id}/handback").json()["state"] == "bot"
    visible = user.events()
    assert not [e for e in visible if e["type"] == "note"]
    assert any(e.get("transfer") for e in visible)  # the user was told about the transfer
    user.say("你好")
    assert user.last["state"] == "bot" and user.last["replies"]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        payload = b'{"errcode":0,"errmsg":"ok"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        return None


def test_sla_escalation_alerts_and_breach(desk: TestClient, make_agent: Any) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gw = desk.app.state.gateway  # type: ignore[attr-defined]
        gw.alerts.robots = (
            Robot.guess("webhook", f"http://127.0.0.1:{server.server_port}/cgi-bin/webhook/send?key=k"),
        )
        settings = desk.app.state.settings  # type: ignore[attr-defined]
        settings.on_duty = True
        settings.sla.normal.first_response_seconds = 2
        early, late = Chat(desk), Chat(desk)
        early.say("转人工")
        late.say("系统打不开了，全公司都用不了")  # urgent: ahead of the normal one
        assert late.last["handoff"]["position"] == 1
        # The urgent handoff pages on-call at once; the escalation of the early one follows.
        alert = wait_for(
            lambda: next((a for a in _Hook.received if early.id in a["markdown"]["content"]), None), timeout=6
        )
        assert alert["msgtype"] == "markdown" and "SLA" in alert["markdown"]["content"]
        items = desk.get("/api/v1/queue", headers=make_agent("eve").headers).json()["items"]
        assert items[0]["conversation_id"] == early.id and items[0]["escalated"]  # priority rose
        wait_for(lambda: desk.portal.call(gw.desk.redis.zrange, gw.desk.keys.breaches, 0, -1), timeout=6)  # type: ignore[union-attr]
        assert any(e["type"] == "queue" for e in late.events())  # the waiting user saw the queue move
    finally:
        server.shutdown()
        server.server_close()


def test_nobody_on_duty_pages_on_call_and_vip_goes_first(desk: TestClient) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received.clear()
    try:
        gw = desk.app.state.gateway  # type: ignore[attr-defined]
        gw.alerts.robots = (
            Robot.guess("webhook", f"http://127.0.0.1:{server.server_port}/cgi-bin/webhook/send?key=k"),
        )
        user = Chat(desk)
        user.say("转人工")
        assert user.last["ticket_id"]
        wait_for(lambda: _Hook.received)
        assert user.last["ticket_id"] in _Hook.received[0]["markdown"]["content"]
    finally:
        server.shutdown()
        server.server_close()
    desk.app.state.settings.on_duty = True  # type: ignore[attr-defined]
    plain = Chat(desk)
    plain.say("转人工")
    vip = Chat(desk, identity_token=identity_token("big-customer", tenant="acme", vip=3))
    vip.say("转人工")
    assert vip.last["handoff"]["position"] == 1  # a VIP waits ahead of an earlier normal customer
    assert desk.post("/api/v1/conversations", json={"vip": 3}).status_code == 422  # only from a signed token


def test_offers_prefer_the_product_area_skill(desk: TestClient, make_agent: Any) -> None:
    generalist: Agent = make_agent("generalist")
    invoicer: Agent = make_agent("invoicer", skills=("zh", "en", "invoice"))
    generalist.online()
    invoicer.online()
    user = Chat(desk)
    # A human request beside the topic hands off with the topic (a deadline alone no longer does).
    user.say("转人工，发票查验一直失败，提示查验结果不一致")
    assert user.last["handoff"]["intent"] == "invoice_verification_failed"
    assert wait_for(lambda: offers(desk).get(user.id)) == invoicer.id


def test_bad_agent_input_gets_clear_errors(desk: TestClient, user: Chat, make_agent: Any) -> None:
    agent: Agent = make_agent("careful")
    user.say("我要转人工客服")
    assert agent.post(f"{user.id}/accept").status_code == 200
    assert agent.post(f"{user.id}/agent_messages", {"text": ""}).status_code == 422
    assert agent.post(f"{user.id}/agent_messages", {"text": "x" * 4001}).status_code == 422
    assert agent.post(f"{user.id}/transfer", {"to_group": "fr"}).status_code == 422
    bad_json = desk.post(
        f"/api/v1/conversations/{user.id}/notes",
        content=b"{not json",
        headers={**agent.headers, "Content-Type": "application/json"},
    )
    assert bad_json.status_code == 422
    assert desk.post("/api/v1/agents/login", json={"name": "careful"}).status_code == 422
    with desk.websocket_connect("/ws/agent") as ws:
        ws.send_text(json.dumps({"type": "hello", "token": agent.token}))
        assert ws.receive_json()["type"] == "hello"
        for frame, expected in [
            ("garbage", "bad_frame"),
            (json.dumps({"type": "dance", "conversation_id": user.id}), "422"),
            (json.dumps({"type": "message"}), "422"),
            (json.dumps({"type": "accept", "conversation_id": "missing"}), "404"),
            (json.dumps({"type": "message", "conversation_id": user.id, "text": "x" * 5000}), "bad_frame"),
        ]:
            ws.send_text(frame)
            for _ in range(20):
                reply = ws.receive_json()
                if reply["type"] == "error":
                    break
            assert reply["code"] == expected, (frame[:40], reply)
        ws.send_text(json.dumps({"type": "message", "conversation_id": user.id, "text": "still here"}))
        for _ in range(50):
            reply = ws.receive_json()
            if reply.get("text") == "still here":
                break
        else:
            raise AssertionError("the connection did not keep working after bad frames")
