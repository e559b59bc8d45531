"""DingTalk (钉钉) enterprise robots: HTTP callbacks (or Stream mode, :mod:`bot.channels.dingtalk_stream`) in;
the message's session webhook, then the OpenAPI, out.

In: ``POST /channels/dingtalk/callback`` carries ``timestamp`` (ms) and ``sign`` headers,
``sign = base64(HMAC-SHA256(key=AppSecret, msg=timestamp + "\\n" + AppSecret))``; a sign that differs or a
timestamp more than an hour from now is refused before anything is stored. One-to-one chats
(``conversationType`` "1") are one conversation per user; in a group ("2") the robot answers only when
@-mentioned, one conversation per member of the group.

Out: while the last message's ``sessionWebhook`` is valid the reply is POSTed there (@-mentioning the member
in a group); after it expires, or when it refuses, through the OpenAPI with an app access token
(``/v1.0/robot/oToMessages/batchSend`` one-to-one, ``/v1.0/robot/groupMessages/send`` in a group).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from bot.channels.base import DeliveryError
from bot.channels.outbound import render
from bot.channels.platform import DingTalkApp, Pacer, PartLedger, TokenCache
from bot.channels.wecom import merge
from bot.errors import AuthError, Forbidden, InputError
from bot.message import Message
from bot.store.keys import Keys
from bot.vocabulary import Channel as ChannelName

logger = logging.getLogger(__name__)

MAX_BYTES = 4000  # a text message; longer answers are split
MAX_PARTS = 3
WINDOW_MS = 3_600_000  # callbacks more than an hour from now are refused
SESSION_MARGIN_MS = 10_000  # a session webhook about to expire is not used
PER_USER_PER_MINUTE = 20
GROUP = "2"
# A bad or expired x-acs-dingtalk-access-token is HTTP 400 InvalidAuthentication (not 401): refresh, retry once.
TOKEN_ERRORS = frozenset({"InvalidAuthentication"})
THROTTLED = "Forbidden.AccessDenied.Q"  # HTTP 403 QpsLimitForApi, QpmLimitForAppkeyAndApi...: retried later


class OpenApiError(DeliveryError):
    """An HTTP error answer: the OpenAPI's carry ``{"code", "requestid", "message"}``."""

    def __init__(self, channel: str, status: int, code: str) -> None:
        retryable = (
            status >= 500 or status in (408, 429) or code in TOKEN_ERRORS or code.startswith(THROTTLED)
        )
        super().__init__(channel, f"HTTP {status} {code}".strip(), retryable)
        self.status, self.code = status, code


class BadDingTalkSign(AuthError):
    """The callback's ``sign`` does not match, or its ``timestamp`` is outside the window."""


def sign(timestamp: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(timestamp: str | None, signature: str | None, secret: str, now_ms: int | None = None) -> None:
    """Raise :class:`BadDingTalkSign` unless ``signature`` signs ``timestamp`` and it is within the hour."""
    # isascii: str.isdigit() also accepts "²" and other digits int() refuses
    if not timestamp or not signature or not (timestamp.isascii() and timestamp.isdigit()):
        raise BadDingTalkSign("a DingTalk callback needs 'timestamp' and 'sign' headers")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if abs(now - int(timestamp)) > WINDOW_MS:
        raise BadDingTalkSign(
            "the callback's timestamp is more than an hour from now: check the server clock"
        )
    if not hmac.compare_digest(sign(timestamp, secret).encode(), signature.encode()):
        raise BadDingTalkSign("the callback's sign does not match: check TRIAGE_DINGTALK_APP_SECRET")


def conversation_id(app: DingTalkApp, payload: Mapping[str, Any]) -> str:
    staff = str(payload.get("senderStaffId") or payload.get("senderId") or "")
    room = str(payload.get("conversationId") or "") if str(payload.get("conversationType")) == GROUP else ""
    corp = str(payload.get("chatbotCorpId") or "")
    digest = hashlib.sha256(f"{app.name}\x00{corp}\x00{room}\x00{staff}".encode()).hexdigest()[:24]
    return f"dingtalk-{digest}"


class DingTalkChannel:
    name: str = ChannelName.DINGTALK
    push = True
    inline = False
    merge_bytes = MAX_BYTES

    def __init__(self, apps: Sequence[DingTalkApp], redis: Any, keys: Keys, timeout: float = 10.0) -> None:
        self.apps = {app.name: app for app in apps}
        self.tokens = {
            app.name: TokenCache(redis, keys, self.name, app.name, self._fetcher(app)) for app in apps
        }
        self.keys = keys
        self.pacer = Pacer(redis, PER_USER_PER_MINUTE)
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self.ledger = PartLedger(redis, keys)

    def app(self, name: str) -> DingTalkApp:
        try:
            return self.apps[name]
        except KeyError:
            raise Forbidden(f"no DingTalk app named {name!r} is configured") from None

    # ---------------------------------------------------------------------- inbound
    @staticmethod
    def addressed(payload: Mapping[str, Any]) -> bool:
        """In a group the robot answers only when @-mentioned."""
        if str(payload.get("conversationType")) != GROUP:
            return True
        return payload.get("isInAtList") is not False

    def receive(self, payload: Mapping[str, Any]) -> Message:
        """A robot message body (HTTP callback or Stream frame) plus ``app``, as a Message."""
        app = self.app(str(payload.get("app") or ""))
        staff = str(payload.get("senderStaffId") or payload.get("senderId") or "")
        msg_id = str(payload.get("msgId") or "")
        if not staff or not msg_id:
            raise InputError("a DingTalk message needs senderStaffId and msgId")
        msgtype = str(payload.get("msgtype") or "")
        content = ""
        if msgtype == "text":
            text = payload.get("text")
            if not isinstance(text, Mapping) or not isinstance(text.get("content"), str):
                raise InputError("a DingTalk text message needs text.content")
            content = text["content"].strip()
        expires = payload.get("sessionWebhookExpiredTime")
        metadata: dict[str, Any] = {
            "app": app.name,
            "msg_type": msgtype if msgtype == "text" else "unsupported",
            "corp_id": str(payload.get("chatbotCorpId") or ""),
            "chat_type": str(payload.get("conversationType") or "1"),
            "open_conversation_id": str(payload.get("conversationId") or ""),
            "session_webhook": self._session_webhook(app, payload.get("sessionWebhook")),
            "session_expires": str(int(expires))
            if isinstance(expires, int | float | str) and str(expires).isdigit()
            else "0",
            "nick": str(payload.get("senderNick") or "")[:64],
        }
        return Message(self.name, staff, conversation_id(app, payload), content, msg_id, metadata)

    @staticmethod
    def _session_webhook(app: DingTalkApp, url: object) -> str:
        """The message's session webhook, only on DingTalk's own host: the sign does not cover the body,
        so a replayed or forged body must not be able to send this user's replies elsewhere."""
        if not isinstance(url, str) or not url:
            return ""
        parts = urllib.parse.urlsplit(app.api_base)
        allowed = (app.session_webhook_prefix, f"{parts.scheme}://{parts.netloc}/")
        if url.startswith(allowed) and "@" not in urllib.parse.urlsplit(url).netloc:
            return url
        logger.warning("dingtalk: ignoring a sessionWebhook outside %s; replies use the OpenAPI", allowed[0])
        return ""

    # --------------------------------------------------------------------- outbound
    async def deliver(self, conversation: Mapping[str, str], event: Mapping[str, Any]) -> None:
        await self.deliver_many(conversation, [event])

    async def deliver_many(
        self, conversation: Mapping[str, str], events: Sequence[Mapping[str, Any]]
    ) -> None:
        script = conversation.get("script", "")
        rendered = [out for out in (render(e, script) for e in events) if out is not None]
        if not rendered:
            return
        await self.ledger.send_parts(
            conversation.get("conversation_id", ""),
            (rendered[0].seq, rendered[-1].seq),
            merge(rendered, script, MAX_BYTES, MAX_PARTS),
            lambda part: self.send_text(conversation, part),
        )

    async def send_text(self, conversation: Mapping[str, str], content: str) -> None:
        app = self.app(conversation.get("app", ""))
        staff = conversation.get("user", "")
        await self.pacer.wait(self.keys.pace(self.name, app.name, conversation.get("conversation_id", "")))
        webhook = conversation.get("session_webhook", "")
        expires = int(conversation.get("session_expires") or 0)
        if webhook and expires - SESSION_MARGIN_MS > int(time.time() * 1000):
            try:
                await self._by_session(webhook, conversation, staff, content)
                return
            except DeliveryError as exc:
                logger.info("dingtalk: session webhook refused (%s); using the OpenAPI", exc.reason)
        await self._by_openapi(app, conversation, staff, content)

    async def _by_session(
        self, webhook: str, conversation: Mapping[str, str], staff: str, content: str
    ) -> None:
        body: dict[str, Any] = {"msgtype": "text", "text": {"content": content}}
        if conversation.get("chat_type") == GROUP:
            # DingTalk highlights and notifies an @ only when the text names the user as well.
            body = {
                "msgtype": "text",
                "text": {"content": f"@{staff} {content}"},
                "at": {"atUserIds": [staff]},
            }
        reply = await self._post(webhook, body, {})
        if int(reply.get("errcode", 0)) != 0:
            raise DeliveryError(self.name, f"session webhook answered errcode {reply.get('errcode')}")

    async def _by_openapi(
        self, app: DingTalkApp, conversation: Mapping[str, str], staff: str, content: str
    ) -> None:
        param = json.dumps({"content": content}, ensure_ascii=False)
        if conversation.get("chat_type") == GROUP:
            path = "/v1.0/robot/groupMessages/send"
            body: dict[str, Any] = {
                "robotCode": app.robot,
                "openConversationId": conversation.get("open_conversation_id", ""),
                "msgKey": "sampleText",
                "msgParam": param,
            }
        else:
            path = "/v1.0/robot/oToMessages/batchSend"
            body = {"robotCode": app.robot, "userIds": [staff], "msgKey": "sampleText", "msgParam": param}
        tokens = self.tokens[app.name]
        token = await self._token(tokens)
        for attempt in range(2):
            try:
                reply = await self._post(
                    f"{app.api_base}{path}", body, {"x-acs-dingtalk-access-token": token}
                )
            except OpenApiError as exc:
                if exc.code in TOKEN_ERRORS and attempt == 0:
                    token = await self._token(tokens, stale=token)
                    continue
                raise
            if staff in (reply.get("invalidStaffIdList") or ()):
                raise DeliveryError(self.name, f"DingTalk refused user {staff!r} (invalidStaffIdList)", False)
            if staff in (reply.get("flowControlledStaffIdList") or ()):
                raise DeliveryError(self.name, f"DingTalk flow-controlled user {staff!r}")
            return

    async def _post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            response = await self._client.post(url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(self.name, f"POST failed: {type(exc).__name__}") from exc
        try:
            value = response.json()
        except ValueError:
            value = {}
        reply: dict[str, Any] = value if isinstance(value, dict) else {}
        if response.status_code >= 300:
            raise OpenApiError(self.name, response.status_code, str(reply.get("code") or ""))
        return reply

    async def _token(self, tokens: TokenCache, stale: str | None = None) -> str:
        try:
            return await (tokens.refresh(stale) if stale else tokens.get())
        except DeliveryError:
            raise
        except (TimeoutError, httpx.HTTPError) as exc:
            raise DeliveryError(self.name, f"no access token: {type(exc).__name__}") from exc

    def _fetcher(self, app: DingTalkApp) -> Any:
        async def fetch() -> tuple[str, int]:
            body = {"appKey": app.app_key, "appSecret": app.app_secret.get_secret_value()}
            try:
                reply = await self._post(f"{app.api_base}/v1.0/oauth2/accessToken", body, {})
            except OpenApiError as exc:
                raise DeliveryError(
                    self.name,
                    f"accessToken answered {exc.reason}: check TRIAGE_DINGTALK_APP_KEY and TRIAGE_DINGTALK_APP_SECRET",
                    exc.retryable,
                ) from exc
            if not reply.get("accessToken"):
                raise DeliveryError(
                    self.name, "accessToken answered no token: check the DingTalk AppKey/AppSecret"
                )
            return str(reply["accessToken"]), int(reply.get("expireIn") or 7200)

        return fetch

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
