"""The console's vocabulary in words, in both languages: what agents read instead of codes.

Intents, severities and ticket statuses are the bot's own tables (bot/replies.py); the reasons are worded for
the agent ("the user asked for a person") where the bot's are worded for the user ("you asked…")."""

from __future__ import annotations

from typing import Any

from bot.replies import INTENT_LABELS, TICKET_STATUS, TIERS

Labels = dict[str, dict[str, str]]

REASONS: Labels = {
    "user_request": {"zh": "用户要求人工服务", "en": "The user asked for a person"},
    "urgent": {"zh": "问题紧急", "en": "The problem is urgent"},
    "negative_sentiment": {"zh": "用户情绪不满", "en": "The user is unhappy"},
    "complaint": {"zh": "用户投诉", "en": "A complaint"},
    "repeat_after_answer": {"zh": "回答后问题仍未解决", "en": "Still unsolved after the bot's answer"},
    "repeated_fallback": {"zh": "机器人多次没能理解", "en": "The bot did not understand, repeatedly"},
    "not_helpful": {"zh": "用户说回答没有帮助", "en": "The user said the answer did not help"},
    "no_kb_answer": {"zh": "知识库没有把握回答", "en": "The knowledge base had no confident answer"},
}

STATES: Labels = {
    "bot": {"zh": "机器人处理中", "en": "With the bot"},
    "queued": {"zh": "排队中", "en": "Queued"},
    "waiting": {"zh": "工单待处理", "en": "Ticket waiting"},
    "assigned": {"zh": "处理中", "en": "In progress"},
    "resolved": {"zh": "已解决", "en": "Resolved"},
}

CHANNELS: Labels = {
    "web": {"zh": "网页", "en": "Web"},
    "rest": {"zh": "REST 接口", "en": "REST API"},
    "callback": {"zh": "回调接口", "en": "Callback API"},
    "wecom": {"zh": "企业微信", "en": "WeCom"},
    "dingtalk": {"zh": "钉钉", "en": "DingTalk"},
}

LANGUAGES: Labels = {"zh": {"zh": "中文", "en": "Chinese"}, "en": {"zh": "英文", "en": "English"}}

PRESENCE: Labels = {
    "online": {"zh": "在线", "en": "Online"},
    "away": {"zh": "离开", "en": "Away"},
    "offline": {"zh": "离线", "en": "Offline"},
}

BREACHES: Labels = {
    "first_response": {"zh": "首次响应超时", "en": "First response late"},
    "resolution": {"zh": "解决超时", "en": "Resolution late"},
}


def console_labels() -> dict[str, Any]:
    """Every table the console renders codes with: ``{"intents": {"system_outage": {"zh": …, "en": …}}, …}``."""
    return {
        "intents": INTENT_LABELS,
        "severities": {k: {"zh": v["zh"], "en": v["en"].capitalize()} for k, v in TIERS.items()},
        "ticket_statuses": TICKET_STATUS,
        "reasons": REASONS,
        "states": STATES,
        "channels": CHANNELS,
        "languages": LANGUAGES,
        "presence": PRESENCE,
        "breaches": BREACHES,
    }


def trigger_words(reasons: list[str] | tuple[str, ...]) -> list[str]:
    """The user's words a handoff's reasons name (``scope:全公司``, ``blocked:打不开`` → 全公司, 打不开)."""
    words = []
    for reason in reasons:
        kind, _, word = reason.partition(":")
        if word and kind not in ("rule", "intent"):
            words.append(word)
    return list(dict.fromkeys(words))
