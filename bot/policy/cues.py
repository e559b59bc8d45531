"""Words that decide a turn whatever the classifier makes of the rest of the message.

Two cues, in Simplified and Traditional Chinese (and a little Cantonese) and English:

* :func:`asks_for_human` — "转人工，发票一直上传失败": the request for a person wins over the support topic
  beside it (the topic still goes on the agent's context card).
* :func:`not_resolved` — "我这里搞不定", "依然不行", "还是有问题", "still doesn't work": after an answer, the answer did not
  help; vague frustration is never a dialogue act.

Patterns run on the raw text (``Parse.text``), so both Chinese scripts are spelled out.
"""

from __future__ import annotations

import re

_HUMAN = re.compile(
    r"[转轉]人工|[转轉]接人工|[转轉]客服|人工客服|人工服[务務]|[找要接]人工|真人(?:客服)?|活人"
    r"|[找要](?:个|個)?(?:客服|人工)(?:人员|人員)?|[联聯]系客服|客服人[员員]"
    r"|\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s*one\s*|real\s+|live\s+|human\s+)*"
    r"(?:human|person|agent|someone|somebody|representative|rep)\b"
    r"|\bput\s+me\s+through\s+to\b|\bconnect\s+me\s+(?:to|with)\b|\btransfer\s+me\b"
    r"|\b(?:real|live|human)\s+(?:person|agent|human|support)\b|\bhuman\s+please\b",
    re.IGNORECASE,
)
# "不用转人工", "no need for a human": the cue is withdrawn by a negation right before it.
_HUMAN_NEGATED = re.compile(
    r"(?:不用|不需要|无需|無需|别|別|不要|不必)\s*(?:[转轉]|[找要接])?$|\b(?:no\s+need\s+(?:to|for)|don'?t|do\s+not)\b[\w\s]{0,12}$",
    re.IGNORECASE,
)

_NOT_RESOLVED = re.compile(
    r"搞不定|弄不好|弄不了|搞不了|搞不好|[依仍][然旧舊]?(?:不行|不可以|没用|沒用|失[败敗]|[报報][错錯])"
    r"|[还還]是(?:不行|没用|沒用|不可以|一[样樣]|老[样樣]子|没好|沒好)|[没沒]解[决決]|不管用|不起作用|[没沒]有?用(?![户戶过過])"
    # "还是有问题", "问题还在": the problem is still there (not a yes: "有" is not "没问题")
    r"|(?:[还還]是|[依仍][然旧舊]?)有(?:[这這那]个|[这這那]個)?(?:问题|問題|[错錯]误|[错錯]誤)"
    r"|(?:问题|問題)(?:[还還]在|依[旧舊]|[还還]是(?:存在|没|沒))"
    # the whole message "有问题" / "有点问题": there is a problem ("我有个问题想问" is a new question)
    r"|^\s*有(?:[点點]|些)?(?:问题|問題)[啊呀的了啦吧嘛喔哦呢。！!～~\s]*$"
    # Cantonese: 唔得 alone is "doesn't work" (a symptom, like 不行); 仲係唔得 / 都係唔得 is "still doesn't"
    r"|(?:仲係?|都係|依然)唔(?:得|work)"
    r"|\bstill\s+(?:doesn'?t|does\s+not|don'?t|isn'?t|is\s+not|not|can'?t|cannot|won'?t|broken|failing|the\s+same)\b"
    r"|\bstill\s+(?:have|having|has|get|getting|got|see|seeing)\s+(?:the\s+|this\s+|that\s+|a\s+|an\s+)?"
    r"(?:same\s+)?(?:problem|issue|error)s?\b"
    r"|\b(?:didn'?t|did\s+not|doesn'?t|does\s+not)\s+(?:help|work|fix)\b|\bno\s+luck\b|\bsame\s+problem\b",
    re.IGNORECASE,
)


def asks_for_human(text: str) -> bool:
    """True when the message asks for a person ("转人工", "put me through to a person")."""
    for match in _HUMAN.finditer(text):
        if not _HUMAN_NEGATED.search(text[max(0, match.start() - 20) : match.start()]):
            return True
    return False


def not_resolved(text: str) -> bool:
    """True for "it still doesn't work" in any of its forms."""
    return bool(_NOT_RESOLVED.search(text))
