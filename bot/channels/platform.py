"""What the chat-platform channels (WeCom, DingTalk) share: their app configurations, an access token
shared by every process, pacing under a per-user limit, and texts cut to the platform's size limit.

Apps come from the ``TRIAGE_WECOM_*`` / ``TRIAGE_DINGTALK_*`` settings (one app each) and from the
``channels.yml`` file (``TRIAGE_CHANNELS_FILE``) for several::

    wecom:
      - name: finance            # the callback URL is /channels/wecom/finance/callback
        corp_id: ww0123456789abcdef
        agent_id: 1000002
        token: ...
        aes_key: ...             # the EncodingAESKey
        secret: ...
        tenant: acme             # optional: the tenant and VIP tier its users are mapped to
        vip_tier: 2
    dingtalk:
      - name: default
        app_key: ding...
        app_secret: ...
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from bot.errors import ConfigError
from bot.settings import Settings
from bot.store.keys import Keys
from bot.vocabulary import MAX_VIP_TIER

logger = logging.getLogger(__name__)

TOKEN_MARGIN_S = 300  # a token is refreshed this long before the platform says it expires
LOCK_MS = 10_000


class WeComApp(BaseModel):
    """One WeCom self-built app. Secrets are ``SecretStr``: they never appear in a repr or a log line."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    corp_id: str = Field(min_length=1)
    agent_id: int
    token: SecretStr
    aes_key: SecretStr
    secret: SecretStr
    api_base: str = "https://qyapi.weixin.qq.com"
    tenant: str = ""
    vip_tier: int = Field(0, ge=0, le=MAX_VIP_TIER)


class DingTalkApp(BaseModel):
    """One DingTalk robot app (its AppKey is also the robot code)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    app_key: str = Field(min_length=1)
    app_secret: SecretStr
    robot_code: str = ""
    api_base: str = "https://api.dingtalk.com"
    session_webhook_prefix: str = "https://oapi.dingtalk.com/"
    tenant: str = ""
    vip_tier: int = Field(0, ge=0, le=MAX_VIP_TIER)

    @property
    def robot(self) -> str:
        return self.robot_code or self.app_key


class ChannelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wecom: list[WeComApp] = []
    dingtalk: list[DingTalkApp] = []


def load_apps(settings: Settings) -> ChannelsFile:
    """The configured apps: those of ``channels_file`` (when it exists) and the one of the settings."""
    apps = _read_file(settings.channels_file)
    wecom, dingtalk = list(apps.wecom), list(apps.dingtalk)
    if settings.wecom_corp_id or settings.wecom_token:
        missing = [
            f"TRIAGE_WECOM_{name.upper()}"
            for name in ("token", "aes_key", "corp_id", "agent_id", "secret")
            if getattr(settings, f"wecom_{name}") in (None, "")
        ]
        if missing:
            raise ConfigError(f"the WeCom app is half configured: set {', '.join(missing)} too")
        assert settings.wecom_token and settings.wecom_aes_key and settings.wecom_secret
        wecom.append(
            WeComApp(
                corp_id=str(settings.wecom_corp_id),
                agent_id=int(settings.wecom_agent_id or 0),
                token=settings.wecom_token,
                aes_key=settings.wecom_aes_key,
                secret=settings.wecom_secret,
                api_base=settings.wecom_api_base,
                tenant=settings.wecom_tenant or "",
                vip_tier=settings.wecom_vip_tier,
            )
        )
    if settings.dingtalk_app_key or settings.dingtalk_app_secret:
        if not (settings.dingtalk_app_key and settings.dingtalk_app_secret):
            raise ConfigError(
                "the DingTalk app needs both TRIAGE_DINGTALK_APP_KEY and TRIAGE_DINGTALK_APP_SECRET"
            )
        dingtalk.append(
            DingTalkApp(
                app_key=settings.dingtalk_app_key,
                app_secret=settings.dingtalk_app_secret,
                api_base=settings.dingtalk_api_base,
                session_webhook_prefix=settings.dingtalk_session_webhook_prefix,
                tenant=settings.dingtalk_tenant or "",
                vip_tier=settings.dingtalk_vip_tier,
            )
        )
    for kind, names in (("wecom", [a.name for a in wecom]), ("dingtalk", [a.name for a in dingtalk])):
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ConfigError(f"two {kind} apps are named {', '.join(doubled)}: give each a distinct name")
    return ChannelsFile(wecom=wecom, dingtalk=dingtalk)


def _read_file(path: Path) -> ChannelsFile:
    if not path.exists():
        return ChannelsFile()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ChannelsFile.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


# --------------------------------------------------------------------------- access tokens
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TokenCache:
    """A platform access token kept in Redis for every process, refreshed by one process at a time.

    ``fetch`` asks the platform for a new token and returns it with its lifetime in seconds. A token is kept
    until ``TOKEN_MARGIN_S`` before it expires; ``refresh(stale)`` after the platform refused ``stale`` gets
    a new one unless another process already did.
    """

    def __init__(
        self, redis: Any, keys: Keys, channel: str, app: str, fetch: Callable[[], Awaitable[tuple[str, int]]]
    ) -> None:
        self.redis = redis
        self.key = keys.platform_token(channel, app)
        self.lock = keys.platform_token_lock(channel, app)
        self.fetch = fetch
        self._delete_if = redis.register_script(_DELETE_IF)
        self.fetches = 0

    async def get(self) -> str:
        token: str | None = await self.redis.get(self.key)
        return token or await self.refresh()

    async def refresh(self, stale: str | None = None) -> str:
        if stale is not None:
            await self._delete_if(keys=[self.key], args=[stale])
        owner = f"{time.monotonic_ns()}"
        deadline = time.monotonic() + LOCK_MS / 1000
        while True:
            current: str | None = await self.redis.get(self.key)
            if current and current != stale:
                return current
            if await self.redis.set(self.lock, owner, nx=True, px=LOCK_MS):
                try:
                    token, lifetime = await self.fetch()
                    self.fetches += 1
                    await self.redis.set(self.key, token, ex=max(60, int(lifetime) - TOKEN_MARGIN_S))
                    return token
                finally:
                    await self._delete_if(keys=[self.lock], args=[owner])
            if time.monotonic() > deadline:
                raise TimeoutError(f"no access token after {LOCK_MS / 1000:.0f} s: {self.key} stays locked")
            await asyncio.sleep(0.05)


# --------------------------------------------------------------------------------- pacing
_PACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class Pacer:
    """At most ``limit`` sends in any ``window_s`` to one key, across processes (a sliding window on Redis's
    clock): a send over the limit waits until the oldest one leaves the window. The platforms silently drop
    what exceeds their own limit, so the excess must never be sent."""

    def __init__(self, redis: Any, limit: int, window_s: float = 60.0) -> None:
        self.limit, self.window_ms = limit, int(window_s * 1000)
        self._pace = redis.register_script(_PACE)
        self.waited_s = 0.0

    async def wait(self, key: str) -> None:
        while True:
            wait_ms = int(
                await self._pace(keys=[key], args=[self.limit, self.window_ms, secrets.token_hex(6)])
            )
            if wait_ms <= 0:
                return
            logger.info("pacing %s: waiting %.1f s", key, wait_ms / 1000)
            self.waited_s += wait_ms / 1000
            await asyncio.sleep(wait_ms / 1000 + 0.01)


class PartLedger:
    """Which parts of a split or merged delivery already reached the platform, for ten minutes, across
    processes: a retry after a later part failed, or a takeover after a crash, skips them."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis, self.keys = redis, keys

    @staticmethod
    def digest(seqs: tuple[int, int], index: int, text: str) -> str:
        return hashlib.sha256(f"{seqs[0]}:{seqs[1]}:{index}:{text}".encode()).hexdigest()[:20]

    async def sent(self, cid: str, digest: str) -> bool:
        return bool(await self.redis.exists(self.keys.sent_part(cid, digest)))

    async def mark(self, cid: str, digest: str) -> None:
        await self.redis.set(self.keys.sent_part(cid, digest), "1", ex=600)

    async def send_parts(
        self, cid: str, seqs: tuple[int, int], parts: list[str], send: Callable[[str], Awaitable[None]]
    ) -> None:
        for index, part in enumerate(parts):
            digest = self.digest(seqs, index, part)
            if await self.sent(cid, digest):
                continue
            await send(part)
            await self.mark(cid, digest)


# ------------------------------------------------------------------------------ lengths
def split_text(text: str, max_bytes: int) -> list[str]:
    """``text`` in parts of at most ``max_bytes`` UTF-8 bytes, cut at paragraph, line or sentence ends
    where possible, never inside a character."""
    if len(text.encode()) <= max_bytes:
        return [text]
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, max_bytes):
        if current and len((current + piece).encode()) > max_bytes:
            parts.append(current.rstrip("\n"))
            current = ""
        current += piece
    if current.strip():
        parts.append(current.rstrip("\n"))
    return [p for p in parts if p]


def _pieces(text: str, max_bytes: int) -> Iterator[str]:
    """Lines (with their newline); a line too long alone is cut at sentence ends, then at characters."""
    for line in text.splitlines(keepends=True):
        if len(line.encode()) <= max_bytes:
            yield line
            continue
        chunk = ""
        for char in line:
            if len((chunk + char).encode()) > max_bytes:
                yield chunk
                chunk = ""
            chunk += char
            if char in "。！？.!?" and len(chunk.encode()) > max_bytes // 2:
                yield chunk
                chunk = ""
        if chunk:
            yield chunk


def fit(text: str, max_bytes: int, max_parts: int, link: str | None, more: str) -> list[str]:
    """``text`` split to the size limit; beyond ``max_parts`` the rest is replaced by ``more`` and the link
    to the full article (or cut, when there is no link)."""
    parts = split_text(text, max_bytes)
    if len(parts) <= max_parts:
        return parts
    tail = f"\n…\n{more} {link}" if link else "\n…"
    kept = parts[:max_parts]
    last = kept[-1]
    while last and len((last + tail).encode()) > max_bytes:
        last = last[:-1]
    kept[-1] = last + tail
    return kept
