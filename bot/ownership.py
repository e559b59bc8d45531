"""Who owns a conversation: an explicit state machine, checked on every change.

=========  ==========================================================================================
bot        the bot answers
queued     waiting for an agent now (somebody is on duty); the bot is silent but for queue status
waiting    a ticket: handed off while nobody was on duty. It waits in the same queue and is offered to
           the next agent on duty, while the bot keeps answering the user's other questions
assigned   an agent owns it; the bot is silent
resolved   an agent (or the supervisor) closed it; the user writing again goes back to the bot
=========  ==========================================================================================

Every change goes through :class:`bot.store.handoffs.HandoffStore.transition`, one Lua script that checks
this table and moves queue membership, the ticket's status and the agents' open conversations with it.
"""

from __future__ import annotations

from enum import StrEnum

from bot.errors import Conflict


class Owner(StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    WAITING = "waiting"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


ALLOWED: dict[Owner, frozenset[Owner]] = {
    Owner.BOT: frozenset({Owner.QUEUED, Owner.WAITING}),
    # queued → waiting: nobody is on duty any more and the user asks for a ticket instead of waiting
    Owner.QUEUED: frozenset({Owner.ASSIGNED, Owner.BOT, Owner.RESOLVED, Owner.WAITING}),
    # waiting → queued: the user asks for a human again while somebody is on duty (keeps their place)
    Owner.WAITING: frozenset({Owner.ASSIGNED, Owner.BOT, Owner.RESOLVED, Owner.QUEUED}),
    Owner.ASSIGNED: frozenset({Owner.RESOLVED, Owner.BOT, Owner.QUEUED}),  # queued again: transferred
    Owner.RESOLVED: frozenset({Owner.BOT}),
}

IN_QUEUE = frozenset({Owner.QUEUED, Owner.WAITING})  # members of a skill group's queue


class TransitionError(Conflict):
    """A move the table does not allow from the conversation's current state (HTTP 409)."""

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


def sources(target: Owner) -> list[str]:
    """The states ``target`` may be reached from."""
    return [state.value for state, targets in ALLOWED.items() if target in targets]


def human_owns(state: Owner) -> bool:
    """The bot stays silent (a human has it or is about to take it live)."""
    return state in (Owner.QUEUED, Owner.ASSIGNED)
