"""What a push channel sends for a transcript event: text and buttons in the user's language, or nothing.

The transcript holds structured events (``queue``, ``assigned``, ``resolved``, ``csat_request``) that the web
widget draws itself; a push channel only has messages, so they are worded here. User messages, internal
events (notes, ``delivery_failed``) and the structured ``handoff`` record (its text follows as a system
message) are never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot import replies

TEXTS: dict[str, dict[str, str]] = {
    "assigned": {
        "zh": "客服 {agent} 已接入，请直接描述您的问题。",
        "en": "{agent} has joined and will help you.",
    },
    "resolved": {"zh": "本次人工服务已结束。", "en": "The agent has closed this conversation."},
    "csat_request": {
        "zh": "请为本次服务打分（1-5，5 为非常满意）：",
        "en": "How did we do? Rate us from 1 to 5 (5 = very satisfied):",
    },
    "handback": {
        "zh": "客服已将对话交回智能助手，有问题可以继续问我。",
        "en": "The agent handed you back to me; ask me anything.",
    },
    "agent": {"zh": "客服", "en": "the agent"},
    "attachment_kept": {
        "zh": "已收到您发送的{kind}，人工客服可以查看。{next}",
        "en": "Got your {kind}; an agent can open it. {next}",
    },
    "attachment_next_bot": {
        "zh": "我还看不懂图片和文件，请用文字描述问题，或回复“转人工”。",
        "en": 'I can\'t read images or files yet: describe the problem in words, or say "agent".',
    },
    "attachment_failed": {
        "zh": "抱歉，您发送的{kind}没能接收成功，请稍后重新发送，或用文字描述问题。",
        "en": "Sorry, your {kind} could not be received. Please send it again later, or describe it in words.",
    },
    "unsupported_text_only": {
        "zh": "暂不支持这类消息，请用文字描述您的问题。",
        "en": "I can only read text here; please describe the problem in words.",
    },
    "unsupported": {
        "zh": "暂不支持这类消息，请发送文字、图片或文件。",
        "en": "I can't handle this kind of message; please send text, an image or a file.",
    },
    "too_long": {
        "zh": "消息太长了（超过 {limit} 字），请分几条发送。",
        "en": "That message is too long (over {limit} characters); please send it in parts.",
    },
    "csat_thanks": {"zh": "感谢您的评价！", "en": "Thanks for your rating!"},
    "read_more": {"zh": "完整内容：", "en": "Full article:"},
    "image": {"zh": "图片", "en": "image"},
    "voice": {"zh": "语音", "en": "voice message"},
    "video": {"zh": "视频", "en": "video"},
    "file": {"zh": "文件", "en": "file"},
}
CSAT_SCORES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Outbound:
    """One message for the user: what every push channel sends, each in its own envelope."""

    seq: int
    text: str
    buttons: tuple[Mapping[str, str], ...] = field(default=())
    role: str = "bot"  # bot | agent | system
    link: str | None = None  # the full KB article, for platforms that cut long texts


def _text(key: str, script: str, **params: Any) -> str:
    return replies.label(TEXTS, key, script).format(**params)


def text(key: str, script: str, **params: Any) -> str:
    """One of this module's texts in the user's script."""
    return _text(key, script, **params)


def render(event: Mapping[str, Any], script: str = "") -> Outbound | None:
    """The message a push channel sends for ``event``, or None when the user must not get it."""
    if event.get("visibility") == "internal" or event.get("role") == "user":
        return None
    kind, seq = event.get("type"), int(event["seq"])
    if kind == "message" and event.get("text"):
        buttons = tuple({"title": b["title"], "payload": b["payload"]} for b in event.get("buttons") or ())
        link = str(event["link"]) if event.get("link") else None
        return Outbound(seq, str(event["text"]), buttons, str(event.get("role") or "bot"), link)
    if kind == "queue":
        position = int(event.get("position") or 1)
        wait = replies.duration(int(event.get("eta_seconds") or 0), script)
        return Outbound(
            seq, replies.say("still_queued", script, ahead=position - 1, wait=wait), role="system"
        )
    if kind == "assigned":
        agent = event.get("agent_name") or _text("agent", script)
        return Outbound(seq, _text("assigned", script, agent=agent), role="system")
    if kind in ("resolved", "handback"):
        return Outbound(seq, _text(kind, script), role="system")
    if kind == "csat_request":
        buttons = tuple({"title": str(n), "payload": f'/csat{{"score": {n}}}'} for n in CSAT_SCORES)
        return Outbound(seq, _text("csat_request", script), buttons, role="system")
    return None
