"""DingTalk robot Stream mode: robot messages over an outbound websocket, so no public callback URL is needed.

The protocol (the one the official ``dingtalk-stream`` SDK speaks):

1. ``POST {api_base}/v1.0/gateway/connections/open`` with ``clientId`` (app key), ``clientSecret``, the
   ``subscriptions`` (here only ``CALLBACK /v1.0/im/bot/messages/get``) and ``ua`` answers
   ``{"endpoint": "wss://...", "ticket": "..."}``.
2. A websocket to ``endpoint?ticket=...`` carries JSON frames ``{"type": SYSTEM|EVENT|CALLBACK, "headers":
   {"topic", "messageId", "contentType", ...}, "data": "<JSON string>"}``. Every frame is answered with an
   ACK frame ``{"code", "headers": {"messageId", "contentType"}, "message", "data"}``.
3. A robot message arrives as a CALLBACK frame on the bot topic; its ``data`` is the same body the HTTP
   callback receives (msgtype, text.content, msgId, conversationId, senderStaffId, sessionWebhook, ...).
   SYSTEM ``ping`` frames are answered with their data echoed; SYSTEM ``disconnect`` announces that the
   gateway is about to close the connection, and the client reconnects.

Acks: ``200`` once ``submit`` returned True (stored, or a duplicate already stored); ``500``
(``AckMessage.STATUS_SYSTEM_EXCEPTION``, the SDK's "failed, try again later") when ``submit`` raised, so
DingTalk delivers the message again; ``400`` when ``submit`` returned False or the frame's data is not a
JSON object (redelivering the same bytes cannot help).

The frames, acks and handlers come from the SDK. Its connection loop, ``DingTalkStreamClient.start()``, is
not used, because inside an application's event loop it:

* posts ``connections/open`` with blocking ``requests.post`` (no timeout) on the loop thread;
* catches ``CancelledError`` while connected and carries on after ``sleep(10)``, so one ``task.cancel()``
  does not stop it, and leaves its ``keepalive`` and per-frame tasks running after it stops;
* reads ``DingTalkStreamClient.OPEN_CONNECTION_API`` through the class (one URL per process) and retries
  after a fixed 10 s, with no backoff; it logs the connection ticket and sends no ack when a handler raises.

So this module runs its own loop: ``httpx`` for the open call, ``websockets`` for the connection (with the
library's ping/pong keepalive, which also notices a dead peer), exponential backoff with jitter between
attempts, and every task it starts is cancelled by ``stop()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx
from dingtalk_stream import (
    AckMessage,
    CallbackHandler,
    CallbackMessage,
    ChatbotMessage,
    EventHandler,
    EventMessage,
    SystemHandler,
    SystemMessage,
)
from dingtalk_stream.version import VERSION_STRING
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from bot.errors import TriageError

logger = logging.getLogger(__name__)

BOT_TOPIC: str = ChatbotMessage.TOPIC  # "/v1.0/im/bot/messages/get"
OPEN_CONNECTION_PATH = "/v1.0/gateway/connections/open"
ACK_OK: int = AckMessage.STATUS_OK
ACK_RETRY: int = AckMessage.STATUS_SYSTEM_EXCEPTION  # not stored: DingTalk delivers the message again
ACK_REFUSED: int = AckMessage.STATUS_BAD_REQUEST  # submit said no, or the data is not a JSON object
USER_AGENT = (
    f"dingtalk-sdk-python/v{VERSION_STRING}-union"  # the SDK's ua, so the gateway sees a known client
)
TASK_NAME = "dingtalk-stream"
STABLE_AFTER = 30.0  # seconds a connection must last before the backoff starts over

Submit = Callable[[dict[str, Any]], Awaitable[bool]]


class OpenConnectionError(TriageError):
    """``connections/open`` refused or answered something that is not an endpoint and a ticket."""

    retryable = True

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status}: {reason}" if status else reason)
        self.status, self.reason = status, reason

    @property
    def credentials(self) -> bool:
        """400/401/403: the app key or secret is wrong (or the app lacks Stream mode); retrying alone won't fix it."""
        return self.status in (400, 401, 403)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with equal jitter: attempt n waits between half and all of ``base * 2**(n-1)``."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        full = min(self.cap, self.base * 2 ** max(0, attempt - 1))
        return full / 2 + random.uniform(0, full / 2)


class _BotMessages(CallbackHandler):
    """Hands each robot message to ``submit`` and turns its outcome into the ack code."""

    def __init__(self, submit: Submit) -> None:
        super().__init__()
        self._submit = submit

    async def process(self, message: CallbackMessage) -> tuple[int, str]:
        payload = message.data
        if not isinstance(payload, dict):
            logger.warning(
                "dingtalk stream: robot message %s is not a JSON object", message.headers.message_id
            )
            return ACK_REFUSED, "data is not a JSON object"
        msg_id = payload.get("msgId")
        try:
            accepted = await self._submit(payload)
        except Exception:
            logger.exception(
                "dingtalk stream: could not store robot message %s; asking for redelivery", msg_id
            )
            return ACK_RETRY, "not stored, deliver again later"
        if not accepted:
            logger.warning("dingtalk stream: robot message %s refused", msg_id)
            return ACK_REFUSED, "refused"
        return ACK_OK, "OK"


class DingTalkStream:
    """One Stream-mode connection for one DingTalk app, reconnecting until ``stop()``.

    ``submit(payload)`` gets each robot message body; it returns True once the message is stored (or was
    already), returns False to refuse it, and raises when it could not store it (the message is redelivered).
    """

    def __init__(
        self,
        app_key: str,
        app_secret: str,
        submit: Submit,
        *,
        api_base: str = "https://api.dingtalk.com",
        backoff: Backoff = Backoff(),
        http_timeout: float = 10.0,
        drain_timeout: float = 5.0,
    ) -> None:
        self.app_key = app_key
        self._secret = app_secret
        self.open_url = api_base.rstrip("/") + OPEN_CONNECTION_PATH
        self.backoff = backoff
        self._http_timeout = http_timeout
        self._drain_timeout = drain_timeout
        self._bot = _BotMessages(submit)
        self._system = SystemHandler()
        self._events = EventHandler()  # not subscribed; answers "not implemented" should one arrive
        self._other_callbacks = CallbackHandler()  # likewise for any other callback topic
        self._task: asyncio.Task[None] | None = None
        self._frames: set[asyncio.Task[None]] = set()
        self.connected = False

    def __repr__(self) -> str:  # never shows the secret
        return f"DingTalkStream(app_key={self.app_key!r}, open_url={self.open_url!r})"

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start connecting in the background, in the running loop; returns at once."""
        if self.running:
            return
        self._task = asyncio.create_task(self._run(), name=TASK_NAME)

    async def stop(self) -> None:
        """Close the websocket, let in-flight messages finish storing (briefly), and end every task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._frames:
            # Their acks can no longer be sent (DingTalk will redeliver), but a store under way may finish.
            _, pending = await asyncio.wait(set(self._frames), timeout=self._drain_timeout)
            for frame in pending:
                frame.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        async with httpx.AsyncClient(timeout=self._http_timeout) as http:
            while True:
                connected_at: float | None = None
                try:
                    endpoint, ticket = await self._open_connection(http)
                    async with connect(f"{endpoint}?ticket={quote_plus(ticket)}", close_timeout=2) as ws:
                        connected_at, self.connected = loop.time(), True
                        logger.info("dingtalk stream: connected to %s", endpoint)
                        try:
                            await self._read(ws)
                        except asyncio.CancelledError:
                            await ws.close(1000, "client stopping")  # a clean close, not 1011
                            raise
                    logger.info("dingtalk stream: the gateway closed the connection (%s)", ws.close_code)
                except OpenConnectionError as exc:
                    if exc.credentials:
                        logger.error(
                            "dingtalk stream: %s refused app key %s (%s); check the DingTalk app key and secret "
                            "and that the robot uses Stream mode",
                            self.open_url,
                            self.app_key,
                            exc,
                        )
                    else:
                        logger.warning("dingtalk stream: opening a connection failed: %s", exc)
                except (OSError, TimeoutError, httpx.HTTPError, InvalidHandshake, InvalidURI) as exc:
                    logger.warning("dingtalk stream: connection failed: %s", exc)
                except ConnectionClosed as exc:
                    logger.warning("dingtalk stream: connection lost: %s", exc)
                except Exception:
                    logger.exception("dingtalk stream: unexpected error; reconnecting")
                finally:
                    self.connected = False
                # Back off further on every failed or short-lived connection; a long one starts over.
                stable = connected_at is not None and loop.time() - connected_at >= STABLE_AFTER
                failures = 0 if stable else failures + 1
                delay = self.backoff.delay(failures)
                logger.info("dingtalk stream: reconnecting in %.2fs", delay)
                await asyncio.sleep(delay)

    async def _open_connection(self, http: httpx.AsyncClient) -> tuple[str, str]:
        body = {
            "clientId": self.app_key,
            "clientSecret": self._secret,
            "subscriptions": [{"type": CallbackMessage.TYPE, "topic": BOT_TOPIC}],
            "ua": USER_AGENT,
            "localIp": "",
        }
        response = await http.post(self.open_url, json=body, headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise OpenConnectionError(response.status_code, self._redact(response.text[:300]))
        try:
            answer = response.json()
            endpoint, ticket = answer["endpoint"], answer["ticket"]
        except (ValueError, KeyError, TypeError):
            raise OpenConnectionError(200, "the answer has no endpoint and ticket") from None
        if not (
            isinstance(endpoint, str) and endpoint.startswith(("ws://", "wss://")) and isinstance(ticket, str)
        ):
            raise OpenConnectionError(200, f"unusable endpoint {endpoint!r}")
        return endpoint, ticket

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    async def _read(self, ws: ClientConnection) -> None:
        # One task per frame, as the SDK does, so a slow store does not hold up pings and other messages.
        async for raw in ws:
            frame = asyncio.create_task(self._answer(ws, raw), name=f"{TASK_NAME}-frame")
            self._frames.add(frame)
            frame.add_done_callback(self._frames.discard)

    async def _answer(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
            kind, topic = frame.get("type"), (frame.get("headers") or {}).get("topic")
        except (ValueError, AttributeError):
            logger.warning("dingtalk stream: ignoring a frame that is not a JSON object")
            return
        try:
            if kind == SystemMessage.TYPE:
                ack = await self._system.raw_process(SystemMessage.from_dict(frame))
            elif kind == CallbackMessage.TYPE:
                handler = self._bot if topic == BOT_TOPIC else self._other_callbacks
                ack = await handler.raw_process(CallbackMessage.from_dict(frame))
            elif kind == EventMessage.TYPE:
                ack = await self._events.raw_process(EventMessage.from_dict(frame))
            else:
                logger.warning("dingtalk stream: ignoring a frame of type %r", kind)
                return
        except ValueError:  # ``data`` is not JSON
            ack = AckMessage()
            ack.code, ack.message = ACK_REFUSED, "data is not JSON"
            ack.headers.message_id = (frame.get("headers") or {}).get("messageId")
        try:
            await ws.send(json.dumps(ack.to_dict()))
        except ConnectionClosed:
            logger.info(
                "dingtalk stream: connection closed before the ack of %s was sent", ack.headers.message_id
            )
            return
        if kind == SystemMessage.TYPE and topic == SystemMessage.TOPIC_DISCONNECT:
            logger.info("dingtalk stream: the gateway asked to disconnect; reconnecting")
            await ws.close()
