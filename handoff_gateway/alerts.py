"""On-call alerts outside the console: a WeCom group robot and/or a DingTalk custom robot (docs/gateway.md).

Urgent handoffs, tickets opened with nobody on duty and SLA escalations post a short markdown message. Each
robot takes 20 messages a minute and silently drops the rest, so every app process counts what it posts in
one Redis counter per robot (a fixed one-minute window) and drops what is over the limit itself, with a
warning once per window and a Prometheus counter.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr
from redis.exceptions import RedisError

from bot import logsafe
from bot.contracts.conversation import Conversation
from bot.logsafe import redact
from bot.settings import Settings
from bot.store.keys import Keys
from bot.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

Platform = Literal["wecom", "dingtalk"]
WINDOW_SECONDS = 60
MAX_CONTENT_BYTES = 4000  # WeCom's markdown content takes 4096 bytes; DingTalk's robots take more


@dataclass(frozen=True)
class Alert:
    title: str
    text: str  # markdown, one fact per line


@dataclass(frozen=True)
class Robot:
    """One group robot. ``name`` labels metrics and logs and keys its rate counter on Redis."""

    name: str
    platform: Platform
    url: str
    secret: SecretStr | None = None  # DingTalk 加签

    @classmethod
    def guess(cls, name: str, url: str, dingtalk_secret: SecretStr | None = None) -> Robot:
        """A URL of unknown platform (``TRIAGE_ALERT_WEBHOOK``): DingTalk by its host, else WeCom."""
        host = urllib.parse.urlsplit(url).hostname or ""
        if "dingtalk" in host or host.startswith("oapi."):
            return cls(name, "dingtalk", url, dingtalk_secret)
        return cls(name, "wecom", url)

    @property
    def redacted(self) -> str:
        """The URL without its query (the WeCom key, the DingTalk access token): safe to log."""
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

    def payload(self, alert: Alert) -> dict[str, Any]:
        if self.platform == "dingtalk":
            text = _clip(f"### {alert.title}\n{alert.text}")
            return {"msgtype": "markdown", "markdown": {"title": alert.title, "text": text}}
        return {"msgtype": "markdown", "markdown": {"content": _clip(f"**{alert.title}**\n{alert.text}")}}

    def request_url(self, now_ms: int | None = None) -> str:
        """The URL to POST to: a signed DingTalk robot gets ``&timestamp=<ms>&sign=<..>`` (fresh each time;
        DingTalk refuses a timestamp more than an hour off)."""
        if self.platform != "dingtalk" or self.secret is None:
            return self.url
        timestamp = int(time.time() * 1000) if now_ms is None else now_ms
        sign = dingtalk_sign(self.secret.get_secret_value(), timestamp)
        joiner = "&" if urllib.parse.urlsplit(self.url).query else "?"
        return f"{self.url}{joiner}timestamp={timestamp}&sign={urllib.parse.quote_plus(sign)}"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """``base64(HMAC_SHA256(key=secret, msg=timestamp + "\\n" + secret))``, before URL-encoding."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def robots_from(settings: Settings) -> tuple[Robot, ...]:
    """The configured robots. ``TRIAGE_ALERT_WEBHOOK`` still works; it is skipped when it names a robot that
    the platform-specific setting names too, and takes the DingTalk secret when it is the only DingTalk robot."""
    robots: list[Robot] = []
    if settings.alert_wecom_webhook:
        robots.append(Robot("wecom", "wecom", settings.alert_wecom_webhook))
    if settings.alert_dingtalk_webhook:
        robots.append(
            Robot("dingtalk", "dingtalk", settings.alert_dingtalk_webhook, settings.alert_dingtalk_secret)
        )
    legacy = settings.alert_webhook
    if legacy and all(r.url != legacy for r in robots):
        secret = None if settings.alert_dingtalk_webhook else settings.alert_dingtalk_secret
        robots.append(Robot.guess("webhook", legacy, secret))
    return tuple(robots)


class Alerts:
    """Posts alerts to every configured robot, rate-limited across processes. Built once per process.

    ``send`` returns at once: the post runs as a task of its own (referenced here until it ends), because its
    callers are on critical paths — a user's message being handed off, or the dispatcher's pass, which holds a
    two-second Redis lock — and a robot can take its whole five-second timeout to answer or not answer at
    all. A failure is logged and counted, never raised: alerting must not break the desk. ``aclose`` gives
    alerts in flight a moment to finish, then cancels them and closes the one HTTP client.
    """

    def __init__(
        self,
        robots: Iterable[Robot],
        redis: Any,
        keys: Keys,
        per_minute: int = 20,
        timeout_s: float = 5.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.robots: Sequence[Robot] = tuple(robots)
        self.redis, self.keys, self.per_minute, self.timeout_s = redis, keys, per_minute, timeout_s
        self.outcomes = Counter(
            "triage_alerts",
            "On-call alerts per robot: sent, failed (robot error or unreachable), rate_limited (dropped)",
            ["robot", "result"],
            registry=registry if registry is not None else CollectorRegistry(),
        )
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        logsafe.install()

    @classmethod
    def from_settings(
        cls, settings: Settings, redis: Any, registry: CollectorRegistry | None = None
    ) -> Alerts:
        return cls(
            robots_from(settings),
            redis,
            Keys(settings.redis_prefix),
            per_minute=settings.alert_per_minute,
            registry=registry,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.robots) and not self._closed

    def send(self, alert: Alert) -> asyncio.Task[None] | None:
        """Start posting ``alert`` to every robot; returns the task (None with no robot configured)."""
        if not self.enabled:
            return None
        task = asyncio.create_task(self._deliver_all(alert), name="alert")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait for the alerts in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def aclose(self, grace_s: float = 2.0) -> None:
        self._closed = True
        pending = set(self._tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace_s)
            await cancel_and_wait(late)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ------------------------------------------------------------------ delivery
    async def _deliver_all(self, alert: Alert) -> None:
        await asyncio.gather(*(self._deliver(robot, alert) for robot in self.robots))

    async def _deliver(self, robot: Robot, alert: Alert) -> None:
        try:
            if not await self._admit(robot):
                self.outcomes.labels(robot.name, "rate_limited").inc()
                return
            ok = await self._post(robot, alert)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let an alert's failure escape into the event loop's log with its URL
            logger.warning("alert to robot %s failed: %s", robot.name, type(exc).__name__)
            ok = False
        self.outcomes.labels(robot.name, "sent" if ok else "failed").inc()

    async def _admit(self, robot: Robot) -> bool:
        """Count this alert in the robot's window on Redis; False when the window is full.

        ``SET key 0 EX 60 NX`` + ``INCR`` in one transaction is INCR + EXPIRE-on-first-use: the window starts
        with its first alert and is not pushed back by later ones (a plain EXPIRE on every INCR would keep a
        busy robot's window open for good). Redis unreachable: post anyway — an alert matters most then.
        """
        key = self.keys.alert_rate(robot.name)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, ex=WINDOW_SECONDS, nx=True)
                pipe.incr(key)
                _, count = await pipe.execute()
        except RedisError as exc:
            logger.warning(
                "alert rate counter unavailable (%s); posting to %s anyway", type(exc).__name__, robot.name
            )
            return True
        if int(count) <= self.per_minute:
            return True
        if int(count) == self.per_minute + 1:  # the first refusal of this window, in whichever process
            logger.warning(
                "alert robot %s: %d alerts this minute already; dropping alerts until the minute is over",
                robot.name,
                self.per_minute,
            )
        return False

    async def _post(self, robot: Robot, alert: Alert) -> bool:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s)
        try:
            response = await self._client.post(robot.request_url(), json=robot.payload(alert))
        except httpx.HTTPError as exc:
            logger.warning(
                "alert robot %s (%s) unreachable: %s", robot.name, robot.redacted, type(exc).__name__
            )
            return False
        try:
            body = response.json()
        except ValueError:
            body = {}
        errcode = body.get("errcode", 0) if isinstance(body, dict) else 0
        if response.status_code == 200 and errcode == 0:
            return True
        errmsg = str(body.get("errmsg", "")) if isinstance(body, dict) else ""
        logger.warning(
            "alert robot %s (%s) answered HTTP %d, errcode %s: %s",
            robot.name,
            robot.redacted,
            response.status_code,
            errcode,
            redact(errmsg)[:200],
        )
        return False


# ---------------------------------------------------------------------- the messages
def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def urgent_handoff(conv: Conversation) -> Alert:
    """A conversation handed off as urgent has joined the queue."""
    handoff = conv.handoff
    lines = [
        f"- severity: **{handoff.severity.value if handoff else conv.severity.value}**",
        f"- conversation: `{conv.conversation_id}` ({conv.channel}, {conv.group.value})",
        f"- why: {handoff.reason if handoff else 'urgent'}"
        + (f", intent {handoff.intent}" if handoff and handoff.intent else ""),
    ]
    if handoff and handoff.trigger:
        lines.append(f"> {handoff.trigger[:120]}")
    return Alert("紧急转人工 / Urgent handoff", "\n".join(lines))


def escalation(conv: Conversation, group: str, remaining_s: float, now: float | None = None) -> Alert:
    """A conversation or ticket has used most of its first-response target."""
    handoff = conv.handoff
    now = time.time() if now is None else now
    waited = now - handoff.sla.started_ts() if handoff else 0.0
    what = f"ticket {conv.ticket_id}, conversation" if conv.ticket_id else "conversation"
    lines = [
        f"- severity: **{handoff.severity.value if handoff else conv.severity.value}**",
        f"- {what}: `{conv.conversation_id}` ({conv.channel}, {group})",
        f"- why: {handoff.reason if handoff else 'unknown'}",
        f"- waiting {_duration(waited)}; {_duration(remaining_s)} left for a first response",
    ]
    return Alert("SLA 即将超时 / SLA about to be breached", "\n".join(lines))


def new_ticket(ticket: dict[str, Any]) -> Alert:
    """Nobody of the group was on duty: the handoff became a ticket."""
    lines = [
        f"- severity: **{ticket['severity']}**",
        f"- ticket {ticket['ticket_id']}, conversation `{ticket['conversation_id']}` "
        f"({ticket.get('channel', '')}, {ticket.get('group', '')})",
        f"- why: {ticket['reason']}; first response due {ticket['sla']['first_response_due']}",
        f"> {str(ticket.get('summary', ''))[:120]}",
    ]
    return Alert(f"新工单 {ticket['ticket_id']}（无人值班）/ New ticket, nobody on duty", "\n".join(lines))


def _clip(content: str) -> str:
    raw = content.encode("utf-8")
    return content if len(raw) <= MAX_CONTENT_BYTES else raw[:MAX_CONTENT_BYTES].decode("utf-8", "ignore")
