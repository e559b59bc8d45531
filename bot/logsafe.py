"""Keeping credentials out of logs.

httpx logs every request's URL at INFO, and platform APIs take their credentials in the query string:
WeCom's ``gettoken?corpsecret=…`` and ``message/send?access_token=…``, a WeCom robot's ``key=…``, a
DingTalk robot's ``access_token``, ``timestamp`` and ``sign``, a DingTalk ``sessionWebhook``'s ``session``. :func:`install` adds a filter to the httpx
logger that replaces those values with ``***``.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(
    r"(?i)\b(key|access_token|token|corpsecret|secret|timestamp|sign|ticket|session)=[^&\s\"'<>]+"
)


def redact(text: str) -> str:
    """``text`` with the values of credential-carrying query parameters hidden."""
    return _SECRET_PARAMS.sub(r"\1=***", text)


class _Redact(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _Redact()


def install() -> None:
    """Filter the httpx logger (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
