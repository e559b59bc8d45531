"""Where the request is: "不是登录的问题，是提交不了" is about submitting, "it's not the login, I just can't
submit anything" too. A message that opens by denying one topic and then names another is classified from the
part after the contrast; its entities, severity and sentiment still read the whole message.

The rule is deliberately narrow: the negation must open the message (after at most a few characters such as
"我" or "其实"), and what follows the contrast must be long enough to classify. Everything else keeps
focus 0, the whole message.
"""

from __future__ import annotations

import re

# 不是 / 並不是 / 唔係 ... then a clause break, optionally followed by 而是 / 是 / 係 / 就是
_ZH_OPENING = re.compile(r"^.{0,4}?(?:并不是|並不是|不是|唔係|唔是|並非|并非)")
_ZH_TURN = re.compile(r"[，,；;。]\s*(?:而是|其实是|其實是|只是|就是|而係|是|係)?")
_ZH_BUT = re.compile(r"(?:[，,；;]\s*)?(?:而是|其实是|其實是)")
# it's not / this isn't / not ... then ", but" / "; " / ". " / ", I"
_EN_OPENING = re.compile(
    r"^\s*(?:(?:it|this|that|the (?:problem|issue))(?:'s| is)?\s+not|(?:it|this|that) isn't|not)\b",
    re.IGNORECASE,
)
_EN_TURN = re.compile(r"(?:[,;.]\s*(?:but|it's|it is)?|\s+but)\s*", re.IGNORECASE)
MIN_REST = 3  # characters the focused part needs, or the whole message is classified


def request_focus(text: str) -> int:
    """The offset in ``text`` where the part to classify begins (0: all of it)."""
    if (opening := _ZH_OPENING.match(text)) is not None:
        rest = text[opening.end() :]
        # "不是上传的问题，传上去了，是查验不通过": the last "，是" names the topic; else 而是; else the first break
        turns = [m for m in _ZH_TURN.finditer(rest) if m.group().rstrip(" ，,；;。")]
        turn = turns[-1] if turns else _ZH_BUT.search(rest) or _ZH_TURN.search(rest)
    elif (opening := _EN_OPENING.match(text)) is not None:
        rest = text[opening.end() :]
        turn = _EN_TURN.search(rest)
    else:
        return 0
    if turn is None:
        return 0
    start = opening.end() + turn.end()
    return start if len(text[start:].strip()) >= MIN_REST else 0
