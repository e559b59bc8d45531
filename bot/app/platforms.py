"""What happens to a chat-platform message the inbox took (bot/inbox.py): the same engine, queue and agents
as on the web.

For each message: the conversation is created on first contact as the platform's verified user (mapped to
the app's tenant and VIP tier), followed by the outbox so every later event is pushed to the platform, and
the platform's routing fields (DingTalk's session webhook) are refreshed. Then:

* a reply to a numbered list ("2", or the button's words) becomes that button's payload;
* a CSAT score is recorded and thanked for, as the widget's rating is;
* an image, voice message, video or file is fetched from the platform and kept as an attachment the agent
  opens from the transcript (the user is told if that fails);
* anything else goes to the engine, which answers, queues for a human or stays silent when a human owns the
  conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import unicodedata
from collections.abc import Coroutine, Mapping
from dataclasses import replace
from typing import Any

from bot.channels.base import Channel, DeliveryError
from bot.channels.outbound import render, text
from bot.engine import Engine
from bot.identity import Identity
from bot.message import Message
from bot.outbox import Outbox
from bot.services import Services
from bot.store import ratings
from bot.store.attachments import AttachmentStore
from bot.store.keys import Keys

logger = logging.getLogger(__name__)

LOOKBACK = 30  # transcript events searched for the numbered list a reply answers
HISTORY_SIZE = 50
MEDIA_TRIES = 3
MEDIA_AT_ONCE = 4
_CSAT = re.compile(r'^/csat\{"score":\s*([1-5])\}$')
ROUTING_FIELDS = ("session_webhook", "session_expires", "chat_type", "open_conversation_id")


class PlatformIntake:
    def __init__(
        self, services: Services, engine: Engine, outbox: Outbox, channels: Mapping[str, Channel]
    ) -> None:
        self.s, self.engine, self.outbox, self.channels = services, engine, outbox, channels
        store = services.store
        self.attachments = AttachmentStore.open(store, services.settings)
        self._media_slots = asyncio.Semaphore(MEDIA_AT_ONCE)

    async def handle(self, message: Message) -> None:
        adapter: Any = self.channels[message.channel]
        conversation = await self._conversation(adapter, message)
        await self.outbox.follow(message.conversation_id, int(conversation.get("seq") or 0))
        kind = message.metadata.get("msg_type", "text")
        script = conversation.get("script", "")
        if kind == "text" and message.text.strip() and len(message.text) <= self.s.settings.max_message_chars:
            chosen = await self.choice(message.conversation_id, message.text, script)
            score = _CSAT.match(chosen) if chosen else None
            if not score:
                # The engine's idempotency record (by message id) makes a second handling a no-op.
                await self.engine.handle(replace(message, text=chosen) if chosen else message)
                return
        await self._once(message, self._other(adapter, message, conversation, kind, script))

    async def _other(
        self, adapter: Any, message: Message, conversation: Mapping[str, str], kind: str, script: str
    ) -> None:
        """Everything that is not a question for the engine."""
        cid = message.conversation_id
        if kind in ("image", "voice", "video", "file"):
            await self._attachment(adapter, message, conversation, kind)
        elif kind != "text":
            wording = "unsupported_text_only" if message.channel == "dingtalk" else "unsupported"
            await self._say(cid, text(wording, script))
        elif len(message.text) > self.s.settings.max_message_chars:
            await self._say(cid, text("too_long", script, limit=self.s.settings.max_message_chars))
        elif message.text.strip():
            chosen = await self.choice(cid, message.text, script)
            score = _CSAT.match(chosen or "")
            if score:
                await self._rate(message, int(score.group(1)), script)

    async def _once(self, message: Message, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` once per platform message id, as the engine runs a message: a second handling of
        the same message (a claim after a slow first one) finds it done."""
        store, cid = self.s.store, message.conversation_id
        if await store.claim(cid, message.message_id) is not None:
            work.close()
            return
        try:
            with store.hold(cid, message.message_id):  # an attachment's download may take a while
                await work
        except BaseException:
            await store.release(cid, message.message_id)
            raise
        await store.complete(cid, message.message_id, {"replies": []})

    async def give_up(self, message: Message, reason: str) -> None:
        """The inbox could not handle ``message``: the agent sees it in the transcript, with why."""
        await self.s.store.append(
            message.conversation_id,
            {
                "type": "inbound_failed",
                "role": "system",
                "visibility": "internal",
                "channel": message.channel,
                "client_msg_id": message.message_id,
                "text": message.text[:2000],
                "error": reason[:500],
            },
        )

    # ---------------------------------------------------------------- conversation
    async def _conversation(self, adapter: Any, message: Message) -> dict[str, str]:
        store, meta = self.s.store, message.metadata
        routing = {k: str(meta[k]) for k in ROUTING_FIELDS if meta.get(k)}
        existing = await store.get(message.conversation_id)
        if existing is not None:
            if routing and any(existing.get(k) != v for k, v in routing.items()):
                await store.update(message.conversation_id, **routing)
                existing.update(routing)
            return existing
        app = adapter.app(meta["app"])
        identity = Identity(
            verified=True,
            user=message.sender_id,
            tenant=app.tenant or str(meta.get("corp_id") or ""),
            name=str(meta.get("nick") or ""),
            vip_tier=app.vip_tier,
        )
        fields = {
            **identity.record_fields(),
            **routing,
            "app": app.name,
            "corp_id": str(meta.get("corp_id") or ""),
        }
        record = await store.get_or_create(
            message.conversation_id, message.channel, message.sender_id, **fields
        )
        if identity.customer_key:
            await self._remember(identity.customer_key, message.conversation_id, int(record["created_at"]))
        return record

    async def _remember(self, customer_key: str, cid: str, created_ms: int) -> None:
        key = Keys(self.s.settings.redis_prefix).customer(customer_key, "conversations")
        async with self.s.store.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {cid: created_ms})
            pipe.zremrangebyrank(key, 0, -HISTORY_SIZE - 1)
            pipe.pexpire(key, self.s.store.retention_ms)
            await pipe.execute()

    # --------------------------------------------------------------------- choices
    async def choice(self, cid: str, said: str, script: str) -> str | None:
        """The payload of the button ``said`` picks from the last numbered list the user was sent (by its
        number or its words), or None."""
        store = self.s.store
        entries = await store.redis.xrevrange(store.keys.events(cid), count=LOOKBACK)
        answer = unicodedata.normalize("NFKC", said).strip().rstrip(".。").casefold()
        for _, fields in entries:
            if not fields:
                continue
            event = {"seq": 0, **json.loads(fields["e"])}
            if event.get("type") == "message" and event.get("role") == "user":
                return None  # the list was answered (or ignored) already
            out = render(event, script)
            if out is None or not out.buttons:
                continue
            for number, button in enumerate(out.buttons, 1):
                if answer in (str(number), str(button["title"]).casefold()):
                    return str(button["payload"])
            return None
        return None

    async def _rate(self, message: Message, score: int, script: str) -> None:
        cid = message.conversation_id
        with contextlib.suppress(ratings.AlreadyRated):  # one rating per conversation: the first stands
            await ratings.rate(self.s.store, cid, score)
        await self._say(cid, text("csat_thanks", script))

    # ------------------------------------------------------------------ attachments
    async def _attachment(
        self, adapter: Any, message: Message, conversation: Mapping[str, str], kind: str
    ) -> None:
        cid, script = message.conversation_id, conversation.get("script", "")
        what = text(kind, script)
        media = None
        for attempt in range(MEDIA_TRIES):
            try:
                async with self._media_slots:  # files are held in memory: a few at a time
                    media = await adapter.fetch_media(
                        message.metadata["app"],
                        message.metadata.get("media_id", ""),
                        self.s.settings.max_attachment_bytes,
                    )
                break
            except DeliveryError as exc:
                error = exc
                if not exc.retryable or attempt == MEDIA_TRIES - 1:
                    break
                await asyncio.sleep(0.5 * 2**attempt)
        if media is None:
            logger.warning("%s: could not fetch a %s of %s: %s", message.channel, kind, cid, error.reason)
            await self.s.store.append(
                cid,
                {
                    "type": "attachment_failed",
                    "role": "system",
                    "visibility": "internal",
                    "kind": kind,
                    "error": error.reason[:300],
                },
            )
            await self._say(cid, text("attachment_failed", script, kind=what))
            return
        filename = str(message.metadata.get("filename") or "") or media.filename  # a file message names it
        saved = await self.attachments.save(cid, media.content, media.content_type, filename)
        await self.s.store.append(
            cid,
            {
                "type": "attachment",
                "role": "user",
                "kind": kind,
                "attachment_id": saved.attachment_id,
                "filename": saved.filename,
                "content_type": saved.content_type,
                "size": saved.size,
                "client_msg_id": message.message_id,
            },
        )
        human = conversation.get("state") in ("queued", "assigned")
        follow_up = "" if human else text("attachment_next_bot", script)
        await self._say(cid, text("attachment_kept", script, kind=what, next=follow_up).strip())

    async def _say(self, cid: str, reply: str) -> None:
        await self.s.store.append(cid, {"type": "message", "role": "bot", "text": reply})
