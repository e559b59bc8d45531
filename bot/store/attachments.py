"""Files, images and voice messages users send from a chat platform or attach in the widget
(``bot.app.routes_attachments``), kept for the user and the agent to open.

Kept in Redis beside the conversation (``Keys.attachment``) for the transcript's retention, base64-encoded
(the client decodes replies as text) and bounded by ``TRIAGE_MAX_ATTACHMENT_BYTES``.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from dataclasses import dataclass
from typing import Any

from bot.store.keys import Keys


@dataclass(frozen=True)
class Attachment:
    attachment_id: str
    content: bytes
    content_type: str
    filename: str

    @property
    def size(self) -> int:
        return len(self.content)


class AttachmentStore:
    def __init__(self, redis: Any, keys: Keys, retention_ms: int) -> None:
        self.redis, self.keys, self.retention_ms = redis, keys, retention_ms

    async def save(self, cid: str, content: bytes, content_type: str, filename: str) -> Attachment:
        attachment = Attachment(secrets.token_hex(8), content, content_type, filename)
        key = self.keys.attachment(cid, attachment.attachment_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            encoded = await asyncio.to_thread(base64.b64encode, content)  # megabytes: off the event loop
            pipe.hset(
                key,
                mapping={
                    "content": encoded.decode(),
                    "content_type": content_type,
                    "filename": filename,
                },
            )
            pipe.pexpire(key, self.retention_ms)
            await pipe.execute()
        return attachment

    async def get(self, cid: str, attachment_id: str) -> Attachment | None:
        if not attachment_id.isalnum():
            return None
        record = await self.redis.hgetall(self.keys.attachment(cid, attachment_id))
        if not record:
            return None
        return Attachment(
            attachment_id,
            await asyncio.to_thread(base64.b64decode, record["content"]),
            record.get("content_type") or "application/octet-stream",
            record.get("filename") or attachment_id,
        )
