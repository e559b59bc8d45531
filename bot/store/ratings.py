"""The user's rating (CSAT) of a conversation: one per conversation, and the first one stands.

A second rating — a reloaded page showing the old prompt, two tabs, a replayed frame — is refused with
:class:`AlreadyRated` (409; an ``already_rated`` error frame on the websocket) rather than replacing the
first: the score an agent and the analytics saw does not change afterwards. The claim is a field of the
conversation's own hash (``csat``), so it lives and expires with the conversation; ``HSETNX`` makes two
concurrent ratings race for it, and only the winner's ``csat`` event is appended to the transcript.
"""

from __future__ import annotations

from bot.errors import Conflict
from bot.store.conversations import ConversationStore

FIELD = "csat"


class AlreadyRated(Conflict):
    """The conversation has a rating already."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id} has been rated already; a rating cannot be changed")
        self.conversation_id = conversation_id


async def rate(store: ConversationStore, conversation_id: str, score: int, comment: str = "") -> int:
    """Record the rating; returns the ``csat`` event's seq. Raises :class:`AlreadyRated` when the conversation has one."""
    key = store.keys.conversation(conversation_id)
    if not await store.redis.hsetnx(key, FIELD, str(score)):
        raise AlreadyRated(conversation_id)
    try:
        event = await store.append(
            conversation_id, {"type": "csat", "role": "user", "score": score, "comment": comment}
        )
    except BaseException:
        await store.redis.hdel(key, FIELD)  # not recorded: the user may try again
        raise
    seq: int = event["seq"]
    return seq


async def rated(store: ConversationStore, conversation_id: str) -> bool:
    """Whether the conversation has a rating."""
    return bool(await store.redis.hexists(store.keys.conversation(conversation_id), FIELD))
