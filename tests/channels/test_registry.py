"""The channel registry and the pieces every adapter shares, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from bot.channels.base import UnknownChannel, numbered_text
from bot.channels.outbound import render
from bot.channels.rasa import RasaCallbackChannel, RasaRestChannel, bot_message, conversation_id
from bot.channels.registry import build_channels, channel
from bot.errors import InputError
from bot.settings import Settings
from bot.vocabulary import Channel as ChannelName


@pytest.mark.parametrize(
    ("callback_url", "name", "push", "inline"),
    [
        (None, "web", False, False),
        (None, "rest", False, True),
        (None, "callback", False, False),
        ("http://127.0.0.1:9/cb", "web", False, False),
        ("http://127.0.0.1:9/cb", "rest", True, True),
        ("http://127.0.0.1:9/cb", "callback", True, False),
    ],
)
def test_registry_builds_every_channel_from_the_settings(
    callback_url: str | None, name: str, push: bool, inline: bool
) -> None:
    adapter = channel(build_channels(Settings(rasa_callback_url=callback_url)), name)
    assert (adapter.name, adapter.push, adapter.inline) == (name, push, inline)


@pytest.mark.parametrize("name", ["", "telegram", "REST", "wecom "])
def test_unknown_channel_names_list_the_known_ones(name: str) -> None:
    with pytest.raises(UnknownChannel) as info:
        channel(build_channels(Settings()), name)
    assert repr(name) in str(info.value) and "callback, rest, web" in str(info.value)


@pytest.mark.parametrize(
    ("text", "buttons", "expected"),
    [
        ("您是想问：", [], "您是想问："),
        (
            "您是想问：",
            [{"title": "发票查验失败", "payload": "/a"}, {"title": "发票上传失败", "payload": "/b"}],
            "您是想问：\n1. 发票查验失败\n2. 发票上传失败",
        ),
        ("", [{"title": "Helpful", "payload": "/helpful"}], "1. Helpful"),
        ("Did this help?", [{"title": "Yes"}], "Did this help?\n1. Yes"),
    ],
)
def test_buttons_degrade_to_numbered_text(text: str, buttons: list[dict[str, str]], expected: str) -> None:
    assert numbered_text(text, buttons) == expected


@pytest.mark.parametrize(
    ("event", "script", "text", "buttons"),
    [
        ({"type": "message", "role": "user", "text": "转人工"}, "Hans", None, 0),
        ({"type": "message", "role": "bot", "text": "好的", "buttons": []}, "Hans", "好的", 0),
        (
            {"type": "message", "role": "bot", "text": "?", "buttons": [{"title": "A", "payload": "/a"}]},
            "Hans",
            "?",
            1,
        ),
        ({"type": "message", "role": "agent", "text": "您好"}, "Hans", "您好", 0),
        ({"type": "note", "role": "agent", "visibility": "internal", "text": "VIP"}, "Hans", None, 0),
        ({"type": "delivery_failed", "role": "system", "visibility": "internal"}, "Hans", None, 0),
        ({"type": "handoff", "reason": "user_request"}, "Hans", None, 0),
        ({"type": "assigned", "role": "system", "agent_name": "小王"}, "Hans", "客服 小王 已接入", 0),
        ({"type": "assigned", "role": "system", "agent_name": "Wang"}, "Latn", "Wang has joined", 0),
        ({"type": "queue", "role": "system", "position": 3, "eta_seconds": 600}, "Hans", "前面还有 2 位", 0),
        ({"type": "resolved", "role": "system"}, "Latn", "closed", 0),
        ({"type": "csat_request", "role": "system"}, "Hans", "打分", 5),
        ({"type": "csat", "role": "user", "score": 5}, "Hans", None, 0),
    ],
)
def test_render_words_what_push_channels_send(
    event: dict[str, Any], script: str, text: str | None, buttons: int
) -> None:
    out = render({"seq": 7, **event}, script)
    if text is None:
        assert out is None
        return
    assert out is not None and text in out.text and len(out.buttons) == buttons and out.seq == 7


@pytest.mark.parametrize(
    ("adapter", "payload", "cid_prefix", "message_id"),
    [
        (RasaRestChannel(), {"sender": "u1", "message": "hi"}, "rest-", None),
        (
            RasaRestChannel(),
            {"sender": "u1", "message": "hi", "metadata": {"message_id": "m9"}},
            "rest-",
            "m9",
        ),
        (RasaCallbackChannel("http://x"), {"sender": "u1", "message": "hi"}, "callback-", None),
    ],
)
def test_rasa_receive_decodes_into_a_message(
    adapter: RasaRestChannel, payload: dict[str, Any], cid_prefix: str, message_id: str | None
) -> None:
    message = adapter.receive(payload)
    assert message.channel == adapter.name and message.sender_id == "u1" and message.text == "hi"
    assert message.conversation_id == conversation_id(adapter.name, "u1")
    assert message.conversation_id.startswith(cid_prefix)
    assert message_id is None or message.message_id == message_id


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"sender": "", "message": "hi"},
        {"sender": "u1"},
        {"sender": "u1", "message": "x", "metadata": [1]},
    ],
)
def test_rasa_receive_refuses_bad_payloads(payload: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        RasaRestChannel().receive(payload)


def test_bot_messages_carry_the_idempotency_key_and_buttons_only_when_there_are_some() -> None:
    assert bot_message("u1", "c:3", "hi") == {
        "recipient_id": "u1",
        "text": "hi",
        "metadata": {"message_id": "c:3", "role": "bot"},
    }
    with_buttons = bot_message("u1", "c:4", "?", [{"title": "A", "payload": "/a"}], "system")
    assert with_buttons["buttons"] == [{"title": "A", "payload": "/a"}]


def test_channel_names_are_the_vocabulary() -> None:
    assert set(build_channels(Settings())) <= {c.value for c in ChannelName}
