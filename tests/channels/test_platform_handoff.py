"""The handoff end to end on each chat platform, across two app processes: the platform's callbacks reach
process A, the on-duty agent's console is connected to process B, and everything between them goes through
the shared Redis — offer, accept, the agent's reply pushed to the platform, the user's next message relayed
to the agent (the bot silent), resolve, and the CSAT answered in the chat."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
import redis.asyncio as aredis
import websockets

from handoff_gateway.agents import AgentStore
from tests.browser.conftest import LiveServer, start_server
from tests.channels.wecom_client import AES_KEY, AGENT_ID, CORP_ID, SECRET, TOKEN, WeComMember
from tests.fakes.dingtalk import FakeDingTalk
from tests.fakes.wecom import FakeWeCom
from tests.live import frames_until

pytestmark = pytest.mark.slow
DING_KEY, DING_SECRET = "dingtwoprocesses0001", "two-processes-secret"


@pytest.fixture(scope="module")
def platforms() -> Iterator[tuple[FakeWeCom, FakeDingTalk]]:
    with (
        FakeWeCom(corpid=CORP_ID, corpsecret=SECRET, agentid=AGENT_ID) as wecom,
        FakeDingTalk(app_key=DING_KEY, app_secret=DING_SECRET) as dingtalk,
    ):
        yield wecom, dingtalk


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
    redis_url: str,
    model_dir: Path,
    platforms: tuple[FakeWeCom, FakeDingTalk],
) -> Iterator[list[LiveServer]]:
    wecom, dingtalk = platforms
    env = {
        "TRIAGE_WECOM_TOKEN": TOKEN,
        "TRIAGE_WECOM_AES_KEY": AES_KEY,
        "TRIAGE_WECOM_CORP_ID": CORP_ID,
        "TRIAGE_WECOM_AGENT_ID": str(AGENT_ID),
        "TRIAGE_WECOM_SECRET": SECRET,
        "TRIAGE_WECOM_API_BASE": wecom.url,
        "TRIAGE_DINGTALK_APP_KEY": DING_KEY,
        "TRIAGE_DINGTALK_APP_SECRET": DING_SECRET,
        "TRIAGE_DINGTALK_API_BASE": dingtalk.url,
        "TRIAGE_CHANNELS_FILE": str(tmp_path_factory.mktemp("none") / "channels.yml"),
    }
    first = start_server(tmp_path_factory, redis_url, model_dir, env)
    a = next(first)
    second = start_server(tmp_path_factory, redis_url, model_dir, {**env, "TRIAGE_REDIS_PREFIX": a.prefix})
    b = next(second)
    yield [a, b]
    for gen in (second, first):
        with pytest.raises(StopIteration):
            next(gen)


async def _agent(server: LiveServer, prefix: str, name: str) -> str:
    client = aredis.Redis.from_url(server.redis_url, decode_responses=True)
    try:
        await AgentStore(client, prefix).add(name, "password-123", "agent", ("zh",), 3, "客服小王")
    finally:
        await client.aclose()
    async with httpx.AsyncClient() as http:
        login = await http.post(
            f"{server.url}/api/v1/agents/login", json={"name": name, "password": "password-123"}
        )
    assert login.status_code == 200, login.text
    return str(login.json()["token"])


async def until(condition: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll without blocking the event loop (the agent's websocket keeps being served)."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return value


class DingTalkMember:
    def __init__(self, http: httpx.Client, fake: FakeDingTalk, staff: str) -> None:
        self.http, self.fake, self.staff = http, fake, staff

    def say(self, text: str) -> Any:
        headers, body = self.fake.callback_message(text, sender_staff_id=self.staff, app_secret=DING_SECRET)
        return self.http.post("/channels/dingtalk/callback", headers=headers, json=body)


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
async def test_a_platform_user_and_an_agent_on_another_process(
    servers: list[LiveServer], platforms: tuple[FakeWeCom, FakeDingTalk], platform: str
) -> None:
    a, b = servers
    wecom, dingtalk = platforms
    user = f"{platform}-user-1"
    http = httpx.Client(base_url=a.url, timeout=10)
    member: Any = WeComMember(http, user) if platform == "wecom" else DingTalkMember(http, dingtalk, user)
    fake: Any = wecom if platform == "wecom" else dingtalk
    token = await _agent(b, a.prefix, f"agent-{platform}")  # b shares a's prefix
    async with websockets.connect(b.url.replace("http", "ws") + "/ws/agent") as agent:
        await agent.send(json.dumps({"type": "hello", "token": token}))
        await frames_until(agent, lambda f: f["type"] == "hello")

        assert member.say("系统打不开了，全公司都用不了，月底结账来不及了").status_code == 200
        offer = await frames_until(agent, lambda f: f["type"] == "offer", timeout=20)
        cid = offer["conversation_id"]
        assert offer["severity"] == "urgent"
        await agent.send(json.dumps({"type": "accept", "conversation_id": cid}))
        await frames_until(agent, lambda f: f["type"] == "accept")
        say = {
            "type": "message",
            "conversation_id": cid,
            "text": "您好，我是值班客服小王",
            "client_msg_id": "g1",
        }
        await agent.send(json.dumps(say))
        await until(lambda: [t for t in fake.texts_to(user) if "值班客服小王" in t])
        answered = len(fake.texts_to(user))

        assert member.say("错误码 E1001，登录页面一直转圈").status_code == 200
        relayed = await frames_until(
            agent,
            lambda f: f["type"] == "message" and f.get("role") == "user" and "E1001" in f.get("text", ""),
        )
        assert relayed["conversation_id"] == cid

        await agent.send(json.dumps({"type": "resolve", "conversation_id": cid}))
        await frames_until(agent, lambda f: f["type"] == "resolve")
        rating = await until(lambda: [t for t in fake.texts_to(user) if t.endswith("5. 5")])
        assert "打分" in rating[0]
        # Between the agent's reply and the CSAT request the bot said nothing: a human owned the conversation.
        between = fake.texts_to(user)[answered:]
        assert all("服务" in t or "打分" in t or "结束" in t for t in between), between
        assert member.say("5").status_code == 200
        # Off duty, so the next test's offer goes to its own agent, not to this departed one.
        async with httpx.AsyncClient() as off:
            await off.put(
                f"{b.url}/api/v1/agents/me/presence",
                json={"status": "offline"},
                headers={"Authorization": f"Bearer {token}"},
            )

    db = sync_redis.Redis.from_url(a.redis_url, decode_responses=True)
    try:
        from bot.store.keys import Keys

        def scores() -> list[int]:
            events = [json.loads(f["e"]) for _, f in db.xrange(Keys(a.prefix).events(cid)) if f]
            return [e["score"] for e in events if e.get("type") == "csat"]

        fake.wait_for(lambda _: scores(), timeout=20)
        assert scores() == [5]
    finally:
        db.close()
        http.close()
