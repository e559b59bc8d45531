"""The user withdraws a pending handoff or ticket: "取消转人工", "不用转人工了", "cancel"."""

from __future__ import annotations

import re

_CANCEL = re.compile(
    r"^\s*(?:"
    r"/cancel"
    r"|取消(?:[转轉]?人工|[转轉]接|工[单單]|排[队隊])?"
    r"|(?:不用|不需要|无需|無需)(?:[转轉]?人工|[转轉]接|客服)了?"
    r"|算了(?:，|,)?\s*不用了"
    r"|cancel(?:\s+(?:the\s+|my\s+)?(?:handoff|request|ticket|transfer))?"
    r"|never\s*mind|no need for (?:a |an )?(?:agent|human|person)"
    r")\s*[。.!！]*\s*$",
    re.IGNORECASE,
)


def is_cancel(text: str) -> bool:
    return bool(_CANCEL.match(text))
