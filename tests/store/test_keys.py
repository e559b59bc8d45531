"""Every Redis key the deployment writes is a row of ``bot.store.keys.KEYS``, and it expires or is bounded.

One full desk scenario (conversations, a ticket, escalation and breach, offers, a decline, accept, reply,
transfer, resolve, a live handoff, a failed sign-in), then a SCAN of everything under the test's prefix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import redis as sync_redis
from fastapi.testclient import TestClient

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import NormalSLA, Settings, SLATargets
from bot.store.keys import KEYS, markdown_table, spec_for
from tests.app.conftest import Chat
from tests.conftest import ROOT
from tests.gateway.conftest import Agent
from tests.gateway.test_desk import offers, wait_for
from tests.identity_tokens import identity_token
from triagebot.app import create_app

# Rows a full desk scenario must have written (a row that is never written would go unchecked).
EXERCISED = {
    "conv:{<cid>}",
    "conv:{<cid>}:events",
    "conv:{<cid>}:idem:<digest>",
    "conv:{<cid>}:rate",
    "rate:conversations:<address>",
    "{desk}:conv:<cid>",
    "{desk}:conv:<cid>:skipped",
    "{desk}:conv:<cid>:prefer",
    "{desk}:queue:<group>",
    "{desk}:agent:<agent_id>:open",
    "{desk}:ticket:<ticket_id>",
    "{desk}:tickets:<status>",
    "{desk}:tickets:seq:<day>",
    "{desk}:customer:<customer>:<kind>",
    "{desk}:audit",
    "{desk}:breaches",
    "{desk}:handle_times",
    "conversations",
    "agents",
    "agents:by_name",
    "agent:<agent_id>",
    "agent:<agent_id>:tokens",
    "session:<digest>",
    "apitoken:<digest>",
    "login:failures:<who>",
    "presence:<agent_id>",
    "{analytics}:conv",
    "{analytics}:day:<day>",
    "{analytics}:day:<day>:times",
    "{analytics}:gaps",
}


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis Cluster hashes: the first non-empty ``{...}``."""
    match = re.search(r"\{([^}]+)\}", key)
    return match.group(1) if match else None


def run_desk_scenario(desk: TestClient) -> list[str]:
    """Exercise everything the desk writes; returns the conversation ids."""
    gw = desk.app.state.gateway  # type: ignore[attr-defined]
    alpha, beta = Agent(desk, "alpha"), Agent(desk, "beta")
    boss = Agent(desk, "boss", role="supervisor")
    failed = desk.post("/api/v1/agents/login", json={"name": "alpha", "password": "wrong-password"})
    assert failed.status_code == 401

    plain = Chat(desk)
    plain.say("发票查验失败怎么办")

    # A verified customer's ticket, opened while nobody is on duty; escalated, then breached.
    customer = Chat(desk, identity_token=identity_token("keys-customer", tenant="acme"))
    customer.say("转人工")
    assert customer.last["state"] == "waiting"
    audit = gw.desk.audit.entries
    wait_for(lambda: "breached" in [e["action"] for e in desk.portal.call(audit, customer.id)], timeout=8)  # type: ignore[union-attr]

    # Agents come on duty: the ticket is offered, declined, offered again, accepted, answered, transferred.
    alpha.online()
    beta.online()
    first = wait_for(lambda: offers(desk).get(customer.id))
    decliner, taker = (alpha, beta) if first == alpha.id else (beta, alpha)
    assert decliner.post(f"{customer.id}/decline").status_code == 200
    assert wait_for(lambda: offers(desk).get(customer.id) == taker.id)
    assert taker.post(f"{customer.id}/accept").status_code == 200
    reply = taker.post(f"{customer.id}/agent_messages", {"text": "您好", "client_msg_id": "k1"})
    assert reply.status_code == 200
    moved = taker.post(f"{customer.id}/transfer", {"note": "请主管处理", "to_agent": boss.id})
    assert moved.status_code == 200
    assert boss.post(f"{customer.id}/accept").status_code == 200
    assert boss.post(f"{customer.id}/resolve").status_code == 200

    # Live handoffs: one assigned and left open, one left waiting in the queue.
    held, waiting = Chat(desk), Chat(desk)
    held.say("转人工")
    holder_id = wait_for(lambda: offers(desk).get(held.id))
    holder = alpha if holder_id == alpha.id else beta
    assert holder.post(f"{held.id}/accept").status_code == 200
    waiting.say("我要转人工客服")
    assert waiting.last["state"] == "queued"
    desk.portal.call(desk.app.state.rollup.run_once)  # type: ignore[attr-defined,union-attr]
    return [plain.id, customer.id, held.id, waiting.id]


def test_every_key_is_in_the_table_and_expires_or_is_bounded(
    settings: Settings, nlu: NLUPipeline, knowledge_base: KnowledgeBase, tmp_path: Path
) -> None:
    """Guards against keys written beside the key table (bot/store/keys.py): unknown key formats, keys that
    never expire without a bound, and per-conversation keys outside their Cluster slot."""
    desk_settings = desk_settings_for(settings)
    with TestClient(create_app(desk_settings, nlu=nlu, kb=knowledge_base)) as desk:
        conversations = run_desk_scenario(desk)
    client = sync_redis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    try:
        check_keys(client, settings.redis_prefix, conversations)
    finally:
        client.close()


def desk_settings_for(settings: Settings) -> Settings:
    """The scenario's desk: agents' presence decides who is on duty, offers wait, a 2 s first-response SLA."""
    return settings.model_copy(
        update={
            "on_duty": None,
            "offer_timeout_seconds": 30.0,
            "sla": SLATargets(normal=NormalSLA(first_response_seconds=2)),
        }
    )


def check_keys(client: Any, prefix: str, conversations: list[str]) -> None:
    """Every key under ``prefix`` (``client``: a Redis or a RedisCluster, whose SCAN covers every node) is a
    row of the table, expires or is bounded, and sits in its hash-tag slot."""
    keys = sorted(client.scan_iter(f"{prefix}*", count=1000))
    ttls = {key: client.pttl(key) for key in keys}
    specs = {key: spec_for(prefix, key) for key in keys}
    unknown = [key for key, spec in specs.items() if spec is None]
    assert not unknown, f"keys that are no row of bot.store.keys.KEYS: {unknown}"
    rows = {key: spec for key, spec in specs.items() if spec is not None}
    forever = [(key, spec.pattern) for key, spec in rows.items() if ttls[key] == -1 and not spec.bound]
    assert not forever, f"keys without a TTL whose row has no bound: {forever}"
    written = {spec.pattern for spec in rows.values()}
    assert written >= EXERCISED, f"rows the scenario did not write: {sorted(EXERCISED - written)}"
    for key, spec in rows.items():
        if spec.pattern.startswith("{desk}"):
            assert hash_tag(key) == "desk", key
        elif spec.pattern.startswith("{analytics}"):
            assert hash_tag(key) == "analytics", key
        elif spec.pattern.startswith("{inbox}"):
            assert hash_tag(key) == "inbox", key
        elif "<cid>" in spec.pattern:
            assert hash_tag(key) in conversations, key
        else:
            assert hash_tag(key) is None, key  # no accidental tags elsewhere


def test_every_row_has_a_ttl_or_a_bound() -> None:
    """The table itself: each row says how long its keys live or why they stay small — never both."""
    for spec in KEYS:
        assert bool(spec.ttl) != bool(spec.bound), spec.pattern


def test_docs_show_the_current_table() -> None:
    """docs/redis.md carries ``python -m bot.store.keys``'s output; a changed row means pasting it again."""
    assert markdown_table() in (ROOT / "docs" / "redis.md").read_text(encoding="utf-8")
