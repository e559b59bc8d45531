"""The rollup reads the conversations appended to since its last pass, as the event hub heard them, instead of
scanning every conversation of the last days each pass (an HGET each: a sixth of an idle process's CPU with
5,000 sockets open). What the hub may have missed — a dropped subscription — sends it back to the scan."""

from __future__ import annotations

import time

import redis as sync_redis
from fastapi.testclient import TestClient

from bot.analytics.rollup import Rollup
from bot.realtime.hub import EventHub
from tests.app.conftest import Chat
from tests.app.test_hub import hub_of, kill_hub_connection, store_of


def _touched(hub: EventHub, want: set[str], timeout: float = 10.0) -> set[str]:
    """What the hub heard, once it has heard ``want`` (notifications arrive asynchronously)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while not want <= seen:
        assert time.monotonic() < deadline, f"heard {seen}, waiting for {want}"
        time.sleep(0.05)
        taken = hub.take_touched()
        assert taken is not None
        seen |= taken
    return seen


def test_a_pass_rolls_up_exactly_the_conversations_appended_to(client: TestClient) -> None:
    hub, store = hub_of(client), store_of(client)
    client.portal.call(client.app.state.rollup.stop)  # type: ignore[attr-defined,union-attr]  # ours alone
    rollup = Rollup(store, "Asia/Shanghai", 400, touched=hub)
    quiet, busy = Chat(client), Chat(client)
    quiet.say("你好")
    busy.say("你好")
    client.portal.call(rollup.run_once)  # type: ignore[union-attr]
    _touched(hub, {quiet.id, busy.id})  # what the first pass already covered

    busy.say("发票查验失败怎么办")
    touched = _touched(hub, {busy.id})
    assert touched == {busy.id}  # the quiet conversation is not read at all
    rolled = client.portal.call(rollup.run_touched, touched)  # type: ignore[union-attr]
    assert rolled >= 2  # the question and its answer
    assert client.portal.call(rollup.run_touched, touched) == 0  # the cursor: counted once  # type: ignore[union-attr]


def test_after_a_dropped_subscription_the_pass_scans_instead(client: TestClient, chat: Chat) -> None:
    hub = hub_of(client)
    client.portal.call(client.app.state.rollup.stop)  # type: ignore[attr-defined,union-attr]
    hub.track_touched()
    assert hub.take_touched() is not None
    raw = sync_redis.Redis.from_url(client.app.state.settings.redis_url, decode_responses=True)  # type: ignore[attr-defined]
    try:
        before = hub.reconnects
        kill_hub_connection(raw)
        deadline = time.monotonic() + 10
        while hub.reconnects == before:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        raw.close()
    assert hub.take_touched() is None  # notifications may have been missed: scan
    assert hub.take_touched() == set()  # and from then on, what it hears again
