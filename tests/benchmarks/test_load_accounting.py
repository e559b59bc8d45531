"""The load client's bookkeeping (benchmarks/load.py): which frame answers which message. A message counted
unanswered must be one nobody answered, not one the client stopped watching."""

from __future__ import annotations

from benchmarks.load import Tally, User, _on_user_frame


def _waiting_human(tally: Tally) -> User:
    user = User(cid="c1", human=True, waiting="m9", sent_at=1.0)
    tally.user_sent_at["m9"] = 1.0
    return user


def test_a_message_sent_as_the_agent_resolves_is_answered_by_the_bot() -> None:
    """The user wrote while the agent was resolving: the message lands after the resolution, in a
    conversation the bot owns again, and the bot's reply answers it (it used to be dropped from the count)."""
    tally = Tally()
    user = _waiting_human(tally)
    _on_user_frame(user, {"type": "resolved", "seq": 10}, tally, 1.1)
    assert user.waiting == "m9" and not user.human
    _on_user_frame(user, {"type": "message", "role": "user", "seq": 11, "client_msg_id": "m9"}, tally, 1.2)
    _on_user_frame(user, {"type": "message", "role": "bot", "seq": 12, "text": "…"}, tally, 1.5)
    assert user.waiting == "" and len(tally.reply) == 1
    assert round(tally.reply[0]) == 500


def test_a_message_the_agent_had_before_resolving_is_not_waited_for() -> None:
    tally = Tally()
    user = _waiting_human(tally)
    _on_user_frame(user, {"type": "message", "role": "user", "seq": 9, "client_msg_id": "m9"}, tally, 1.1)
    _on_user_frame(user, {"type": "resolved", "seq": 10}, tally, 1.2)
    assert user.waiting == "" and tally.reply == []
