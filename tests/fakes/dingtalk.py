"""A fake DingTalk (钉钉) server; its ``url`` replaces both https://api.dingtalk.com and
https://oapi.dingtalk.com.

New-style API (``/v1.0/...``): ``oauth2/accessToken``, ``robot/oToMessages/batchSend`` and
``robot/groupMessages/send``; its errors are HTTP 4xx with ``{"code", "requestid", "message"}``, a bad or
expired ``x-acs-dingtalk-access-token`` being HTTP 400 ``InvalidAuthentication``. Old-style robot endpoints:
session webhooks (``/robot/sendBySession``) and custom group robots (``/robot/send``); their errors are HTTP 200
with a non-zero ``errcode``. ``callback_message`` builds the signed robot callback the platform would POST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes import FakePlatform, Request, Response, json_response

SendRoute = Literal["session_webhook", "oto", "group"]

SESSION_GONE = (300001, "session 不存在")  # what an expired or unknown sessionWebhook answers
TOKEN_NOT_EXIST = (300005, "token is not exist")  # custom robot with an unknown access_token
SEND_TOO_FAST = (130101, "send too fast, exceed 20 times per minute")
SIGN_MISMATCH = (310000, "sign not match")
BAD_TIMESTAMP = (310000, "invalid timestamp")
UNSUPPORTED_TYPE = (400105, "不支持的消息类型")
SIGN_WINDOW_MS = 3600 * 1000  # a timestamp further than an hour from now is refused
_ROBOT_TYPES = frozenset({"text", "markdown", "link", "actionCard", "feedCard"})


def sign(secret: str, timestamp_ms: int | str) -> str:
    """``base64(HMAC_SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))`` — the robot callback's ``sign`` header
    (with the appSecret) and, URL-encoded, the custom robot's ``sign`` query parameter (with its secret)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class DingTalkMessage:
    """A message delivered by the robot: ``route`` says how; ``user_id`` is the staff id for ``oto`` and for a
    one-to-one session webhook, "" for groups."""

    route: SendRoute
    user_id: str
    conversation_id: str
    msgtype: str  # msgtype for session webhooks, msgKey for the OpenAPI
    content: str
    title: str
    at_user_ids: tuple[str, ...]
    robot_code: str
    at: float
    body: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class RobotPost:
    """A message accepted by a custom group robot."""

    access_token: str
    msgtype: str
    content: str
    title: str
    at_user_ids: tuple[str, ...]
    at: float
    body: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class _Session:
    conversation_id: str
    user_id: str
    expires_ms: int


class FakeDingTalk(FakePlatform):
    """``staff_ids``, when given, are the members that exist: others come back in ``invalidStaffIdList``."""

    def __init__(
        self,
        *,
        app_key: str = "dingfakeappkey000001",
        app_secret: str = "fake-app-secret",
        robot_code: str = "",
        corp_id: str = "dingfakecorp00000001",
        token_expires_in: int = 7200,
        staff_ids: Iterable[str] | None = None,
        custom_robot_per_minute: int = 20,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.app_key, self.app_secret, self.corp_id = app_key, app_secret, corp_id
        self.robot_code = robot_code or app_key  # an app's robotCode is its AppKey unless set apart
        self.token_expires_in = token_expires_in
        self.staff_ids = set(staff_ids) if staff_ids is not None else None
        self.custom_robot_per_minute = custom_robot_per_minute
        self.clock: Callable[[], float] = time.time  # replace to move time for tokens, sessions and pacing
        self.token_fetches = 0
        self.chatbot_user_id = "$:LWCP_v1:$" + _opaque("robot", self.robot_code)
        self._tokens: dict[str, float] = {}
        self._current = ""
        self._sessions: dict[str, _Session] = {}
        self._robots: dict[str, str | None] = {}  # custom robot access_token -> secret
        self._robot_paced: defaultdict[str, deque[float]] = defaultdict(deque)
        self._sent: list[DingTalkMessage] = []
        self._robot_posts: list[RobotPost] = []
        self._keys = itertools.count(1)
        self.routes = {
            ("POST", "/v1.0/oauth2/accessToken"): self._access_token,
            ("POST", "/v1.0/robot/oToMessages/batchSend"): self._oto_send,
            ("POST", "/v1.0/robot/groupMessages/send"): self._group_send,
            ("POST", "/robot/sendBySession"): self._session_send,
            ("POST", "/robot/send"): self._custom_robot_send,
        }

    # ------------------------------------------------------------------ test-side API
    @property
    def sent(self) -> list[DingTalkMessage]:
        """Messages delivered through a session webhook or the OpenAPI, in order (one per user for oto)."""
        with self.lock:
            return list(self._sent)

    @property
    def robot_posts(self) -> list[RobotPost]:
        with self.lock:
            return list(self._robot_posts)

    def texts_to(self, user: str) -> list[str]:
        return [message.content for message in self.sent if message.user_id == user]

    def texts_in(self, conversation_id: str) -> list[str]:
        return [message.content for message in self.sent if message.conversation_id == conversation_id]

    def api_error_next(
        self,
        n: int,
        status: int = 400,
        code: str = "system.error",
        message: str = "未知的系统错误",
        *,
        path: str | None = None,
    ) -> None:
        """Answer the next ``n`` new-style API requests (``/v1.0/...``) with this HTTP status and error body."""
        self._add_fault(n, lambda _request: _api_error(status, code, message), path, _is_openapi)

    def _speaks_errcode(self, path: str) -> bool:
        return not _is_openapi(path)  # errcode_next() reaches the old-style robot endpoints only

    def session_webhook(
        self, conversation_id: str, expires_in_s: float = 5400, *, user_id: str = ""
    ) -> tuple[str, int]:
        """A sessionWebhook URL for the conversation and its expiry in epoch ms; give ``user_id`` for a
        one-to-one chat so deliveries count as to that user."""
        expires_ms = int((self.clock() + expires_in_s) * 1000)
        token = secrets.token_hex(16)
        with self.lock:
            self._sessions[token] = _Session(conversation_id, user_id, expires_ms)
        return f"{self.url}/robot/sendBySession?session={token}", expires_ms

    def expire_sessions(self) -> None:
        with self.lock:
            now_ms = int(self.clock() * 1000)
            self._sessions = {
                token: _Session(s.conversation_id, s.user_id, min(s.expires_ms, now_ms))
                for token, s in self._sessions.items()
            }

    def add_custom_robot(self, access_token: str, secret: str | None = None) -> str:
        """Register a custom group robot (with 加签 when ``secret`` is given); returns its webhook URL, to which
        the sender appends ``&timestamp=..&sign=..``."""
        with self.lock:
            self._robots[access_token] = secret
        return f"{self.url}/robot/send?access_token={access_token}"

    def expire_tokens(self) -> None:
        """Expire every access token issued so far: the next OpenAPI call with one is refused."""
        with self.lock:
            now = self.clock()
            self._tokens = {token: min(expiry, now) for token, expiry in self._tokens.items()}
            self._current = ""

    def token(self) -> str:
        """A valid access token without counting a fetch."""
        with self.lock:
            return self._issue()

    def callback_message(
        self,
        text: str,
        *,
        sender_staff_id: str,
        conversation_type: Literal["1", "2"] = "1",
        conversation_id: str = "",
        at_bot: bool = True,
        msg_id: str | None = None,
        app_secret: str | None = None,
        timestamp_ms: int | None = None,
        sender_nick: str = "",
        conversation_title: str = "测试群",
        session_expires_in_s: float = 5400,
    ) -> tuple[dict[str, str], dict[str, Any]]:
        """The headers and JSON body DingTalk POSTs to the robot's HTTP callback when someone messages it.

        Its ``sessionWebhook`` is live on this fake. In a group the @mention is removed from the text and the
        space after it stays, as the platform sends it. ``app_secret`` signs (default: this app's secret).
        """
        group = conversation_type == "2"
        conversation_id = conversation_id or (
            "cid" + _opaque("group", self.robot_code) if group else "cid" + _opaque("p2p", sender_staff_id)
        )
        webhook, expires_ms = self.session_webhook(
            conversation_id, session_expires_in_s, user_id="" if group else sender_staff_id
        )
        now_ms = int(self.clock() * 1000)
        timestamp = str(timestamp_ms if timestamp_ms is not None else now_ms)
        body: dict[str, Any] = {
            "msgtype": "text",
            "text": {"content": f" {text}" if group and at_bot else text},
            "msgId": msg_id or f"msg{secrets.token_urlsafe(18)}",
            "createAt": now_ms,
            "conversationType": conversation_type,
            "conversationId": conversation_id,
            "senderId": "$:LWCP_v1:$" + _opaque("user", sender_staff_id),
            "senderNick": sender_nick or sender_staff_id,
            "senderCorpId": self.corp_id,
            "senderStaffId": sender_staff_id,
            "chatbotCorpId": self.corp_id,
            "chatbotUserId": self.chatbot_user_id,
            "robotCode": self.robot_code,
            "isAdmin": False,
            "isInAtList": at_bot,
            "atUsers": [{"dingtalkId": self.chatbot_user_id}] if at_bot else [],
            "sessionWebhook": webhook,
            "sessionWebhookExpiredTime": expires_ms,
        }
        if group:
            body["conversationTitle"] = conversation_title
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "timestamp": timestamp,
            "sign": sign(app_secret if app_secret is not None else self.app_secret, timestamp),
        }
        return headers, body

    def _reset_records(self) -> None:
        self._sent.clear()
        self._robot_posts.clear()
        self._robot_paced.clear()
        self.token_fetches = 0

    # ------------------------------------------------------------------ new-style API
    def _access_token(self, request: Request) -> Response:
        body = _json_object(request)
        if body is None:
            return _api_error(400, "Missingbody", "body is mandatory for this action.")
        if body.get("appKey") != self.app_key or body.get("appSecret") != self.app_secret:
            return _api_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        with self.lock:
            self.token_fetches += 1
            token = self._issue()
            self._tokens[token] = self.clock() + self.token_expires_in  # a repeat fetch renews it
        return json_response({"accessToken": token, "expireIn": self.token_expires_in})

    def _issue(self) -> str:
        now = self.clock()
        if not self._current or self._tokens[self._current] <= now:
            self._current = secrets.token_hex(16)
            self._tokens[self._current] = now + self.token_expires_in
        return self._current

    def _authorized(self, request: Request) -> bool:
        with self.lock:
            expiry = self._tokens.get(request.headers.get("x-acs-dingtalk-access-token", ""))
            return expiry is not None and expiry > self.clock()

    def _oto_send(self, request: Request) -> Response:
        if not self._authorized(request):
            return _api_error(400, "InvalidAuthentication", "不合法的access_token")
        body = _json_object(request)
        if body is None:
            return _api_error(400, "Missingbody", "body is mandatory for this action.")
        users = body.get("userIds")
        param = _msg_param(body)
        if not isinstance(users, list) or not users or param is None:
            return _api_error(400, "InvalidParameter", "userIds, msgKey and msgParam are required")
        invalid = [user for user in users if self.staff_ids is not None and user not in self.staff_ids]
        key = self._process_query_key()
        with self.lock:
            for user in users:
                if user not in invalid:
                    self._sent.append(self._message("oto", str(user), "", body, param))
        return json_response(
            {"processQueryKey": key, "invalidStaffIdList": invalid, "flowControlledStaffIdList": []}
        )

    def _group_send(self, request: Request) -> Response:
        if not self._authorized(request):
            return _api_error(400, "InvalidAuthentication", "不合法的access_token")
        body = _json_object(request)
        if body is None:
            return _api_error(400, "Missingbody", "body is mandatory for this action.")
        conversation = body.get("openConversationId")
        param = _msg_param(body)
        if not conversation or param is None:
            return _api_error(400, "InvalidParameter", "openConversationId, msgKey and msgParam are required")
        with self.lock:
            self._sent.append(self._message("group", "", str(conversation), body, param))
        return json_response({"processQueryKey": self._process_query_key()})

    def _message(
        self, route: SendRoute, user: str, conversation: str, body: dict[str, Any], param: dict[str, Any]
    ) -> DingTalkMessage:
        return DingTalkMessage(
            route=route,
            user_id=user,
            conversation_id=conversation,
            msgtype=str(body.get("msgKey", "")),
            content=str(param.get("content", param.get("text", ""))),
            title=str(param.get("title", "")),
            at_user_ids=(),
            robot_code=str(body.get("robotCode", "")),
            at=time.time(),
            body=body,
        )

    def _process_query_key(self) -> str:
        return f"fakequerykey{next(self._keys):06d}{secrets.token_urlsafe(12)}"

    # ------------------------------------------------------------------ old-style robot endpoints
    def _session_send(self, request: Request) -> Response:
        with self.lock:
            session = self._sessions.get(request.query.get("session", ""))
        if session is None or session.expires_ms <= self.clock() * 1000:
            return _errcode(*SESSION_GONE)
        parsed = _robot_message(request)
        if isinstance(parsed, Response):
            return parsed
        msgtype, content, title, at_users, body = parsed
        message = DingTalkMessage(
            route="session_webhook",
            user_id=session.user_id,
            conversation_id=session.conversation_id,
            msgtype=msgtype,
            content=content,
            title=title,
            at_user_ids=at_users,
            robot_code=self.robot_code,
            at=time.time(),
            body=body,
        )
        with self.lock:
            self._sent.append(message)
        return _errcode(0, "ok")

    def _custom_robot_send(self, request: Request) -> Response:
        token = request.query.get("access_token", "")
        if not token:
            return _errcode(40035, "缺少参数 access_token")
        with self.lock:
            known, secret = token in self._robots, self._robots.get(token)
        if not known:
            return _errcode(*TOKEN_NOT_EXIST)
        if secret is not None:
            timestamp = request.query.get("timestamp", "")
            if not timestamp.isdigit() or abs(int(timestamp) - self.clock() * 1000) > SIGN_WINDOW_MS:
                return _errcode(*BAD_TIMESTAMP)
            if not hmac.compare_digest(request.query.get("sign", ""), sign(secret, timestamp)):
                return _errcode(*SIGN_MISMATCH)
        parsed = _robot_message(request)
        if isinstance(parsed, Response):
            return parsed
        msgtype, content, title, at_users, body = parsed
        with self.lock:
            now, times = self.clock(), self._robot_paced[token]
            while times and times[0] <= now - 60:
                times.popleft()
            if len(times) >= self.custom_robot_per_minute:
                return _errcode(*SEND_TOO_FAST)
            times.append(now)
            self._robot_posts.append(RobotPost(token, msgtype, content, title, at_users, time.time(), body))
        return _errcode(0, "ok")


def _is_openapi(path: str) -> bool:
    return path.startswith("/v1.0/")


def _opaque(kind: str, value: str) -> str:
    """A stable, platform-looking encrypted id."""
    return base64.b64encode(hashlib.sha256(f"{kind}:{value}".encode()).digest()[:16]).decode()


def _api_error(status: int, code: str, message: str) -> Response:
    return json_response({"code": code, "requestid": str(uuid.uuid4()).upper(), "message": message}, status)


def _errcode(errcode: int, errmsg: str) -> Response:
    return json_response({"errcode": errcode, "errmsg": errmsg})


def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _msg_param(body: dict[str, Any]) -> dict[str, Any] | None:
    """``msgParam`` is a JSON object serialized into a string."""
    raw = body.get("msgParam")
    try:
        param = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return param if isinstance(param, dict) and body.get("msgKey") else None


def _robot_message(request: Request) -> tuple[str, str, str, tuple[str, ...], dict[str, Any]] | Response:
    """msgtype, content, title, @ user ids and body of a session-webhook or custom-robot POST, or the refusal."""
    body = _json_object(request)
    if body is None:
        return _errcode(40035, "缺少参数 json")
    msgtype = str(body.get("msgtype", ""))
    payload = body.get(msgtype)
    if msgtype not in _ROBOT_TYPES or not isinstance(payload, dict):
        return _errcode(*UNSUPPORTED_TYPE)
    content = str(payload.get("content", payload.get("text", "")))
    at = body.get("at")
    at_users = tuple(str(user) for user in (at.get("atUserIds") or [] if isinstance(at, dict) else []))
    return msgtype, content, str(payload.get("title", "")), at_users, body
