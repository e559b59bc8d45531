"""Files, images and voice messages users send from a chat platform or attach in the widget
(``bot.app.routes_attachments``), kept for the user and the agent to open.

The bytes go to the blob store (``bot.store.blobs``: ``var/attachments`` or an S3-compatible bucket); Redis
keeps the metadata beside the conversation (``Keys.attachment``: type, name, size, digest, where the bytes
are) for the transcript's retention. Sizes are bounded by ``TRIAGE_MAX_ATTACHMENT_BYTES``. Records written
before the blob store (the bytes base64-encoded in the hash) are still read.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from bot.settings import Settings
from bot.store.blobs import Blobs, blob_name, open_blobs
from bot.store.keys import Keys

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 3600.0


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
    def __init__(self, redis: Any, keys: Keys, retention_ms: int, blobs: Blobs) -> None:
        self.redis, self.keys, self.retention_ms, self.blobs = redis, keys, retention_ms, blobs

    @classmethod
    def open(cls, store: Any, settings: Settings) -> AttachmentStore:
        """The attachments of ``store``'s conversations, their bytes where ``TRIAGE_ATTACHMENTS_URL`` says."""
        blobs = open_blobs(settings.attachments_url, settings.var_dir, settings.s3_endpoint_url)
        return cls(store.redis, store.keys, store.retention_ms, blobs)

    async def save(self, cid: str, content: bytes, content_type: str, filename: str) -> Attachment:
        """The bytes first, then the record that points at them: a crash in between leaves an orphan file
        for the sweep, never a record without its bytes."""
        attachment = Attachment(secrets.token_hex(8), content, content_type, filename)
        name = blob_name(cid, attachment.attachment_id)
        await asyncio.to_thread(self.blobs.put, name, content)  # megabytes, a disk or a bucket: off the loop
        key = self.keys.attachment(cid, attachment.attachment_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "blob": name,
                    "content_type": content_type,
                    "filename": filename,
                    "size": len(content),
                    "sha256": hashlib.sha256(content).hexdigest(),
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
        if "blob" in record:
            content = await asyncio.to_thread(self.blobs.get, record["blob"])
            if content is None:
                logger.warning(
                    "attachment %s of %s: its bytes are gone from %s",
                    attachment_id,
                    cid,
                    self.blobs.description,
                )
                return None
        else:  # written before the blob store
            content = await asyncio.to_thread(base64.b64decode, record["content"])
        return Attachment(
            attachment_id,
            content,
            record.get("content_type") or "application/octet-stream",
            record.get("filename") or attachment_id,
        )

    async def sweep(self) -> int:
        """Delete bytes older than the transcript's retention (their records have expired with it)."""
        return await asyncio.to_thread(self.blobs.sweep, self.retention_ms / 1000)

    async def sweep_forever(self, every_seconds: float = SWEEP_SECONDS) -> None:
        """:meth:`sweep` now and then every ``every_seconds`` until cancelled; a failed sweep is logged and
        tried again next time (every process sweeps; deleting what another already deleted is harmless)."""
        while True:
            try:
                if deleted := await self.sweep():
                    logger.info(
                        "attachments: %d past retention deleted from %s", deleted, self.blobs.description
                    )
            except Exception:
                logger.exception(
                    "attachments: sweeping %s failed; trying again later", self.blobs.description
                )
            await asyncio.sleep(every_seconds)
