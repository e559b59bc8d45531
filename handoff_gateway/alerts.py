"""Alerts to supervisors outside the console: a WeCom group robot or DingTalk robot webhook."""

from __future__ import annotations

import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)


def markdown_payload(url: str, title: str, text: str) -> dict[str, Any]:
    """WeCom group robots and DingTalk robots both take markdown, in slightly different envelopes."""
    if "dingtalk" in url or "oapi." in url:
        return {"msgtype": "markdown", "markdown": {"title": title, "text": f"### {title}\n{text}"}}
    return {"msgtype": "markdown", "markdown": {"content": f"**{title}**\n{text}"}}


async def send_alert(url: str | None, title: str, text: str, timeout: float = 5.0) -> bool:
    """POST the alert; a failure is logged, never raised — alerting must not break the desk."""
    if not url:
        return False
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, json=markdown_payload(url, title, text))
            ok = response.status_code == 200 and response.json().get("errcode", 0) == 0
    except (httpx.HTTPError, ValueError) as exc:
        logger.warning("alert webhook failed: %r", exc)
        return False
    if not ok:
        logger.warning("alert webhook answered %s: %s", response.status_code, response.text[:200])
    return ok
