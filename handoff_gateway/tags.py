"""Labels agents put on conversations ("发票", "回访", "bug"): a short list in the conversation's own record,
so they live and expire with it. The owner (or a supervisor) sets them; whoever may read the card sees them."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping

from bot.errors import InputError
from bot.store.conversations import ConversationStore

FIELD = "tags"
MAX_TAGS, MAX_TAG_CHARS = 10, 24


def clean(tags: list[str]) -> list[str]:
    """Trimmed, without duplicates (case-insensitively), in the order given; an empty tag, a control or
    direction-override character, or too many or too long ones are refused with the reason."""
    out: dict[str, str] = {}
    for raw in tags:
        tag = raw.strip()
        if not tag:
            raise InputError("a tag cannot be empty")
        if len(tag) > MAX_TAG_CHARS:
            raise InputError(f"a tag has at most {MAX_TAG_CHARS} characters: {tag[:MAX_TAG_CHARS]!r}…")
        if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in tag):
            raise InputError("a tag cannot contain control or formatting characters")
        out.setdefault(tag.casefold(), tag)
    if len(out) > MAX_TAGS:
        raise InputError(f"a conversation has at most {MAX_TAGS} tags")
    return list(out.values())


def tags_of(record: Mapping[str, str]) -> list[str]:
    tags: list[str] = json.loads(record.get(FIELD) or "[]")
    return tags


async def set_tags(store: ConversationStore, cid: str, tags: list[str]) -> list[str]:
    """Replace the conversation's tags; returns them as stored."""
    cleaned = clean(tags)
    await store.update(cid, **{FIELD: cleaned})
    return cleaned
