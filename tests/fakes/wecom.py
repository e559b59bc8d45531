"""A fake WeCom (企业微信) server API; its ``url`` replaces https://qyapi.weixin.qq.com.

Speaks ``GET /cgi-bin/gettoken``, ``POST /cgi-bin/message/send``, ``GET /cgi-bin/media/get`` and the group
robot's ``POST /cgi-bin/webhook/send``. Like the platform, every error is HTTP 200 with a non-zero ``errcode``
and an ``errmsg`` carrying a hint suffix (clients must branch on the code). App messages over the per-member
pace (30/min, 1000/h) are answered ``errcode 0`` and silently dropped, as the platform does: they land in
``dropped``, not ``sent``.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.fakes import FakePlatform, Request, Response, json_response

# errcode -> errmsg, as the platform words them (its global error code table and answers seen from it)
ERRMSG: dict[int, str] = {
    -1: "system busy",
    0: "ok",
    40001: "invalid credential",
    40007: "invalid media_id",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40056: "invalid agentid",
    41001: "access_token missing",
    41002: "corpid missing",
    41004: "corpsecret missing",
    42001: "access_token expired",
    44004: "empty content",
    45002: "content size out of limit",
    45009: "api freq out of limit",
    47001: "data format error",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
}

APP_CONTENT_LIMIT = 2048  # bytes of text.content / markdown.content; the API doc says longer text is cut
ROBOT_LIMITS = {"text": 2048, "markdown": 4096}  # bytes; over them the robot answers 40058
_CONTENT_FIELD = {"text": "content", "markdown": "content", "textcard": "description"}
_MEDIA_TYPES = frozenset({"image", "voice", "video", "file"})
_ROBOT_TYPES = frozenset(
    {"text", "markdown", "markdown_v2", "image", "news", "file", "voice", "template_card"}
)


@dataclass(frozen=True)
class WeComMessage:
    """One app message to one member (a ``touser`` of ``a|b`` is recorded once per member)."""

    touser: str
    agentid: int
    msgtype: str
    content: str  # text/markdown content, textcard description, or the media_id of a media message
    at: float
    msgid: str
    body: dict[str, Any] = field(repr=False)
    truncated: bool = False


@dataclass(frozen=True)
class RobotMessage:
    key: str
    msgtype: str
    content: str
    at: float
    body: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class Media:
    content: bytes
    content_type: str
    filename: str


class FakeWeCom(FakePlatform):
    """``oversize="truncate"`` cuts app text over 2048 bytes as the API documents (the entry is marked
    ``truncated``); ``"reject"`` answers 45002 instead. ``users``, when given, are the members in the app's
    visible range: others come back in ``invaliduser``, and 81013 when none is left."""

    def __init__(
        self,
        *,
        corpid: str = "wwfakecorp00000001",
        corpsecret: str = "fake-corp-secret",
        agentid: int = 1000002,
        token_expires_in: int = 7200,
        users: Iterable[str] | None = None,
        oversize: Literal["truncate", "reject"] = "truncate",
        per_user_per_minute: int = 30,
        per_user_per_hour: int = 1000,
        robot_per_minute: int = 20,
        port: int = 0,
    ) -> None:
        super().__init__(port=port)
        self.corpid, self.corpsecret, self.agentid = corpid, corpsecret, agentid
        self.token_expires_in = token_expires_in  # what the next new token is issued with
        self.users = set(users) if users is not None else None
        self.oversize = oversize
        self.per_user_per_minute, self.per_user_per_hour = per_user_per_minute, per_user_per_hour
        self.robot_per_minute = robot_per_minute
        self.clock: Callable[[], float] = time.time  # replace to move time for tokens and pacing
        self.token_fetches = 0
        self._tokens: dict[str, float] = {}  # token -> expiry; expired ones stay known (42001, not 40014)
        self._current = ""
        self._sent: list[WeComMessage] = []
        self._dropped: list[WeComMessage] = []
        self._robot: list[RobotMessage] = []
        self._paced: defaultdict[tuple[int, str], deque[float]] = defaultdict(deque)
        self._robot_paced: defaultdict[str, deque[float]] = defaultdict(deque)
        self._media: dict[str, Media] = {}
        self._robot_keys: set[str] = set()
        self._ids = itertools.count(1)
        self.routes = {
            ("GET", "/cgi-bin/gettoken"): self._gettoken,
            ("POST", "/cgi-bin/message/send"): self._message_send,
            ("GET", "/cgi-bin/media/get"): self._media_get,
            ("POST", "/cgi-bin/webhook/send"): self._webhook_send,
        }

    # ------------------------------------------------------------------ test-side API
    @property
    def sent(self) -> list[WeComMessage]:
        """Accepted app messages, one per member, in order."""
        with self.lock:
            return list(self._sent)

    @property
    def dropped(self) -> list[WeComMessage]:
        """App messages answered ``errcode 0`` but dropped for exceeding the per-member pace."""
        with self.lock:
            return list(self._dropped)

    @property
    def robot_messages(self) -> list[RobotMessage]:
        with self.lock:
            return list(self._robot)

    def texts_to(self, user: str) -> list[str]:
        return [message.content for message in self.sent if message.touser == user]

    def add_media(
        self,
        media_id: str,
        content: bytes,
        content_type: str = "application/octet-stream",
        filename: str = "",
    ) -> None:
        """Make ``media_id`` downloadable through ``/cgi-bin/media/get``."""
        with self.lock:
            self._media[media_id] = Media(content, content_type, filename or media_id)

    def add_robot(self, key: str) -> str:
        """Register a group robot and return its webhook URL."""
        with self.lock:
            self._robot_keys.add(key)
        return f"{self.url}/cgi-bin/webhook/send?key={key}"

    def expire_tokens(self) -> None:
        """Expire every token issued so far: the next call with one gets 42001, the next gettoken a new one."""
        with self.lock:
            now = self.clock()
            self._tokens = {token: min(expiry, now) for token, expiry in self._tokens.items()}
            self._current = ""

    def token(self) -> str:
        """A valid token without counting a fetch (for tests that only exercise sending)."""
        with self.lock:
            return self._issue()

    def _reset_records(self) -> None:
        self._sent.clear()
        self._dropped.clear()
        self._robot.clear()
        self._paced.clear()
        self._robot_paced.clear()
        self.token_fetches = 0

    # ------------------------------------------------------------------ routes
    def _gettoken(self, request: Request) -> Response:
        corpid, secret = request.query.get("corpid", ""), request.query.get("corpsecret", "")
        if not corpid:
            return _error(41002)
        if corpid != self.corpid:
            return _error(40013)
        if not secret:
            return _error(41004)
        if secret != self.corpsecret:
            return _error(40001)
        with self.lock:
            self.token_fetches += 1
            token = self._issue()
            left = max(1, round(self._tokens[token] - self.clock()))
        return json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": left})

    def _issue(self) -> str:
        """The current token while it is valid (the platform repeats it), else a new one."""
        now = self.clock()
        if not self._current or self._tokens[self._current] <= now:
            self._current = secrets.token_urlsafe(48)
            self._tokens[self._current] = now + self.token_expires_in
        return self._current

    def _token_error(self, request: Request) -> Response | None:
        token = request.query.get("access_token", "")
        if not token:
            return _error(41001)
        with self.lock:
            expiry = self._tokens.get(token)
            if expiry is None:
                return _error(40014)
            if expiry <= self.clock():
                return _error(42001)
        return None

    def _message_send(self, request: Request) -> Response:
        if (refused := self._token_error(request)) is not None:
            return refused
        try:
            body = request.json()
            msgtype = str(body.get("msgtype", ""))
        except (ValueError, AttributeError):
            return _error(47001)
        if body.get("agentid") != self.agentid:
            return _error(40056)
        payload = body.get(msgtype)
        if (msgtype not in _CONTENT_FIELD and msgtype not in _MEDIA_TYPES) or not isinstance(payload, dict):
            return _error(40008)
        content, truncated = str(payload.get(_CONTENT_FIELD.get(msgtype, "media_id"), "")), False
        if not content:
            return _error(40007 if msgtype in _MEDIA_TYPES else 44004)
        if msgtype in ("text", "markdown") and len(encoded := content.encode()) > APP_CONTENT_LIMIT:
            if self.oversize == "reject":
                return _error(45002)
            content, truncated = encoded[:APP_CONTENT_LIMIT].decode(errors="ignore"), True
        members = [user for user in str(body.get("touser", "")).split("|") if user]
        invalid = [
            user for user in members if self.users is not None and user != "@all" and user not in self.users
        ]
        valid = [user for user in members if user not in invalid]
        if not valid:
            return _error(81013, invaliduser="|".join(invalid).lower())
        msgid = f"fakemsg{next(self._ids):08d}{secrets.token_hex(8)}"
        with self.lock:
            now = self.clock()
            for user in valid:
                message = WeComMessage(
                    user, self.agentid, msgtype, content, time.time(), msgid, body, truncated
                )
                if self._paced_out(self._paced[(self.agentid, user)], now):
                    self._dropped.append(message)
                else:
                    self._sent.append(message)
        return json_response(
            {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid).lower(), "msgid": msgid}
        )

    def _paced_out(self, times: deque[float], now: float) -> bool:
        """True when one more message to this member would pass the pace; else counts it."""
        while times and times[0] <= now - 3600:
            times.popleft()
        last_minute = sum(1 for at in times if at > now - 60)
        if last_minute >= self.per_user_per_minute or len(times) >= self.per_user_per_hour:
            return True
        times.append(now)
        return False

    def _media_get(self, request: Request) -> Response:
        if (refused := self._token_error(request)) is not None:
            return refused
        with self.lock:
            media = self._media.get(request.query.get("media_id", ""))
        if media is None:
            return _error(40007)
        return Response(
            200,
            media.content,
            content_type=media.content_type,
            headers=(
                ("Content-disposition", f'attachment; filename="{media.filename}"'),
                ("Cache-Control", "no-cache, must-revalidate"),
            ),
        )

    def _webhook_send(self, request: Request) -> Response:
        key = request.query.get("key", "")
        with self.lock:
            known = key in self._robot_keys
        if not known:
            return _error(93000)
        try:
            body = request.json()
            msgtype = str(body.get("msgtype", ""))
        except (ValueError, AttributeError):
            return _error(47001)
        payload = body.get(msgtype)
        if msgtype not in _ROBOT_TYPES or not isinstance(payload, dict):
            return _error(40008)
        content = str(payload.get("content", ""))
        if msgtype in ROBOT_LIMITS:
            if not content:
                return _error(44004)
            if len(content.encode()) > (limit := ROBOT_LIMITS[msgtype]):
                return _error(
                    40058, errmsg=f"{msgtype}.content exceed max length {limit}. invalid Request Parameter"
                )
        with self.lock:
            now, times = self.clock(), self._robot_paced[key]
            while times and times[0] <= now - 60:
                times.popleft()
            if len(times) >= self.robot_per_minute:
                return _error(45009)
            times.append(now)
            self._robot.append(RobotMessage(key, msgtype, content, time.time(), body))
        return json_response({"errcode": 0, "errmsg": "ok"})


def _error(errcode: int, *, errmsg: str = "", **extra: Any) -> Response:
    """The platform's error answer: HTTP 200, the code, and a message with a hint suffix."""
    hint = f"{int(time.time() * 1000)}{secrets.randbelow(10**9):09d}"
    message = (
        f"{errmsg or ERRMSG[errcode]}, hint: [{hint}], from ip: 127.0.0.1, "
        f"more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"
    )
    return json_response({"errcode": errcode, "errmsg": message, **extra})
