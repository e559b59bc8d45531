"""DingTalk Stream mode against a local fake stream gateway on loopback: a real HTTP ``connections/open``
endpoint and a real websocket server that speak the SDK's frame protocol and record what the client sent."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from bot.channels.dingtalk_stream import (
    ACK_OK,
    ACK_REFUSED,
    ACK_RETRY,
    BOT_TOPIC,
    OPEN_CONNECTION_PATH,
    TASK_NAME,
    Backoff,
    DingTalkStream,
)
from bot.errors import Unavailable

APP_KEY = "dingq7ex2rmvzbpd0k3s"
APP_SECRET = "Zx9-secret-that-must-never-be-logged"
FAST = Backoff(base=0.05, cap=0.4)
WAIT = 5.0


def robot_message(msg_id: str = "msgE3bVmvUj5d2Jm+GztBGSGA==", text: str = " 发票查验失败") -> dict[str, Any]:
    """A group robot message as DingTalk sends it (the same body as the HTTP callback's)."""
    return {
        "conversationId": "cidQ0Pr3hsHYi2jTSUZeQtj9g==",
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$Bf9kKfz0ZhUe2yE3Jf3cXw=="}],
        "chatbotCorpId": "ding9f50b15bccd16741",
        "chatbotUserId": "$:LWCP_v1:$Bf9kKfz0ZhUe2yE3Jf3cXw==",
        "msgId": msg_id,
        "senderNick": "张三",
        "isAdmin": False,
        "senderStaffId": "manager4220",
        "sessionWebhookExpiredTime": 1690367502123,
        "createAt": 1690362102123,
        "senderCorpId": "ding9f50b15bccd16741",
        "conversationType": "2",
        "senderId": "$:LWCP_v1:$h1uvq9HqyfZ3PEt3V0yeEg==",
        "conversationTitle": "报销答疑群",
        "isInAtList": True,
        "sessionWebhook": "https://oapi.dingtalk.com/robot/sendBySession?session=c1f3e0b8d2a94f6b",
        "text": {"content": text},
        "robotCode": APP_KEY,
        "msgtype": "text",
    }


def frame(kind: str, topic: str, message_id: str, data: dict[str, Any]) -> str:
    return json.dumps(
        {
            "specVersion": "1.0",
            "type": kind,
            "headers": {
                "appId": "a1b2c3",
                "connectionId": "conn-7f3e",
                "contentType": "application/json",
                "messageId": message_id,
                "time": "1690362102194",
                "topic": topic,
            },
            "data": json.dumps(data, ensure_ascii=False),
        },
        ensure_ascii=False,
    )


@dataclass
class Gateway:
    """The fake: ``refuse_with`` makes ``connections/open`` answer that status; it always checks the key pair."""

    refuse_with: int | None = None
    opens: list[dict[str, Any]] = field(default_factory=list)
    open_times: list[float] = field(default_factory=list)
    tickets: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    connections: asyncio.Queue[ServerConnection] = field(default_factory=asyncio.Queue)
    received: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    ws_port: int = 0
    api_base: str = ""

    def open_connection(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.opens.append(body)
            self.open_times.append(time.monotonic())
            if path != OPEN_CONNECTION_PATH:
                return 404, {"code": "NotFound", "message": path}
            if self.refuse_with:
                return self.refuse_with, {"code": "InvalidParameter", "message": "参数错误"}
            if body.get("clientId") != APP_KEY or body.get("clientSecret") != APP_SECRET:
                return 401, {"code": "InvalidAuthentication", "message": "身份验证失败"}
            ticket = f"ticket-{len(self.opens)}-{APP_KEY}"
            self.tickets.add(ticket)
        return 200, {"endpoint": f"ws://127.0.0.1:{self.ws_port}/connect", "ticket": ticket}

    def check_ticket(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        ticket = parse_qs(url.query).get("ticket", [""])[0]
        with self.lock:
            known = ticket in self.tickets
            self.tickets.discard(ticket)  # one connection per ticket
        if url.path != "/connect" or not known:
            return connection.respond(401, "unknown ticket\n")
        return None

    async def serve(self, ws: ServerConnection) -> None:
        await self.connections.put(ws)
        async for raw in ws:
            await self.received.put(json.loads(raw))

    async def connection(self) -> ServerConnection:
        return await asyncio.wait_for(self.connections.get(), WAIT)

    async def ack(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.received.get(), WAIT)


def http_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, answer = gateway.open_connection(self.path, body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass
class Inbox:
    """``submit``: records each payload; raises for the next ``fail_next`` calls; ``answer`` is what it returns."""

    received: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    answer: bool = True
    hold: bool = False

    async def submit(self, payload: dict[str, Any]) -> bool:
        self.received.append(payload)
        if self.hold:
            await asyncio.Event().wait()
        if self.fail_next:
            self.fail_next -= 1
            raise Unavailable("redis is down")
        return self.answer


async def eventually(condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def stream_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith(TASK_NAME) and not t.done()]


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    gw = Gateway()
    async with serve(gw.serve, "127.0.0.1", 0, process_request=gw.check_ticket) as server:
        gw.ws_port = next(iter(server.sockets)).getsockname()[1]
        http = ThreadingHTTPServer(("127.0.0.1", 0), http_handler(gw))
        thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        gw.api_base = f"http://127.0.0.1:{http.server_address[1]}"
        try:
            yield gw
        finally:
            http.shutdown()
            http.server_close()
            thread.join(WAIT)


@pytest.fixture
async def make_stream(gateway: Gateway) -> AsyncIterator[Callable[..., DingTalkStream]]:
    made: list[DingTalkStream] = []

    def make(inbox: Inbox, secret: str = APP_SECRET) -> DingTalkStream:
        stream = DingTalkStream(
            APP_KEY, secret, inbox.submit, api_base=gateway.api_base, backoff=FAST, drain_timeout=0.3
        )
        made.append(stream)
        return stream

    yield make
    for stream in made:
        await stream.stop()


async def test_open_connection_sends_the_key_pair_and_the_bot_subscription(
    gateway: Gateway, make_stream: Callable[..., DingTalkStream]
) -> None:
    await make_stream(Inbox()).start()
    await gateway.connection()
    body = gateway.opens[0]
    assert (body["clientId"], body["clientSecret"]) == (APP_KEY, APP_SECRET)
    assert {"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"} in body["subscriptions"]
    assert body["ua"].startswith("dingtalk-sdk-python/")


@pytest.mark.parametrize(
    ("answer", "code"),
    [(True, ACK_OK), (False, ACK_REFUSED)],
    ids=["stored-or-duplicate", "refused"],
)
async def test_robot_message_reaches_submit_and_is_acked(
    gateway: Gateway, make_stream: Callable[..., DingTalkStream], answer: bool, code: int
) -> None:
    inbox = Inbox(answer=answer)
    await make_stream(inbox).start()
    ws = await gateway.connection()
    await ws.send(frame("CALLBACK", BOT_TOPIC, "5a1e-0001", robot_message()))
    ack = await gateway.ack()
    assert inbox.received == [robot_message()]
    assert inbox.received[0]["text"]["content"] == " 发票查验失败"
    assert ack["code"] == code
    assert ack["headers"]["messageId"] == "5a1e-0001"
    assert ack["headers"]["contentType"] == "application/json"


async def test_a_message_that_could_not_be_stored_is_acked_not_ok_and_redelivered(
    gateway: Gateway, make_stream: Callable[..., DingTalkStream]
) -> None:
    inbox = Inbox(fail_next=1)
    await make_stream(inbox).start()
    ws = await gateway.connection()
    await ws.send(frame("CALLBACK", BOT_TOPIC, "5a1e-0002", robot_message()))
    first = await gateway.ack()
    assert (first["code"], first["headers"]["messageId"]) == (ACK_RETRY, "5a1e-0002")
    await ws.send(frame("CALLBACK", BOT_TOPIC, "5a1e-0002", robot_message()))  # DingTalk redelivers
    second = await gateway.ack()
    assert (second["code"], second["headers"]["messageId"]) == (ACK_OK, "5a1e-0002")
    assert inbox.received == [robot_message(), robot_message()]


async def test_ping_is_answered_with_its_data(
    gateway: Gateway, make_stream: Callable[..., DingTalkStream]
) -> None:
    await make_stream(Inbox()).start()
    ws = await gateway.connection()
    await ws.send(frame("SYSTEM", "ping", "ping-0001", {"opaque": "8b1f"}))
    ack = await gateway.ack()
    assert (ack["code"], ack["headers"]["messageId"]) == (ACK_OK, "ping-0001")
    assert json.loads(ack["data"]) == {"opaque": "8b1f"}


@pytest.mark.parametrize("how", ["close", "abort", "disconnect-frame"])
async def test_reconnects_after_the_gateway_drops_the_connection(
    gateway: Gateway, make_stream: Callable[..., DingTalkStream], how: str
) -> None:
    inbox = Inbox()
    await make_stream(inbox).start()
    first = await gateway.connection()
    if how == "close":
        await first.close(1001, "gateway restarting")
    elif how == "abort":
        first.transport.abort()
    else:
        await first.send(frame("SYSTEM", "disconnect", "sys-0001", {"reason": "rebalance"}))
    second = await gateway.connection()
    assert len(gateway.opens) == 2
    await second.send(frame("CALLBACK", BOT_TOPIC, "5a1e-0003", robot_message("msg-after-reconnect")))
    await eventually(lambda: any(m["msgId"] == "msg-after-reconnect" for m in inbox.received))


async def test_stop_closes_the_websocket_and_leaves_no_task_running(
    gateway: Gateway, make_stream: Callable[..., DingTalkStream]
) -> None:
    inbox = Inbox(hold=True)  # a store that never finishes: stop() must not wait for it forever
    stream = make_stream(inbox)
    await stream.start()
    ws = await gateway.connection()
    await ws.send(frame("CALLBACK", BOT_TOPIC, "5a1e-0004", robot_message()))
    await eventually(lambda: len(inbox.received) == 1)
    await stream.stop()
    assert not stream.running
    assert stream_tasks() == []
    await asyncio.wait_for(ws.wait_closed(), WAIT)
    assert ws.close_code == 1000
    await stream.stop()  # idempotent


@pytest.mark.parametrize(
    ("secret", "refuse_with", "status"), [(APP_SECRET, 400, 400), ("wrong-secret", None, 401)]
)
async def test_refused_open_is_logged_and_retried_with_backoff(
    gateway: Gateway,
    make_stream: Callable[..., DingTalkStream],
    caplog: pytest.LogCaptureFixture,
    secret: str,
    refuse_with: int | None,
    status: int,
) -> None:
    caplog.set_level(logging.INFO)
    gateway.refuse_with = refuse_with
    stream = make_stream(Inbox(), secret=secret)
    await stream.start()
    await eventually(lambda: len(gateway.opens) >= 5)
    assert stream.running and not stream.connected
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors and f"HTTP {status}" in errors[0] and "app key" in errors[0]
    assert secret not in caplog.text
    gaps = [b - a for a, b in zip(gateway.open_times, gateway.open_times[1:], strict=False)]
    assert gaps[3] >= 0.2 > gaps[0], gaps  # 0.025-0.05 s, then doubling up to 0.2-0.4 s


async def test_recovers_once_the_gateway_accepts_again(
    gateway: Gateway, make_stream: Callable[..., DingTalkStream]
) -> None:
    gateway.refuse_with = 401
    inbox = Inbox()
    await make_stream(inbox).start()
    await eventually(lambda: len(gateway.opens) >= 2)
    gateway.refuse_with = None
    ws = await gateway.connection()
    await ws.send(frame("CALLBACK", BOT_TOPIC, "5a1e-0005", robot_message()))
    assert (await gateway.ack())["code"] == ACK_OK


@pytest.mark.parametrize(
    ("attempt", "low", "high"), [(0, 0.5, 1), (1, 0.5, 1), (2, 1, 2), (3, 2, 4), (9, 30, 60)]
)
def test_backoff_doubles_with_jitter_up_to_the_cap(attempt: int, low: float, high: float) -> None:
    delays = [Backoff(base=1, cap=60).delay(attempt) for _ in range(50)]
    assert all(low <= d <= high for d in delays)
