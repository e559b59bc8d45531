"""On-call alerts: a fake WeCom group robot and DingTalk custom robot on loopback, real Redis, the real app."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis.asyncio as aredis
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from bot.kb.search import KnowledgeBase
from bot.nlu.pipeline import NLUPipeline
from bot.settings import Settings
from handoff_gateway.alerts import Alert, Alerts, robots_from
from tests.app.conftest import Chat
from triagebot.app import create_app

WECOM_KEY = "wecom-key-0123456789abcdef"
DING_TOKEN = "ding-token-fedcba9876543210"
DING_SECRET = "SECa1b2c3d4e5f6-secret-value"
URGENT = "系统崩溃了，全公司都登录不了，月底结账来不及了"


@dataclass
class Post:
    robot: str  # "wecom" or "dingtalk", by path
    raw_query: str
    query: dict[str, str]
    body: dict[str, Any]
    received_ms: int


@dataclass
class Robots:
    """Both robots on one server: ``/cgi-bin/webhook/send?key=`` (WeCom), ``/robot/send?access_token=``
    (DingTalk). ``status``/``errcode`` set the answer; ``stall`` holds every answer until it is set."""

    base: str = ""
    status: int = 200
    errcode: int = 0
    stall: threading.Event | None = None
    posts: list[Post] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, robot: str) -> list[Post]:
        with self.lock:
            return [p for p in self.posts if p.robot == robot]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"condition not met in time; received {[p.body for p in self.posts]}")


def _handler(robots: Robots) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = urllib.parse.urlsplit(self.path)
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            robot = "wecom" if parts.path == "/cgi-bin/webhook/send" else "dingtalk"
            query = {k: v[0] for k, v in urllib.parse.parse_qs(parts.query).items()}
            with robots.lock:
                robots.posts.append(Post(robot, parts.query, query, body, int(time.time() * 1000)))
            if robots.stall is not None:
                robots.stall.wait(30)
            answer = json.dumps(
                {"errcode": robots.errcode, "errmsg": "invalid webhook url" if robots.errcode else "ok"}
            )
            try:
                self.send_response(robots.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer.encode())
            except OSError:
                pass  # the sender gave up

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default 5 resets a burst of alerts from two processes

    daemon_threads = True


@pytest.fixture
def robots() -> Iterator[Robots]:
    state = Robots()
    httpd = _Server(("127.0.0.1", 0), _handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state
    if state.stall is not None:
        state.stall.set()
    httpd.shutdown()
    httpd.server_close()


def robot_settings(settings: Settings, base: str, **update: Any) -> Settings:
    return settings.model_copy(
        update={
            "alert_wecom_webhook": f"{base}/cgi-bin/webhook/send?key={WECOM_KEY}",
            "alert_dingtalk_webhook": f"{base}/robot/send?access_token={DING_TOKEN}",
            "alert_dingtalk_secret": SecretStr(DING_SECRET),
            **update,
        }
    )


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aredis.Redis]:
    client = aredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


def make_alerts(settings: Settings, redis: aredis.Redis) -> tuple[Alerts, CollectorRegistry]:
    registry = CollectorRegistry()
    return Alerts.from_settings(settings, redis, registry), registry


def count(registry: CollectorRegistry, robot: str, result: str) -> float:
    return registry.get_sample_value("triage_alerts_total", {"robot": robot, "result": result}) or 0.0


ALERT = Alert("紧急转人工 / Urgent handoff", "- severity: **urgent**\n- conversation: `c-1` (web, zh)")


# ------------------------------------------------------------------------------- protocol
async def test_dingtalk_is_signed_with_a_fresh_timestamp_and_wecom_gets_its_envelope(
    settings: Settings, robots: Robots, redis_client: aredis.Redis
) -> None:
    alerts, registry = make_alerts(robot_settings(settings, robots.base), redis_client)
    before = int(time.time() * 1000)
    alerts.send(ALERT)
    await alerts.drain()
    await alerts.aclose()

    [ding] = robots.of("dingtalk")
    assert ding.query["access_token"] == DING_TOKEN
    timestamp = int(ding.query["timestamp"])
    assert before - 1000 <= timestamp <= ding.received_ms + 1000  # fresh: DingTalk refuses > 1 h off
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), f"{timestamp}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert ding.query["sign"] == expected
    assert f"sign={urllib.parse.quote_plus(expected)}" in ding.raw_query  # URL-encoded on the wire
    assert ding.body == {
        "msgtype": "markdown",
        "markdown": {"title": ALERT.title, "text": f"### {ALERT.title}\n{ALERT.text}"},
    }

    [wecom] = robots.of("wecom")
    assert wecom.query == {"key": WECOM_KEY}  # WeCom robots are not signed
    assert wecom.body == {"msgtype": "markdown", "markdown": {"content": f"**{ALERT.title}**\n{ALERT.text}"}}
    assert count(registry, "wecom", "sent") == count(registry, "dingtalk", "sent") == 1


@pytest.mark.parametrize(
    ("url", "platform"),
    [
        ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", "wecom"),
        ("https://oapi.dingtalk.com/robot/send?access_token=t", "dingtalk"),
    ],
)
def test_the_older_single_webhook_still_works(settings: Settings, url: str, platform: str) -> None:
    [robot] = robots_from(settings.model_copy(update={"alert_webhook": url}))
    assert (robot.platform, robot.url, robot.redacted) == (platform, url, url.split("?")[0])


# ------------------------------------------------------------------------------ rate limit
async def test_twenty_five_alerts_a_minute_post_twenty_per_robot_across_processes(
    settings: Settings,
    robots: Robots,
    redis_url: str,
    redis_client: aredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="handoff_gateway.alerts")
    configured = robot_settings(settings, robots.base)
    other_redis = aredis.Redis.from_url(redis_url, decode_responses=True)  # the other process's client
    one, reg_one = make_alerts(configured, redis_client)
    two, reg_two = make_alerts(configured, other_redis)
    try:
        for n in range(25):
            (one if n % 2 else two).send(Alert(f"alert {n}", "text"))
        await asyncio.gather(one.drain(), two.drain())
    finally:
        await one.aclose()
        await two.aclose()
        await other_redis.aclose()

    assert len(robots.of("wecom")) == len(robots.of("dingtalk")) == 20
    for robot in ("wecom", "dingtalk"):
        assert count(reg_one, robot, "sent") + count(reg_two, robot, "sent") == 20
        assert count(reg_one, robot, "rate_limited") + count(reg_two, robot, "rate_limited") == 5
        warnings = [
            r for r in caplog.records if "dropping alerts" in r.getMessage() and robot in r.getMessage()
        ]
        assert len(warnings) == 1  # once per window, not once per dropped alert
    ttl = await redis_client.ttl(f"{settings.redis_prefix}alerts:rate:wecom")
    assert 0 < ttl <= 60  # the window ends by itself


# ------------------------------------------------------------------------------- failures
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("failure", ["http_500", "errcode", "refused"])
async def test_a_failing_robot_neither_raises_nor_blocks(
    failure: str,
    settings: Settings,
    robots: Robots,
    redis_client: aredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    base = robots.base
    if failure == "http_500":
        robots.status = 500
    elif failure == "errcode":
        robots.errcode = 93000
    else:
        base = f"http://127.0.0.1:{_closed_port()}"
    alerts, registry = make_alerts(robot_settings(settings, base), redis_client)
    started = time.perf_counter()
    task = alerts.send(ALERT)
    assert time.perf_counter() - started < 0.05  # the caller does not wait for the robot
    assert task is not None
    await alerts.drain()
    assert task.done() and task.exception() is None
    await alerts.aclose()
    assert count(registry, "wecom", "failed") == count(registry, "dingtalk", "failed") == 1
    logged = [r for r in caplog.records if r.name == "handoff_gateway.alerts"]
    assert len(logged) == 2 and all(
        "/cgi-bin/webhook/send" in r.getMessage() or "/robot/send" in r.getMessage() for r in logged
    )
    _assert_no_secrets(caplog, robots)


async def test_a_robot_that_never_answers_does_not_hold_up_shutdown(
    settings: Settings, robots: Robots, redis_client: aredis.Redis
) -> None:
    robots.stall = threading.Event()
    alerts, _ = make_alerts(robot_settings(settings, robots.base), redis_client)
    started = time.perf_counter()
    alerts.send(ALERT)
    assert time.perf_counter() - started < 0.05
    deadline = time.monotonic() + 10
    while len(robots.posts) < 2:  # both robots hold the request open (polled without blocking the loop)
        assert time.monotonic() < deadline, "the robots never got the alert"
        await asyncio.sleep(0.02)
    started = time.perf_counter()
    await alerts.aclose(grace_s=0.2)
    assert time.perf_counter() - started < 3
    assert alerts.send(ALERT) is None  # closed: nothing more goes out


async def test_secrets_never_reach_the_logs(
    settings: Settings, robots: Robots, redis_client: aredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx logs every request's URL at INFO
    alerts, _ = make_alerts(robot_settings(settings, robots.base), redis_client)
    alerts.send(ALERT)
    await alerts.drain()
    robots.errcode = 310000  # DingTalk's "sign does not match"
    alerts.send(ALERT)
    await alerts.drain()
    await alerts.aclose()
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the requests
    _assert_no_secrets(caplog, robots)


def _assert_no_secrets(caplog: pytest.LogCaptureFixture, robots: Robots) -> None:
    secrets = [WECOM_KEY, DING_TOKEN, DING_SECRET]
    secrets += [p.query["sign"] for p in robots.posts if "sign" in p.query]
    secrets += [urllib.parse.quote_plus(s) for s in list(secrets)]
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert not [s for s in secrets if s in text], text
    assert not [s for s in secrets if s in caplog.text]


# ----------------------------------------------------------------------------- in the app
@pytest.fixture
def alerting_desk(
    desk_settings: Settings, robots: Robots, nlu: NLUPipeline, knowledge_base: KnowledgeBase
) -> Iterator[TestClient]:
    desk_settings.sla.normal.first_response_seconds = 2  # escalates at 80 %: 1.6 s
    configured = robot_settings(desk_settings, robots.base)
    with TestClient(create_app(configured, nlu=nlu, kb=knowledge_base)) as client:
        yield client


def _drain(client: TestClient) -> None:
    gw = client.app.state.gateway  # type: ignore[attr-defined]
    client.portal.call(gw.alerts.drain)  # type: ignore[union-attr]


@pytest.mark.parametrize("on_duty", [True, None], ids=["queued", "ticket-nobody-on-duty"])
def test_an_urgent_handoff_pages_on_call_once(
    on_duty: bool | None, alerting_desk: TestClient, robots: Robots
) -> None:
    alerting_desk.app.state.settings.on_duty = on_duty  # type: ignore[attr-defined]
    chat = Chat(alerting_desk)
    chat.say(URGENT)
    assert chat.last["handoff"]["severity"] == "urgent"
    _drain(alerting_desk)
    for robot in ("wecom", "dingtalk"):
        [post] = robots.of(robot)
        text = post.body["markdown"].get("content") or post.body["markdown"]["text"]
        assert chat.id in text and "urgent" in text and "web" in text
        if on_duty is None:
            assert chat.last["ticket_id"] in text
    chat.say("还要多久")  # waiting in the queue or on the ticket: no second page
    _drain(alerting_desk)
    assert len(robots.of("wecom")) == len(robots.of("dingtalk")) == 1


def test_an_sla_escalation_pages_on_call_once(alerting_desk: TestClient, robots: Robots) -> None:
    alerting_desk.app.state.settings.on_duty = True  # type: ignore[attr-defined]
    chat = Chat(alerting_desk)
    chat.say("转人工")
    assert chat.last["handoff"]["severity"] == "normal" and chat.last["state"] == "queued"
    [post] = robots.wait_for(lambda: robots.of("wecom"), timeout=8)
    content = post.body["markdown"]["content"]
    assert "SLA" in content and chat.id in content and "waiting" in content and "normal" in content
    gw = alerting_desk.app.state.gateway  # type: ignore[attr-defined]
    # The breach comes after the escalation (at 100 % of the target): the dispatcher has had passes since.
    robots.wait_for(
        lambda: alerting_desk.portal.call(gw.desk.redis.zrange, gw.desk.keys.breaches, 0, -1),  # type: ignore[union-attr]
        timeout=8,
    )
    _drain(alerting_desk)
    assert len(robots.of("wecom")) == len(robots.of("dingtalk")) == 1
