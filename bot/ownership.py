"""Who owns a conversation: an explicit state machine, checked on every change.

bot → queued → assigned → resolved, queued/assigned → bot (handed back), resolved → bot (the user writes
again). While a human owns it (queued or assigned) the bot does not answer, on every channel.
"""

from __future__ import annotations

from enum import StrEnum

from bot.errors import TriageError


class Owner(StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


ALLOWED: dict[Owner, frozenset[Owner]] = {
    Owner.BOT: frozenset({Owner.QUEUED}),
    Owner.QUEUED: frozenset({Owner.ASSIGNED, Owner.BOT, Owner.RESOLVED}),
    Owner.ASSIGNED: frozenset({Owner.RESOLVED, Owner.BOT, Owner.QUEUED}),  # queued again: transferred
    Owner.RESOLVED: frozenset({Owner.BOT}),
}


class TransitionError(TriageError):
    def __init__(self, conversation_id: str, current: Owner, target: Owner) -> None:
        allowed = ", ".join(sorted(ALLOWED[current])) or "nothing"
        super().__init__(
            f"conversation {conversation_id}: cannot go from {current} to {target} "
            f"(from {current} it may go to {allowed})"
        )
        self.current, self.target = current, target


def check_transition(conversation_id: str, current: Owner, target: Owner) -> None:
    if target not in ALLOWED[current]:
        raise TransitionError(conversation_id, current, target)


def human_owns(state: Owner) -> bool:
    return state in (Owner.QUEUED, Owner.ASSIGNED)
