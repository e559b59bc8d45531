"""WeCom (企业微信) self-built apps: callbacks in, the active send API out.

In: the callback route (bot/app/routes_platforms.py) verifies and decrypts the POST
(:mod:`bot.channels.wecom_crypto`), :meth:`WeComChannel.receive` turns the message into a
:class:`~bot.message.Message`, and the inbox (:mod:`bot.inbox`) stores it before the callback is answered:
WeCom retries a callback not answered in 5 s, so the answer never waits for the engine.

Out: the outbox (:mod:`bot.outbox`) hands this channel each transcript event the user must get;
:meth:`WeComChannel.deliver_many` merges a burst into as few messages as fit WeCom's 2,048-byte limit,
waits under the per-member limit (30 a minute, where WeCom silently drops the excess) and calls
``/cgi-bin/message/send`` with the app's access token (:class:`~bot.channels.platform.TokenCache`).
Transient failures raise a retryable :class:`~bot.channels.base.DeliveryError`; the outbox retries with
backoff and, after the last try, records the failure in the transcript where the agent sees it.

A passive (encrypted, in-response) reply is used only where the reply is known when the callback arrives and
nothing is stored for it (a welcome on ``enter_agent``, an unsupported message type): a passive reply is
lost when WeCom gives up waiting, so everything the transcript holds goes through the send API.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.channels.base import DeliveryError, numbered_text
from bot.channels.outbound import Outbound, render, text
from bot.channels.platform import Pacer, PartLedger, TokenCache, WeComApp, fit
from bot.channels.wecom_crypto import WeComCrypto
from bot.errors import Forbidden, InputError
from bot.message import Message
from bot.store.keys import Keys
from bot.vocabulary import Channel as ChannelName

logger = logging.getLogger(__name__)

MAX_BYTES = 2048  # message/send text content
MAX_PARTS = 3  # a longer answer is cut with a link to the full article
PER_MEMBER_PER_MINUTE = 25  # WeCom drops past 30 a minute per member; keep a margin
TOKEN_ERRORS = frozenset({40001, 40014, 42001})  # invalid secret/token, token expired: refresh and retry
RETRYABLE_ERRORS = frozenset({-1, 45009, 45033, 45047})  # busy, frequency limits
MEDIA_TYPES = frozenset({"image", "voice", "video", "file"})
EVENTS_WELCOMED = frozenset({"enter_agent", "subscribe"})


def conversation_id(app: WeComApp, user: str) -> str:
    """One conversation per (corp, app, member): hashed so ids do not reveal the corp or the user."""
    digest = hashlib.sha256(f"{app.corp_id}\x00{app.agent_id}\x00{user}".encode()).hexdigest()[:24]
    return f"wecom-{digest}"


@dataclass(frozen=True)
class Media:
    content: bytes
    content_type: str
    filename: str


class WeComChannel:
    """All configured WeCom apps; a conversation names its app in its ``app`` field."""

    name: str = ChannelName.WECOM
    push = True
    inline = False
    merge_bytes = MAX_BYTES

    def __init__(self, apps: Sequence[WeComApp], redis: Any, keys: Keys, timeout: float = 10.0) -> None:
        self.apps = {app.name: app for app in apps}
        self.crypto = {
            app.name: WeComCrypto(app.token.get_secret_value(), app.aes_key.get_secret_value(), app.corp_id)
            for app in apps
        }
        self.tokens = {
            app.name: TokenCache(redis, keys, self.name, app.name, self._fetcher(app)) for app in apps
        }
        self.keys = keys
        self.pacer = Pacer(redis, PER_MEMBER_PER_MINUTE)
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self.ledger = PartLedger(redis, keys)

    # ------------------------------------------------------------------------- apps
    def app(self, name: str) -> WeComApp:
        try:
            return self.apps[name]
        except KeyError:
            raise Forbidden(f"no WeCom app named {name!r} is configured") from None

    def app_for(self, corp_id: str, agent_id: str) -> WeComApp:
        """The app a callback's plaintext ``ToUserName`` and ``AgentID`` name."""
        for app in self.apps.values():
            if app.corp_id == corp_id and str(app.agent_id) == agent_id:
                return app
        raise Forbidden("the callback is for a WeCom corp/app this deployment does not serve")

    # ---------------------------------------------------------------------- inbound
    def receive(self, payload: Mapping[str, Any]) -> Message:
        """A decrypted callback message (its XML fields) plus ``app``, as a Message. Text messages carry
        their content; media messages carry ``media_id`` and ``msg_type`` in the metadata."""
        app = self.app(str(payload.get("app") or ""))
        user = str(payload.get("FromUserName") or "")
        msg_type = str(payload.get("MsgType") or "")
        msg_id = str(payload.get("MsgId") or "")
        if not user or not msg_type:
            raise InputError("a WeCom message needs FromUserName and MsgType")
        if msg_type != "event" and not msg_id:
            raise InputError("a WeCom message needs a MsgId")
        metadata: dict[str, Any] = {"app": app.name, "msg_type": msg_type, "corp_id": app.corp_id}
        content = ""
        if msg_type == "text":
            content = str(payload.get("Content") or "")
        elif msg_type in MEDIA_TYPES:
            metadata["media_id"] = str(payload.get("MediaId") or "")
            metadata["filename"] = str(payload.get("FileName") or "")
            metadata["format"] = str(payload.get("Format") or "")
        elif msg_type == "event":
            metadata["event"] = str(payload.get("Event") or "")
            msg_id = msg_id or f"event:{user}:{payload.get('CreateTime', '')}:{metadata['event']}"
        return Message(self.name, user, conversation_id(app, user), content, msg_id, metadata)

    def passive_reply(self, app: WeComApp, user: str, content: str, timestamp: str, nonce: str) -> str:
        """An encrypted passive text reply (the body of the callback's response)."""
        from bot.channels.wecom_crypto import text_reply_xml

        plaintext = text_reply_xml(user, app.corp_id, content, int(time.time()))
        return self.crypto[app.name].reply(plaintext, timestamp, nonce)

    # --------------------------------------------------------------------- outbound
    async def deliver(self, conversation: Mapping[str, str], event: Mapping[str, Any]) -> None:
        await self.deliver_many(conversation, [event])

    async def deliver_many(
        self, conversation: Mapping[str, str], events: Sequence[Mapping[str, Any]]
    ) -> None:
        """Send ``events`` (in order) as few messages as the size limit allows."""
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
        user = conversation.get("user", "")
        await self.pacer.wait(self.keys.pace(self.name, app.name, user))
        body = {"touser": user, "msgtype": "text", "agentid": app.agent_id, "text": {"content": content}}
        tokens = self.tokens[app.name]
        token = await self._token(tokens)
        for attempt in range(2):
            reply = await self._call("POST", app, "/cgi-bin/message/send", token, json=body)
            errcode = int(reply.get("errcode", 0))
            if errcode == 0:
                if reply.get("invaliduser"):
                    raise DeliveryError(
                        self.name, f"WeCom refused user {user!r} (invaliduser)", retryable=False
                    )
                return
            if errcode in TOKEN_ERRORS and attempt == 0:
                token = await self._token(tokens, stale=token)
                continue
            raise DeliveryError(
                self.name,
                f"message/send answered errcode {errcode}: {str(reply.get('errmsg', ''))[:200]}",
                retryable=errcode in RETRYABLE_ERRORS or errcode in TOKEN_ERRORS,
            )

    async def fetch_media(self, app_name: str, media_id: str, max_bytes: int) -> Media:
        """A user's image, voice, video or file (``/cgi-bin/media/get``); raises DeliveryError."""
        app = self.app(app_name)
        tokens = self.tokens[app.name]
        token = await self._token(tokens)
        for attempt in range(2):
            client = self._http()
            url = f"{app.api_base}/cgi-bin/media/get"
            try:
                async with client.stream(
                    "GET", url, params={"access_token": token, "media_id": media_id}
                ) as response:
                    kind = response.headers.get("content-type", "application/octet-stream")
                    if response.status_code >= 300:
                        raise DeliveryError(self.name, f"media/get answered HTTP {response.status_code}")
                    if kind.startswith(("application/json", "text/plain")):
                        head = bytearray()
                        async for chunk in response.aiter_bytes():
                            head += chunk
                            if len(head) > 65_536:
                                break
                        reply = _json(bytes(head))
                        errcode = int(reply.get("errcode", -1))
                        if errcode in TOKEN_ERRORS and attempt == 0:
                            token = await self._token(tokens, stale=token)
                            continue
                        raise DeliveryError(
                            self.name, f"media/get answered errcode {errcode}", errcode in RETRYABLE_ERRORS
                        )
                    content = bytearray()
                    async for chunk in response.aiter_bytes():
                        content += chunk
                        if len(content) > max_bytes:
                            raise DeliveryError(
                                self.name, f"the file is over {max_bytes:,} bytes", retryable=False
                            )
                    filename = _filename(response.headers.get("content-disposition", "")) or media_id
                    return Media(bytes(content), kind.split(";")[0], filename)
            except httpx.HTTPError as exc:
                raise DeliveryError(self.name, f"media/get failed: {type(exc).__name__}") from exc
        raise DeliveryError(self.name, "media/get kept refusing the access token")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---------------------------------------------------------------------- helpers
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        return self._client

    async def _token(self, tokens: TokenCache, stale: str | None = None) -> str:
        try:
            return await (tokens.refresh(stale) if stale else tokens.get())
        except DeliveryError:
            raise
        except (TimeoutError, httpx.HTTPError) as exc:
            raise DeliveryError(self.name, f"no access token: {type(exc).__name__}") from exc

    def _fetcher(self, app: WeComApp) -> Any:
        async def fetch() -> tuple[str, int]:
            params = {"corpid": app.corp_id, "corpsecret": app.secret.get_secret_value()}
            try:
                response = await self._http().get(f"{app.api_base}/cgi-bin/gettoken", params=params)
            except httpx.HTTPError as exc:
                raise DeliveryError(self.name, f"gettoken failed: {type(exc).__name__}") from exc
            reply = _json(response.content) if response.status_code < 300 else {}
            if response.status_code >= 300 or int(reply.get("errcode", -1)) != 0:
                errcode = reply.get("errcode", f"HTTP {response.status_code}")
                raise DeliveryError(
                    self.name,
                    f"gettoken answered {errcode} {str(reply.get('errmsg', ''))[:120]}: "
                    "check TRIAGE_WECOM_CORP_ID and TRIAGE_WECOM_SECRET",
                    retryable=errcode in RETRYABLE_ERRORS or response.status_code >= 500,
                )
            return str(reply["access_token"]), int(reply.get("expires_in") or 7200)

        return fetch

    async def _call(self, method: str, app: WeComApp, path: str, token: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http().request(
                method, f"{app.api_base}{path}", params={"access_token": token}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(self.name, f"{path} failed: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise DeliveryError(
                self.name,
                f"{path} answered HTTP {response.status_code}",
                retryable=response.status_code >= 500,
            )
        return _json(response.content)


def merge(rendered: Sequence[Outbound], script: str, max_bytes: int, max_parts: int) -> list[str]:
    """Consecutive outbound messages as few texts as fit ``max_bytes`` each; buttons as a numbered list;
    a KB answer too long for ``max_parts`` messages is cut with a link to its article."""
    texts: list[str] = []
    for out in rendered:
        body = numbered_text(out.text, out.buttons) if out.buttons else out.text
        # Only a KB answer (it has its article's link) is cut; an agent's long reply is sent whole.
        limit = max_parts if out.link else 1_000
        for part in fit(body, max_bytes, limit, out.link, text("read_more", script)):
            if texts and len((texts[-1] + "\n\n" + part).encode()) <= max_bytes:
                texts[-1] += "\n\n" + part
            else:
                texts.append(part)
    return texts


def _json(content: bytes) -> dict[str, Any]:
    import json

    try:
        value = json.loads(content)
    except ValueError:
        return {"errcode": -1, "errmsg": "the answer is not JSON"}
    return value if isinstance(value, dict) else {"errcode": -1, "errmsg": "the answer is not an object"}


_FILENAME = re.compile(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", re.IGNORECASE)


def _filename(disposition: str) -> str:
    found = _FILENAME.search(disposition)
    return urllib.parse.unquote(found.group(1)).strip() if found else ""
